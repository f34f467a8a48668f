import type { VirtualClock } from './clock';
import { AwsError } from './errors';
import { chance, type Rng } from './random';
import type { Recorder } from './recorder';
import { TokenBucket } from './token-bucket';
import { WORKER_PACKED_TASK_ENV } from '../../task-image/image-reference';
import { EXIT_CODES } from '../../task-image/src/exit-codes';

const EXIT_CODE_BAD_INPUT = EXIT_CODES.badInput;

/**
 * ECS/Fargate as `ecs:runTask.sync` sees it. Every limit is an AWS number (see /work/shared/AWS-FACTS.md):
 *
 * - RunTask/StartTask/StopTask share the "cluster resource modify" token bucket: burst 100, refill 40/s
 *   (docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html). Over it: ThrottlingException
 *   "Rate exceeded".
 * - Fargate caps RunTask at 20 calls/s, burst and sustained, and task launches at burst 100, refill 20/s,
 *   On-Demand and Spot separately (docs.aws.amazon.com/AmazonECS/latest/developerguide/throttling.html).
 * - The account's Fargate vCPU quota ("Fargate On-Demand vCPU resource count", L-3032A538; Spot has its own):
 *   a task holds its vCPU from RunTask (PROVISIONING) to STOPPED. Over it, RunTask fails with
 *   "You've reached the limit on the number of vCPUs you can run concurrently".
 * - Capacity shortfall: RunTask succeeds with a non-empty `failures[]`, reason "Capacity is unavailable at this
 *   time…" (repost.aws/knowledge-center/ecs-fargate-runtask-capacity), at a configurable rate.
 * - Fargate Spot: an interruption sends SIGTERM (2-minute warning); the worker exits 75 promptly and the task
 *   stops with StopCode "SpotInterruption".
 * - Other workloads share the quotas: their vCPU per class (the scenario's `background`) counts in the quota check.
 *   The account never holds more than its quota, so while this stage holds the room they would take, they get
 *   only what is left and take the rest back as its tasks stop (the other workloads' own launches retry first).
 * - RunTask can fail with InvalidParameterException "Error retrieving security group information for [sg-…]:
 *   Request limit exceeded.": ECS calls EC2 on the task's behalf (the awsvpc ENI, its security groups) and those
 *   calls are throttled in the account's EC2 API budget ("asynchronous throttling",
 *   docs.aws.amazon.com/AmazonECS/latest/developerguide/operating-at-scale-dealing-with-throttles.html; the message as
 *   met in cdklabs/construct-hub PR 415, dask/dask-cloudprovider issue 56). At a configurable rate per call.
 * - The account's vCPU in use per class, this stage's and the others', is kept over time: AWS/Usage ResourceCount
 *   (Maximum per minute) is read from it (engines/account.ts).
 *
 * In Step Functions (docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html): API errors →
 * `ECS.AmazonECSException`; a non-empty `failures[]` in .sync → `AmazonECS.Unknown`; a container that exits
 * non-zero → `States.TaskFailed` with the stopped task (PascalCase JSON) as its Cause; success → the task JSON.
 */
export interface EcsOptions {
  /** vCPU quota per capacity provider (On-Demand and Spot are separate quotas). */
  vcpuQuota: { FARGATE: number; FARGATE_SPOT: number };
  apiBucket: { burst: number; refillPerSecond: number };
  fargateRunTaskPerSecond: number;
  launchBucket: { burst: number; refillPerSecond: number };
  capacityErrorRate: number;
  /** Added to `capacityErrorRate` for tasks on FARGATE_SPOT (Spot's pool is empty, On-Demand's is not). */
  spotCapacityErrorRate?: number;
  spotInterruptionRate: number;
  /** Draws one task's seconds from RunTask to RUNNING (PROVISIONING/PENDING); vCPU is held throughout. */
  startupSeconds: (jobId: string) => number;
  /** Seconds the worker needs after SIGTERM before it exits 75 (bounded by the stop timeout). */
  sigtermExitSeconds: number;
  defaultVcpu: number;
  /** The task definition's memory, for a RunTask that does not override it (Fargate bills it by the GB-hour). */
  defaultMemoryMiB: number;
  /** Run time and exit code of one attempt of a job (attempt counts from 1). */
  behaviour: (jobId: string, attempt: number) => { durationSeconds: number; exitCode: number };
  /** Other workloads' vCPU per provider, from each time on (sorted by atSeconds). Default: none. */
  background?: Partial<Record<Provider, readonly BackgroundStep[]>>;
  /** Per RunTask call: InvalidParameterException (EC2 throttled behind ECS). Default 0. */
  invalidParameterRate?: number;
}

