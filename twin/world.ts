import { ENVIRONMENT_INPUTS, validateEnvironment, type EnvironmentConfig } from '../environments';
import { stageBucketName } from '../environments/names';
import { AccountEmulator } from './engines/account';
import { VirtualClock } from './engines/clock';
import { DynamoDb } from './engines/dynamo';
import { EcsEmulator, USAGE_CLASS_OF } from './engines/ecs';
import { crashingRun, dynamodbThrottle, failingStartExecution, sdkRetrying, SDK_RETRY, type CrashingRun, type SdkRetryProfile } from './engines/faults';
import { LambdaEmulator } from './engines/lambda';
import { EXIT_CODES } from '../task-image/src/exit-codes';
import { chance, normal, streamFor, type Rng } from './engines/random';
import { Recorder, type TwinEvent } from './engines/recorder';
import { SfnEmulator } from './engines/stepfunctions';
import { SqsEmulator } from './engines/sqs';
import { workloadsOf, type Scenario, type Workload } from './scenario';
import { routeTakesKey } from '../functions/routes';
import type { AwsClient } from '../functions/runtime';

export type DesignName = 'sluice' | 'naive' | 'semaphore';
export const DESIGNS: DesignName[] = ['sluice', 'naive', 'semaphore'];

/** One uploaded object of the scenario, with what its task will do (drawn up front from the seed). */
interface TwinObject {
  index: number;
  /** The route its key belongs to (or, on a stage without routes, its stream's name); undefined without either. */
  route?: string;
  /** Its workload, by index in the scenario's (the top-level objects: 0). */
  workload: number;
  bucket: string;
  key: string;
  sequencer: string;
  arriveAt: number;
  durationSeconds: number;
  /** The event is not for this pipeline (another bucket): it must be dead-lettered, not run. */
  poison: boolean;
  /** The task always exits 65. */
  badInput: boolean;
}

export interface Design {
  readonly name: DesignName;
  /** The job id the design derives from an object (what its tasks carry as JOB_ID). */
  jobIdOf(object: TwinObject): string;
  /** Builds the design's resources in the world; returns what an upload does. */
  setup(world: World): Promise<{ upload(object: TwinObject): void; isQuiet?(): boolean }>;
}

interface RunResult {
  events: TwinEvent[];
  wallMs: number;
  virtualSeconds: number;
  stoppedBy: 'settled' | 'maxVirtualSeconds' | 'idle';
}

export interface Progress {
  virtualSeconds: number;
  arrived: number;
  settled: number;
  total: number;
  running: number;
}

/**
 * What the scenario injects into the pipeline's own parts (each from its own seeded stream), for the design to wire:
 * the dispatcher's and janitor's invocations through `dispatcherCrash` / `janitorCrash`, the functions' Step
 * Functions client through `startExecution`, and each function's clients through `sdk` (the SDK's retries).
 * DynamoDB throttling is wired here already (`world.ddb.faults`).
 */
interface WorldFaults {
  dispatcherCrash: CrashingRun;
  janitorCrash: CrashingRun;
  startExecution: <T extends AwsClient>(sfn: T) => T;
  sdk: <T extends AwsClient>(client: T, profile?: SdkRetryProfile) => T;
}

/** The scenario's routes as the stage schema takes them (a route's `task` is its own task's size). */
function stageRoutes(routes: NonNullable<Scenario['overrides']['routes']>) {
  return routes.map(({ name, prefix, share, priority, maxVcpu, reservedVcpu, task, objectsPerTask }) => ({
    name,
    inputPrefix: prefix,
    share,
    priority,
    ...(maxVcpu !== undefined ? { maxVcpu } : {}),
    ...(reservedVcpu !== undefined ? { reservedVcpu } : {}),
    ...(task ? { task } : {}),
    ...(objectsPerTask !== undefined ? { packing: { objectsPerTask } } : {}),
  }));
}

/**
 * The stage configuration with the scenario's overrides (its routes among them), validated by the stage schema. The stage's own
 * accountVcpuQuota is the stage config's (or overrides.accountVcpuQuota): the scenario's quotas are the emulated
 * account's, which the stage may believe wrongly — a budget above them is accepted, as a deploy would accept it.
 */