/**
 * What a packed task's worker reads and writes (functions/packing.ts): its objects from the batch record, each with
 * whether its end is recorded, and each end it records (false: the record is gone, the batch settled).
 */
export interface PackedWorker {
  objects(batch: string, task: number): Promise<ReadonlyArray<{ readonly jobId: string; readonly recorded: boolean }>>;
  record(batch: string, jobId: string, outcome: { status: 'succeeded' | 'failed'; reason?: string; at: string }): Promise<boolean>;
}

export type Provider = 'FARGATE' | 'FARGATE_SPOT';
export interface BackgroundStep {
  atSeconds: number;
  vcpu: number;
}
/** The AWS/Usage `Class` of each provider, shortened as the scenario and the events name it. */
export const USAGE_CLASS_OF: Record<Provider, 'onDemand' | 'spot'> = { FARGATE: 'onDemand', FARGATE_SPOT: 'spot' };

export interface StoppedTask {
  TaskArn: string;
  ClusterArn: string;
  TaskDefinitionArn: string;
  LastStatus: 'STOPPED';
  DesiredStatus: 'STOPPED';
  CapacityProviderName: Provider;
  Cpu: string;
  StopCode: 'EssentialContainerExited' | 'SpotInterruption';
  StoppedReason: string;
  Containers: Array<{ Name: string; ExitCode: number; LastStatus: 'STOPPED' }>;
  Overrides?: unknown;
  StartedAt?: number;
  StoppedAt: number;
}

/**
 * The share of a task's start-up spent pulling its image (and starting the container), which Fargate bills: "from
 * the time you start to download your container image until the task terminates" (aws.amazon.com/fargate/pricing).
 * AWS: "container image downloads account for 76 percent of container startup time"
 * (aws.amazon.com/blogs/aws/aws-fargate-enables-faster-container-startup-using-seekable-oci). The twin puts the other
 * 24 % (placement, the ENI) before the pull, so it bills 76 % of the start-up: the low end (all 100 % if that time came
 * after the pull began).
 */
export const PULL_SHARE_OF_STARTUP = 0.76;

export const VCPU_LIMIT_MESSAGE = "You've reached the limit on the number of vCPUs you can run concurrently";
export const CAPACITY_MESSAGE = 'Capacity is unavailable at this time. Please try again later or in a different availability zone';
export const INVALID_PARAMETER_MESSAGE = 'Error retrieving security group information for [sg-0123456789abcdef0]: Request limit exceeded.';

/**
 * A class's vCPU in use (this stage and the others) at each change, in virtual epoch ms, in time order. Before the
 * run the account stood as the run finds it: the others at their level from second 0, this stage idle — so a
 * reading at the start sees the minutes before it, as a stage deployed a while ago would.
 */
class UsageHistory {
  private readonly at: number[] = [];
  private readonly vcpu: number[] = [];

  constructor(private readonly before: number) {}

  record(atMs: number, vcpu: number): void {
    this.at.push(atMs);
    this.vcpu.push(vcpu);
  }

  /** The largest value held at any instant of [fromMs, toMs). */
  maximum(fromMs: number, toMs: number): number | undefined {
    // The last change at or before fromMs is the value the window opens with.
    let lo = 0;
    let hi = this.at.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.at[mid] <= fromMs) lo = mid + 1;
      else hi = mid;
    }
    let max = lo === 0 ? this.before : this.vcpu[lo - 1];
    for (let i = lo; i < this.at.length && this.at[i] < toMs; i++) max = Math.max(max, this.vcpu[i]);
    return max;
  }
}

export class EcsEmulator {
  private readonly apiBucket: TokenBucket;
  private readonly fargateRunTask: TokenBucket;
  private readonly launch: Record<Provider, TokenBucket>;
  private readonly inUse: Record<Provider, number> = { FARGATE: 0, FARGATE_SPOT: 0 };
  /** Other workloads: what the scenario says they run, and what they hold (never past the quota). */
  private readonly othersWanted: Record<Provider, number> = { FARGATE: 0, FARGATE_SPOT: 0 };
  private readonly othersHeld: Record<Provider, number> = { FARGATE: 0, FARGATE_SPOT: 0 };
  private readonly usage: Record<Provider, UsageHistory>;
  private readonly attempts = new Map<string, number>();
  private readonly taskDefinitions = new Map<string, { vcpu: number; memoryMiB: number }>();
  private taskSeq = 0;
  runTaskCalls = 0;
  /** The worker of a stage that packs (the sluice design sets it): what a RunTask naming BATCH and TASK_INDEX runs. */
  packedWorker?: PackedWorker;

  constructor(
    private readonly clock: VirtualClock,
    private readonly rng: Rng,
    private readonly recorder: Recorder,
    private readonly options: EcsOptions,
  ) {
    this.apiBucket = new TokenBucket(clock, options.apiBucket.burst, options.apiBucket.refillPerSecond);
    this.fargateRunTask = new TokenBucket(clock, options.fargateRunTaskPerSecond, options.fargateRunTaskPerSecond);
    this.launch = {
      FARGATE: new TokenBucket(clock, options.launchBucket.burst, options.launchBucket.refillPerSecond),
      FARGATE_SPOT: new TokenBucket(clock, options.launchBucket.burst, options.launchBucket.refillPerSecond),
    };
    const othersAtStart = (provider: Provider) =>
      Math.min(options.vcpuQuota[provider], options.background?.[provider]?.find((step) => step.atSeconds === 0)?.vcpu ?? 0);
    this.usage = { FARGATE: new UsageHistory(othersAtStart('FARGATE')), FARGATE_SPOT: new UsageHistory(othersAtStart('FARGATE_SPOT')) };
    for (const provider of ['FARGATE', 'FARGATE_SPOT'] as const) {
      this.usage[provider].record(clock.now(), 0);
      for (const step of options.background?.[provider] ?? []) {
        clock.setTimeout(() => {
          this.othersWanted[provider] = step.vcpu;
          this.settleOthers(provider, true);
        }, step.atSeconds * 1000);
      }
    }
  }

  /** vCPU this stage's tasks hold (both providers). */
  vcpuInUse(): number {
    return this.inUse.FARGATE + this.inUse.FARGATE_SPOT;
  }

  /** vCPU held in the account in one class: this stage's tasks and the other workloads'. */
  accountVcpuInUse(provider: Provider): number {
    return this.inUse[provider] + this.othersHeld[provider];
  }

  /** What the other workloads hold in one class now. */
  othersVcpu(provider: Provider): number {
    return this.othersHeld[provider];
  }

  /**
   * The Maximum of the account's vCPU in use in one class over [fromMs, toMs) (virtual epoch ms): what AWS/Usage
   * ResourceCount's Maximum statistic reports for that period.
   */
  maxAccountVcpu(provider: Provider, fromMs: number, toMs: number): number | undefined {
    return this.usage[provider].maximum(fromMs, toMs);
  }

  /**
   * The others take what they want, up to what the quota leaves beside this stage's tasks. Emits `background`
   * at every step of the scenario and whenever what they hold changes (wantedVcpu says what they were held from).
   */
  private settleOthers(provider: Provider, step: boolean): void {
    const room = Math.max(0, this.options.vcpuQuota[provider] - this.inUse[provider]);
    const held = Math.min(this.othersWanted[provider], room);
    if (!step && held === this.othersHeld[provider]) return;
    this.othersHeld[provider] = held;
    const wanted = this.othersWanted[provider];
    this.recorder.emit('background', { class: USAGE_CLASS_OF[provider], vcpu: held, ...(held < wanted ? { wantedVcpu: wanted } : {}) });
    this.recordUsage(provider);
  }