export function stageWithOverrides(stage: string, scenario: Scenario): EnvironmentConfig {
  const input = ENVIRONMENT_INPUTS[stage as keyof typeof ENVIRONMENT_INPUTS];
  if (!input) throw new Error(`unknown stage '${stage}' (known: ${Object.keys(ENVIRONMENT_INPUTS).join(', ')})`);
  const o = scenario.overrides;
  const cpu = scenario.task.vcpu !== undefined ? scenario.task.vcpu * 1024 : input.task.cpu;
  const memoryMiB = cpu === input.task.cpu ? input.task.memoryMiB : cpu * 2;
  const routes = o.routes && stageRoutes(o.routes);
  return validateEnvironment(stage, {
    ...input,
    task: { ...input.task, cpu, memoryMiB, capacityProviders: o.capacityProviders ?? input.task.capacityProviders },
    capacity: {
      ...input.capacity,
      accountVcpuQuota: o.accountVcpuQuota ?? input.capacity.accountVcpuQuota,
      vcpuBudget: o.vcpuBudget ?? input.capacity.vcpuBudget,
      launchRatePerSecond: o.launchRatePerSecond ?? input.capacity.launchRatePerSecond,
      launchBurst: o.launchBurst ?? input.capacity.launchBurst,
      mapMaxConcurrency: o.mapMaxConcurrency ?? input.capacity.mapMaxConcurrency,
      jobsPerExecution: o.jobsPerExecution ?? input.capacity.jobsPerExecution,
      batchWindowSeconds: o.batchWindowSeconds ?? input.capacity.batchWindowSeconds,
    },
    ...(routes ? { routes } : {}),
    ...(o.objectsPerTask !== undefined ? { packing: { objectsPerTask: o.objectsPerTask } } : {}),
  } as typeof input);
}

/** How the report names a job whose last task exited non-zero. */
export function taskFailedReason(exitCode: number, spotInterruption = false): string {
  return `States.TaskFailed (exit ${exitCode}${spotInterruption ? ', SpotInterruption' : ''})`;
}

/** A job that failed for its own bad input (its task exited 65). */
export const BAD_INPUT_FAILURE = taskFailedReason(EXIT_CODES.badInput);

export class World {
  readonly clock = new VirtualClock();
  readonly recorder = new Recorder(this.clock);
  readonly ddb: DynamoDb;
  readonly ecs: EcsEmulator;
  readonly sqs: SqsEmulator;
  readonly lambda: LambdaEmulator;
  readonly sfn: SfnEmulator;
  /** Service Quotas and CloudWatch (AWS/Usage) of the account, for the capacity reader. */
  readonly account: AccountEmulator;
  readonly faults: WorldFaults;
  /** The emulated account's Fargate vCPU quotas (the scenario's, else the stage's accountVcpuQuota). */
  readonly accountQuotas: { FARGATE: number; FARGATE_SPOT: number };
  readonly taskVcpu: number;
  readonly bucketName: string;
  readonly objects: TwinObject[];
  readonly workloads: Workload[];
  /** Fake ARNs of the compute the designs' RunTask calls name. */
  readonly cluster = 'arn:aws:ecs:eu-west-1:111111111111:cluster/twin';
  readonly taskDefinition = 'arn:aws:ecs:eu-west-1:111111111111:task-definition/twin-worker:1';
  private readonly byJobId = new Map<string, TwinObject>();
  private readonly lastOutcome = new Map<string, { status: 'succeeded' | 'failed'; error?: string }>();
  private readonly settled = new Set<string>();
  private arrived = 0;