  private recordUsage(provider: Provider): void {
    this.usage[provider].record(this.clock.now(), this.accountVcpuInUse(provider));
  }

  /** The stage's task definitions by ARN: a task's size is its task definition's, unless RunTask overrides it. */
  registerTaskDefinitions(definitions: ReadonlyArray<{ arn: string; vcpu: number; memoryMiB: number }>): void {
    for (const { arn, ...size } of definitions) this.taskDefinitions.set(arn, size);
  }

  /** `arn:aws:states:::ecs:runTask.sync` with the state's resolved Parameters (PascalCase, as in ASL). */
  async runTaskSync(parameters: Record<string, unknown>, context: { executionName?: string } = {}): Promise<StoppedTask> {
    const jobId = jobIdOf(parameters) ?? context.executionName ?? 'unknown';
    this.runTaskCalls++;
    this.recorder.emit('runTask', { jobId });
    const provider = this.pickProvider(parameters);
    const definition = this.taskDefinitions.get(String(parameters.TaskDefinition));
    const vcpu = vcpuOf(parameters) ?? definition?.vcpu ?? this.options.defaultVcpu;
    this.admit(jobId, provider, vcpu);

    const memoryGb = (memoryOf(parameters) ?? definition?.memoryMiB ?? this.options.defaultMemoryMiB) / 1024;
    const packed = packedTaskOf(parameters);
    if (packed && this.packedWorker) return this.runPackedTask(parameters, { jobId, provider, vcpu, memoryGb }, packed, this.packedWorker);
    const { taskArn, durationSeconds, exitCode, startupSeconds } = this.startTask(jobId, provider, vcpu, memoryGb);
    const { runSeconds, code, stopCode } = this.howTheTaskEnds(provider, durationSeconds, exitCode);
    await this.clock.sleep((startupSeconds + runSeconds) * 1000);
    this.stopTask(jobId, taskArn, provider, vcpu, code, stopCode);

    const task = stoppedTask(parameters, { taskArn, provider, vcpu, code, stopCode, stoppedAt: this.clock.now() });
    if (code !== 0) throw new AwsError('States.TaskFailed', JSON.stringify(task));
    return task;
  }

  /**
   * A packed task: the worker runs the objects it has not recorded yet, one after another, each as its job behaves
   * (its own attempt); an object that fails transiently (or a Spot interruption) stops the task there, exit 75, and
   * an object refused as bad input fails alone. Each end is recorded as the task stops. `taskStart` and `taskStop`
   * list the task's objects (`jobIds`), and `taskStop` each one's exit code.
   */
  private async runPackedTask(
    parameters: Record<string, unknown>,
    { jobId, provider, vcpu, memoryGb }: { jobId: string; provider: Provider; vcpu: number; memoryGb: number },
    packed: { batch: string; task: number },
    worker: PackedWorker,
  ): Promise<StoppedTask> {
    // A list it cannot read (the record unreadable after the SDK's retries): the worker exits 75 at once.
    const listed = await worker.objects(packed.batch, packed.task).catch(() => undefined);
    const toRun = (listed ?? []).filter((o) => !o.recorded).map((o) => o.jobId);
    const runs = toRun.map((id) => ({ jobId: id, ...this.nextAttempt(id) }));
    const startupSeconds = this.options.startupSeconds(jobId);
    const taskArn = this.launchTask(provider, vcpu);
    const pullStartSeconds = (1 - PULL_SHARE_OF_STARTUP) * startupSeconds;
    this.recorder.emit('taskStart', { jobId, jobIds: toRun, taskArn, vcpu, memoryGb, provider, attempt: 1, startupSeconds, pullStartSeconds });
    const { runSeconds, ends, stopCode } = listed
      ? this.packedRun(provider, runs)
      : { runSeconds: 0, ends: [{ jobId, code: 75 }], stopCode: 'EssentialContainerExited' as const };
    await this.clock.sleep((startupSeconds + runSeconds) * 1000);
    const at = new Date(this.clock.now()).toISOString();
    const codes: number[] = [];
    for (const end of ends) {
      if (end.code !== 0 && end.code !== EXIT_CODE_BAD_INPUT) break;
      const outcome = end.code === 0 ? { status: 'succeeded' as const, at } : { status: 'failed' as const, reason: 'bad input (twin)', at };
      // A write refused (the batch settled) or failing past the SDK's retries: the worker exits 75 there.
      if (!(await worker.record(packed.batch, end.jobId, outcome).catch(() => false))) break;
      codes.push(end.code);
    }
    // Objects it never reached, or could not record, end with the task: transiently.
    while (codes.length < toRun.length) codes.push(75);
    const code = listed && codes.every((c) => c === 0 || c === EXIT_CODE_BAD_INPUT) ? 0 : 75;
    this.inUse[provider] -= vcpu;
    this.recordUsage(provider);
    this.recorder.emit('taskStop', { jobId, jobIds: toRun, exitCodes: codes, taskArn, vcpu, provider, exitCode: code, stopCode });
    if (this.othersHeld[provider] < this.othersWanted[provider]) this.settleOthers(provider, false);
    const task = stoppedTask(parameters, { taskArn, provider, vcpu, code, stopCode, stoppedAt: this.clock.now() });
    if (code !== 0) throw new AwsError('States.TaskFailed', JSON.stringify(task));
    return task;
  }

  /** A packed task's objects in order until one stops it (a transient failure, or Spot's SIGTERM landing within the run). */
  private packedRun(provider: Provider, runs: ReadonlyArray<{ jobId: string; durationSeconds: number; exitCode: number }>) {
    const ends: Array<{ jobId: string; code: number }> = [];
    let seconds = 0;
    for (const run of runs) {
      seconds += run.durationSeconds;
      ends.push({ jobId: run.jobId, code: run.exitCode });
      if (run.exitCode !== 0 && run.exitCode !== EXIT_CODE_BAD_INPUT) break;
    }
    if (provider === 'FARGATE_SPOT' && chance(this.rng, this.options.spotInterruptionRate)) {
      const cut = this.rng() * seconds;
      let until = 0;
      const kept = ends.filter((_, i) => (until += runs[i].durationSeconds) <= cut);
      return {
        runSeconds: cut + this.options.sigtermExitSeconds,
        ends: [...kept, { jobId: runs[kept.length]?.jobId ?? '', code: 75 }],
        stopCode: 'SpotInterruption' as const,
      };
    }
    return { runSeconds: seconds, ends, stopCode: 'EssentialContainerExited' as const };
  }

  /** The job's next attempt: how long it runs and how it exits. */
  private nextAttempt(jobId: string): { durationSeconds: number; exitCode: number } {
    const attempt = (this.attempts.get(jobId) ?? 0) + 1;
    this.attempts.set(jobId, attempt);
    return this.options.behaviour(jobId, attempt);
  }

  /** A task's vCPU held from now; its ARN. */
  private launchTask(provider: Provider, vcpu: number): string {
    const taskArn = `arn:aws:ecs:eu-west-1:111111111111:task/twin/${(++this.taskSeq).toString(16).padStart(12, '0')}`;
    this.inUse[provider] += vcpu;
    this.recordUsage(provider);
    return taskArn;
  }