  constructor(
    readonly scenario: Scenario,
    readonly stage: EnvironmentConfig,
  ) {
    const seed = scenario.seed;
    this.ddb = new DynamoDb(this.clock, this.recorder);
    this.taskVcpu = stage.task.cpu / 1024;
    this.bucketName = stageBucketName(stage); // the stage's own bucket, as deployed
    this.workloads = workloadsOf(scenario);
    this.objects = drawObjects(scenario, this.workloads, this.bucketName, stage);
    const failures = streamFor(seed, 'failures');
    this.accountQuotas = {
      FARGATE: scenario.quotas.fargateVcpu ?? stage.capacity.accountVcpuQuota,
      FARGATE_SPOT: scenario.quotas.fargateSpotVcpu ?? scenario.quotas.fargateVcpu ?? stage.capacity.accountVcpuQuota,
    };
    this.ecs = new EcsEmulator(this.clock, streamFor(seed, 'ecs'), this.recorder, {
      vcpuQuota: this.accountQuotas,
      background: { FARGATE: scenario.background.onDemand, FARGATE_SPOT: scenario.background.spot },
      invalidParameterRate: scenario.rates.invalidParameter,
      apiBucket: scenario.quotas.ecsApi,
      fargateRunTaskPerSecond: scenario.quotas.fargateRunTaskPerSecond,
      launchBucket: scenario.quotas.fargateLaunch,
      capacityErrorRate: scenario.rates.capacityError,
      spotCapacityErrorRate: scenario.rates.spotCapacityError,
      spotInterruptionRate: scenario.rates.spotInterruption,
      startupSeconds: this.startupDraws(),
      sigtermExitSeconds: Math.min(2, stage.task.stopTimeoutSeconds),
      defaultVcpu: this.taskVcpu,
      defaultMemoryMiB: stage.task.memoryMiB,
      behaviour: (jobId) => {
        const object = this.byJobId.get(jobId);
        const duration = object?.durationSeconds ?? 60;
        // Bad input (and, in designs without an intake check, a poison event) fails fast with 65.
        if (!object || object.badInput || object.poison) return { durationSeconds: Math.min(5, duration), exitCode: 65 };
        if (chance(failures, this.workloads[object.workload].rates.failure)) return { durationSeconds: failures() * duration, exitCode: 75 };
        return { durationSeconds: duration, exitCode: 0 };
      },
    });
    this.sqs = new SqsEmulator(this.clock, this.recorder);
    this.lambda = new LambdaEmulator(this.clock, this.recorder);
    this.sfn = new SfnEmulator(
      this.clock,
      streamFor(seed, 'sfn'),
      this.recorder,
      { ecs: this.ecs, dynamodb: this.ddb, lambda: this.lambda, sqs: this.sqs },
      {
        startExecutionBucket: scenario.quotas.startExecution,
      },
    );
    this.account = new AccountEmulator(this.clock, this.ecs, this.accountQuotas);
    this.faults = this.buildFaults();
    this.recorder.onEvent((event) => this.observe(event));
    this.recorder.describeJobs((jobId) => {
      const route = this.byJobId.get(jobId)?.route;
      return route === undefined ? undefined : { route };
    });
  }

  /** Each task's start-up, from its job's workload's stream (the top-level objects': `startup`, as before workloads). */
  private startupDraws(): (jobId: string) => number {
    const draws = this.workloads.map((w, index) => startupDraws(w.startupSeconds, this.rng(w.route === undefined ? 'startup' : `workloads.${index}.startup`)));
    return (jobId) => draws[this.byJobId.get(jobId)?.workload ?? 0]();
  }

  /** Each fault from its own stream; every injected fault is an event (`crash`, `injectedFault`). */
  private buildFaults(): WorldFaults {
    const f = this.scenario.faults;
    const crashes = (fn: 'dispatcher' | 'janitor', p: number) =>
      // Until a run has completed, a crash point is drawn among the first 10 calls (a dispatcher run that admits a
      // batch makes about that many: receive, read the pool, the transaction, StartExecution, delete, …).
      crashingRun(this.rng(`faults.${fn}Crash`), p, 10, this.clock, (crash) => this.recorder.emit('crash', { function: fn, call: crash.call, of: crash.of }));
    if (f.dynamodbThrottle > 0) {
      this.ddb.faults = dynamodbThrottle(this.rng('faults.dynamodbThrottle'), f.dynamodbThrottle, () =>
        this.recorder.emit('injectedFault', { fault: 'dynamodbThrottle' }),
      );
    }
    const startExecution = failingStartExecution(
      this.rng('faults.startExecutionError'),
      { before: f.startExecutionError, after: f.startExecutionLostAnswer },
      (when) => this.recorder.emit('injectedFault', { fault: when === 'before' ? 'startExecutionError' : 'startExecutionLostAnswer' }),
    );
    const retryJitter = this.rng('sdk-retry');
    return {
      dispatcherCrash: crashes('dispatcher', f.dispatcherCrash),
      janitorCrash: crashes('janitor', f.janitorCrash),
      startExecution,
      sdk: (client, profile = SDK_RETRY.standard) => sdkRetrying(client, this.clock, retryJitter, profile),
    };
  }

  rng(label: string): Rng {
    return streamFor(this.scenario.seed, label);
  }

  objectFor(jobId: string): TwinObject | undefined {
    return this.byJobId.get(jobId);
  }

  /** The job's run ended for good (its execution or Map iteration ended): its outcome is its last attempt's. */
  jobEnded(jobId: string, fallback?: { error: string }): void {
    const outcome = this.lastOutcome.get(jobId) ?? { status: 'failed' as const, error: fallback?.error ?? 'NoTaskRan' };
    this.recorder.emit('jobDone', { jobId, status: outcome.status, error: outcome.status === 'failed' ? (outcome.error ?? fallback?.error) : null });
  }

  /** The pipeline itself gave the job up (e.g. the janitor after its attempts): failed with that reason. */
  jobFailed(jobId: string, error: string): void {
    this.recorder.emit('jobDone', { jobId, status: 'failed', error });
  }

  dlq(jobId: string | undefined, reason: string): void {
    this.recorder.emit('dlq', { jobId: jobId ?? 'unknown', reason });
  }

  async run(design: Design, onProgress?: (progress: Progress) => void): Promise<RunResult> {
    const started = Date.now();
    for (const object of this.objects) this.byJobId.set(design.jobIdOf(object), object);
    const { upload, isQuiet } = await design.setup(this);
    this.recorder.emit('start', {
      design: design.name,
      stage: this.stage.stage,
      seed: this.scenario.seed,
      objects: this.objects.length,
      taskVcpu: this.taskVcpu,
      budgetVcpu: this.stage.capacity.vcpuBudget,
      launchRatePerSecond: this.stage.capacity.launchRatePerSecond,
      launchBurst: this.stage.capacity.launchBurst,
      accountVcpuQuota: this.accountQuotas.FARGATE,
      // The account's quotas per class, and how the stage's tasks split over the classes: the report's free quota.
      accountVcpuQuotas: { onDemand: this.accountQuotas.FARGATE, spot: this.accountQuotas.FARGATE_SPOT },
      classWeights: Object.fromEntries(this.stage.task.capacityProviders.map((p) => [USAGE_CLASS_OF[p.name], p.weight])),
      stageAccountVcpuQuota: this.stage.capacity.accountVcpuQuota,
      mapMaxConcurrency: this.stage.capacity.mapMaxConcurrency,
      jobsPerExecution: this.stage.capacity.jobsPerExecution,
      // Objects a task runs (a stage that packs): the launches the bound counts.
      objectsPerTask: this.stage.packing?.objectsPerTask ?? 1,
      // The stage's routes, as its schema completed them.
      ...(this.stage.routes
        ? { routes: this.stage.routes.map(({ name, share, priority, maxVcpu, reservedVcpu }) => ({ name, share, priority, maxVcpu, reservedVcpu })) }
        : {}),
    });
    for (const object of this.objects) {
      this.clock.setTimeout(() => {
        this.arrived++;
        this.recorder.emit('arrive', { jobId: design.jobIdOf(object), key: object.key, poison: object.poison || undefined });
        upload(object);
      }, object.arriveAt * 1000);
    }
    const total = this.objects.length;
    let stoppedBy: RunResult['stoppedBy'] = 'idle';
    let lastProgress = 0;
    await this.clock.run({
      untilMs: this.scenario.maxVirtualSeconds * 1000,
      beforeAdvance: () => {
        this.recorder.flushMeters();
        const now = Date.now();
        if (onProgress && now - lastProgress > 100) {
          lastProgress = now;
          onProgress(this.progress(total));
        }
        if (this.arrived === total && this.settled.size === total && this.sfn.running === 0 && this.ecs.vcpuInUse() === 0 && (isQuiet?.() ?? true)) {
          stoppedBy = 'settled';
          this.clock.stop();
        }
      },
    });
    if (stoppedBy === 'idle' && this.clock.seconds() >= this.scenario.maxVirtualSeconds) stoppedBy = 'maxVirtualSeconds';
    this.recorder.flushMeters();
    this.recorder.emit('end', { stoppedBy, objects: total });
    onProgress?.(this.progress(total));
    return { events: this.recorder.events, wallMs: Date.now() - started, virtualSeconds: this.clock.seconds(), stoppedBy };
  }

  private progress(total: number): Progress {
    return { virtualSeconds: this.clock.seconds(), arrived: this.arrived, settled: this.settled.size, total, running: this.ecs.vcpuInUse() / this.taskVcpu };
  }