  /** Throws what RunTask answers when it refuses the call, each refusal recorded as its event; returns when the task may launch. */
  private admit(jobId: string, provider: Provider, vcpu: number): void {
    if (chance(this.rng, this.options.invalidParameterRate ?? 0)) {
      this.recorder.emit('invalidParameter', { jobId, error: 'ECS.InvalidParameterException' });
      throw new AwsError('ECS.InvalidParameterException', INVALID_PARAMETER_MESSAGE);
    }
    if (!this.apiBucket.tryTake()) this.reject(jobId, 'throttle', 'ecsApi', 'Rate exceeded');
    if (!this.fargateRunTask.tryTake()) this.reject(jobId, 'throttle', 'fargateRunTask', 'Rate exceeded');
    if (this.accountVcpuInUse(provider) + vcpu > this.options.vcpuQuota[provider] + 1e-9) {
      this.reject(jobId, 'vcpuLimit', provider, VCPU_LIMIT_MESSAGE);
    }
    if (!this.launch[provider].tryTake()) this.reject(jobId, 'throttle', 'fargateLaunch', 'Rate exceeded');
    const capacityErrorRate = this.options.capacityErrorRate + (provider === 'FARGATE_SPOT' ? (this.options.spotCapacityErrorRate ?? 0) : 0);
    if (chance(this.rng, capacityErrorRate)) {
      this.recorder.emit('capacityError', { jobId, reason: CAPACITY_MESSAGE });
      throw new AwsError('AmazonECS.Unknown', JSON.stringify({ Failures: [{ Reason: CAPACITY_MESSAGE }], Tasks: [] }));
    }
  }

  /**
   * Launches the job's next attempt: its vCPU is held from here until it stops. `taskStart` says when, after this
   * RunTask, the task is RUNNING (`startupSeconds`) and its image pull starts (`pullStartSeconds`: Fargate bills
   * from there), and its size (`vcpu`, `memoryGb`).
   */
  private startTask(
    jobId: string,
    provider: Provider,
    vcpu: number,
    memoryGb: number,
  ): { taskArn: string; durationSeconds: number; exitCode: number; startupSeconds: number } {
    const { durationSeconds, exitCode } = this.nextAttempt(jobId);
    const attempt = this.attempts.get(jobId)!;
    const startupSeconds = this.options.startupSeconds(jobId);
    const pullStartSeconds = (1 - PULL_SHARE_OF_STARTUP) * startupSeconds;
    const taskArn = this.launchTask(provider, vcpu);
    this.recorder.emit('taskStart', { jobId, taskArn, vcpu, memoryGb, provider, attempt, startupSeconds, pullStartSeconds });
    return { taskArn, durationSeconds, exitCode, startupSeconds };
  }

  /** How long the task runs after startup and how it stops: as the job behaves, unless Spot interrupts it. */
  private howTheTaskEnds(provider: Provider, durationSeconds: number, exitCode: number): TaskEnding {
    if (provider === 'FARGATE_SPOT' && chance(this.rng, this.options.spotInterruptionRate)) {
      // The interruption lands uniformly within the run; the worker traps SIGTERM and exits 75.
      return { runSeconds: this.rng() * durationSeconds + this.options.sigtermExitSeconds, code: 75, stopCode: 'SpotInterruption' };
    }
    return { runSeconds: durationSeconds, code: exitCode, stopCode: 'EssentialContainerExited' };
  }

  /** Gives the task's vCPU back when it stops. */
  private stopTask(jobId: string, taskArn: string, provider: Provider, vcpu: number, code: number, stopCode: StoppedTask['StopCode']): void {
    this.inUse[provider] -= vcpu;
    this.recordUsage(provider);
    this.recorder.emit('taskStop', { jobId, taskArn, vcpu, provider, exitCode: code, stopCode });
    // Others held back by this stage's tasks take the room back.
    if (this.othersHeld[provider] < this.othersWanted[provider]) this.settleOthers(provider, false);
  }

  private reject(jobId: string, type: 'throttle' | 'vcpuLimit', source: string, message: string): never {
    this.recorder.emit(type, { jobId, source, error: 'ECS.AmazonECSException' });
    throw new AwsError('ECS.AmazonECSException', message);
  }

  private pickProvider(parameters: Record<string, unknown>): Provider {
    const strategy = parameters.CapacityProviderStrategy as Array<{ CapacityProvider: string; Weight?: number; Base?: number }> | undefined;
    if (!Array.isArray(strategy) || strategy.length === 0) return parameters.LaunchType === 'FARGATE_SPOT' ? 'FARGATE_SPOT' : 'FARGATE';
    // A standalone RunTask is placed on its own: its first Base tasks go to the provider with a Base, the rest by
    // weight (CapacityProviderStrategyItem: "how many tasks, at a minimum, to run on the specified capacity provider
    // for each service" — nothing is counted across RunTask calls). Each call here launches one task.
    const based = strategy.find((item) => (item.Base ?? 0) > 0);
    if (based) return based.CapacityProvider as Provider;
    const total = strategy.reduce((sum, item) => sum + (item.Weight ?? 0), 0);
    if (total <= 0) return strategy[0].CapacityProvider as Provider;
    let pick = this.rng() * total;
    for (const item of strategy) {
      pick -= item.Weight ?? 0;
      if (pick < 0) return item.CapacityProvider as Provider;
    }
    return strategy[strategy.length - 1].CapacityProvider as Provider;
  }
}

interface TaskEnding {
  runSeconds: number;
  code: number;
  stopCode: StoppedTask['StopCode'];
}

/** What the emulator knows of a task once it has stopped. */
interface TaskStop {
  taskArn: string;
  provider: Provider;
  vcpu: number;
  code: number;
  stopCode: StoppedTask['StopCode'];
  stoppedAt: number;
}

/** The stopped task in the PascalCase JSON the .sync integration returns (and puts in a failure's Cause). */
function stoppedTask(parameters: Record<string, unknown>, { taskArn, provider, vcpu, code, stopCode, stoppedAt }: TaskStop): StoppedTask {
  return {
    TaskArn: taskArn,
    ClusterArn: String(parameters.Cluster ?? 'arn:aws:ecs:eu-west-1:111111111111:cluster/twin'),
    TaskDefinitionArn: String(parameters.TaskDefinition ?? 'twin'),
    LastStatus: 'STOPPED',
    DesiredStatus: 'STOPPED',
    CapacityProviderName: provider,
    Cpu: String(Math.round(vcpu * 1024)),
    StopCode: stopCode,
    StoppedReason: stopCode === 'SpotInterruption' ? 'Your Spot Task was interrupted.' : 'Essential container in task exited',
    Containers: [{ Name: 'worker', ExitCode: code, LastStatus: 'STOPPED' }],
    Overrides: parameters.Overrides,
    StoppedAt: stoppedAt,
  };
}

/** A variable of the container overrides' environment (how the pipeline passes the job to the worker). */
function overrideEnv(parameters: Record<string, unknown>, name: string): string | undefined {
  const overrides = parameters.Overrides as { ContainerOverrides?: Array<{ Environment?: Array<{ Name: string; Value: string }> }> } | undefined;
  for (const container of overrides?.ContainerOverrides ?? []) {
    const found = container.Environment?.find((entry) => entry.Name === name);
    if (found) return found.Value;
  }
  return undefined;
}

/** JOB_ID from the container overrides (a packed task's: its lead's). */
export function jobIdOf(parameters: Record<string, unknown>): string | undefined {
  return overrideEnv(parameters, 'JOB_ID');
}

/** A packed task's batch and task index (BATCH, TASK_INDEX: functions/packing.ts); undefined for a task of one object. */
export function packedTaskOf(parameters: Record<string, unknown>): { batch: string; task: number } | undefined {
  const [batchEnv, taskIndexEnv] = WORKER_PACKED_TASK_ENV;
  const batch = overrideEnv(parameters, batchEnv);
  const task = overrideEnv(parameters, taskIndexEnv);
  return batch !== undefined && task !== undefined ? { batch, task: Number(task) } : undefined;
}

/** RunTask's task-level memory override (MiB, a string as in the API). */
function memoryOf(parameters: Record<string, unknown>): number | undefined {
  const memory = (parameters.Overrides as { Memory?: string } | undefined)?.Memory;
  return memory !== undefined ? Number(memory) : undefined;
}

function vcpuOf(parameters: Record<string, unknown>): number | undefined {
  const cpu = (parameters.Overrides as { Cpu?: string } | undefined)?.Cpu;
  return cpu !== undefined ? Number(cpu) / 1024 : undefined;
}