  private observe(event: TwinEvent): void {
    const jobId = event.jobId;
    if (!jobId) return;
    switch (event.type) {
      case 'taskStop': {
        // A packed task ends each of its objects with its own code.
        const ids = (event.jobIds as string[] | undefined) ?? [jobId];
        const codes = (event.exitCodes as number[] | undefined) ?? [Number(event.exitCode)];
        ids.forEach((id, i) =>
          this.lastOutcome.set(
            id,
            codes[i] === 0
              ? { status: 'succeeded' }
              : // An object that ended before the interruption ended on its own code.
                { status: 'failed', error: taskFailedReason(codes[i], event.stopCode === 'SpotInterruption' && codes[i] !== EXIT_CODES.badInput) },
          ),
        );
        break;
      }
      case 'throttle':
      case 'vcpuLimit':
        if (this.lastOutcome.get(jobId)?.status !== 'succeeded')
          this.lastOutcome.set(jobId, { status: 'failed', error: `ECS.AmazonECSException (${event.type === 'vcpuLimit' ? 'vCPU limit' : 'Rate exceeded'})` });
        break;
      case 'capacityError':
        if (this.lastOutcome.get(jobId)?.status !== 'succeeded') this.lastOutcome.set(jobId, { status: 'failed', error: 'AmazonECS.Unknown (capacity)' });
        break;
      case 'invalidParameter':
        if (this.lastOutcome.get(jobId)?.status !== 'succeeded')
          this.lastOutcome.set(jobId, { status: 'failed', error: 'ECS.InvalidParameterException (EC2 request limit)' });
        break;
      case 'jobDone':
      case 'dlq':
        this.settled.add(jobId);
        break;
    }
  }
}

/**
 * Every workload's objects, numbered across workloads (keys, sequencers and event ids stay unique), each workload
 * from a stream of its own (the top-level objects from `objects`, as before workloads). The top-level objects of a
 * stage with routes belong to the route their key does.
 */
function drawObjects(scenario: Scenario, workloads: readonly Workload[], bucket: string, stage: EnvironmentConfig): TwinObject[] {
  const objects: TwinObject[] = [];
  workloads.forEach((workload, w) => {
    const rng = streamFor(scenario.seed, workload.route === undefined ? 'objects' : `workloads.${w}.objects`);
    const prefix = keyPrefixOf(scenario, workload, stage.bucket.inputPrefix);
    const { burst, steady } = workload.objects;
    for (let i = 0; i < burst + (steady?.count ?? 0); i++) {
      const index = objects.length;
      const poison = chance(rng, workload.rates.poison);
      const key = `${prefix}object-${String(index).padStart(6, '0')}.csv`;
      objects.push({
        index,
        route: workload.route ?? stage.routes?.find((route) => routeTakesKey(route, key))?.name,
        workload: w,
        bucket: poison ? 'someone-elses-bucket' : bucket,
        key,
        sequencer: (0x1000000 + index).toString(16).toUpperCase().padStart(16, '0'),
        arriveAt: i < burst ? 0 : (i - burst) / steady!.ratePerSecond,
        durationSeconds: drawSeconds(workload.duration, rng),
        poison,
        badInput: !poison && chance(rng, workload.rates.badInput),
      });
    }
  });
  return objects;
}

/** Where a workload uploads: its route's prefix; on a stage without routes, its own folder of the input area. */
function keyPrefixOf(scenario: Scenario, workload: Workload, inputPrefix: string): string {
  if (workload.route === undefined) return inputPrefix;
  return scenario.overrides.routes?.find((r) => r.name === workload.route)?.prefix ?? `${inputPrefix}${workload.route}/`;
}

/** Each task's start-up, drawn as its RunTask is accepted: a fixed number, or from the distribution. */
function startupDraws(startup: Scenario['task']['startupSeconds'], rng: Rng): () => number {
  return typeof startup === 'number' ? () => startup : () => drawSeconds(startup, rng);
}

function drawSeconds(d: Scenario['task']['duration'], rng: Rng): number {
  switch (d.kind) {
    case 'fixed':
      return d.seconds;
    case 'uniform':
      return d.minSeconds + rng() * (d.maxSeconds - d.minSeconds);
    case 'lognormal':
      return d.medianSeconds * Math.exp(d.sigma * normal(rng));
  }
}

/** The S3 "Object Created" event as EventBridge delivers it (docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html). */
export function s3Event(object: TwinObject, time: string): Record<string, unknown> {
  return {
    version: '0',
    id: `evt-${object.index}`,
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '111111111111',
    time,
    region: 'eu-west-1',
    resources: [`arn:aws:s3:::${object.bucket}`],
    detail: {
      version: '0',
      bucket: { name: object.bucket },
      object: { key: object.key, size: 1024, etag: `etag${object.index}`, sequencer: object.sequencer },
      'request-id': `req-${object.index}`,
      requester: '111111111111',
      reason: 'PutObject',
    },
  };
}
