/**
 * One schedule's world: the twin's engines (dynalite's DynamoDB engine, the SQS emulator, the virtual clock), the
 * Step Functions front running the synthesized state machine, the RunTask stand-in, and the actors — the real
 * dispatcher, janitor, capacity reader, configure-pool and `sluice` pool and redrive commands — each with clients
 * whose every call waits at a gate. The scheduler (search.ts) picks what happens next from `options()`; `apply` does
 * it and lets everything it set going run until every actor waits at a gate or on the clock.
 */
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { createHash } from 'node:crypto';
import { pause, resize, resume } from '../cli/pool';
import { resizeRoute } from '../cli/route-cap';
import { redrive } from '../cli/redrive';
import { CliError, type StageClients } from '../cli/stage';
import { objectsOfTask, readBatchRecord, recordObjectOutcome } from '../functions/batches';
import { readCapacity } from '../functions/capacity';
import { configurePool } from '../functions/configure-pool';
import { finishTask, parseFinishEvent } from '../functions/finish-task';
import { runDispatcher, StartedBatches, wakeOf } from '../functions/dispatcher';
import { runJanitor } from '../functions/janitor';
import { jobIdOf, parseIntakeMessage } from '../functions/jobs';
import { routesOf, type RouteSettings } from '../functions/routes';
import { standIn, type AwsClient, type Log } from '../functions/runtime';
import { INTEGRATIONS, integrationResource } from '../modules/run-jobs/asl';
import { VirtualClock } from '../twin/engines/clock';
import { AwsError } from '../twin/engines/errors';
import { DynamoDb } from '../twin/engines/dynamo';
import { Recorder } from '../twin/engines/recorder';
import { dynamoDbSdkTask, dynamoDbTask } from '../twin/engines/stepfunctions';
import { SqsEmulator } from '../twin/engines/sqs';
import { mulberry32, type Rng } from '../twin/engines/random';
import { accountFront, EcsStandIn, StepFunctionsFront, type Execution, type LibraryBinding } from './engines';
import {
  ActorCrashed,
  EXECUTION_FAULTS,
  gatedClient,
  integrationError,
  LAMBDA_FAULTS,
  lostAnswerError,
  RUN_TASK_OUTCOMES,
  transientError,
  type Actor,
  type ActorKind,
  type Fault,
  type Gate,
  type Release,
  type RunTaskOutcome,
} from './gates';
import { Invariants, type Violation } from './invariants';
import type { ExplorerStage } from './stage';

/** What happens to the stage from outside: uploads, their duplicates, an execution stopped, an operator's command. */
export type EnvEvent =
  | { readonly kind: 'upload'; readonly object: number }
  | { readonly kind: 'duplicate'; readonly object: number }
  | { readonly kind: 'abort' }
  | { readonly kind: 'operator'; readonly command: OperatorCommand; readonly object?: number }
  /** A service refuses every call (throttles, 5xx) for a while: whatever is released meanwhile is refused. */
  | { readonly kind: 'outage'; readonly service: OutageService; readonly seconds: number };

export type OutageService = 'sqs' | 'dynamodb' | 'sfn' | 'ecs';

export type OperatorCommand =
  'pause' | 'resume' | 'resize' | 'resize-route' | 'resize-route-back' | 'reseed' | 'redrive-job' | 'redrive-failed' | 'redrive-dlq';

export function describeEvent(event: EnvEvent): string {
  switch (event.kind) {
    case 'upload':
    case 'duplicate':
      return `${event.kind} ${event.object}`;
    case 'abort':
      return 'abort the oldest running execution';
    case 'operator':
      return `sluice ${event.command}${event.object !== undefined ? ` ${event.object}` : ''}`;
    case 'outage':
      return `${event.service} refuses every call for ${event.seconds} s`;
  }
}

/** Hears a call as it is released: the actor, the service ('dynamodb', 'sqs', …), the operation and its input. */
export type CallListener = (actor: Actor, service: string, operation: string, input: unknown) => void;

export type Option =
  { readonly kind: 'release'; readonly gate: Gate; readonly how: Release } | { readonly kind: 'env'; readonly event: EnvEvent } | { readonly kind: 'advance' };

/** An option as a schedule records it: stable across replays (gates by key, events by description). */
export function describeOption(option: Option): string {
  switch (option.kind) {
    case 'release':
      return `${option.gate.key} ${option.how}`;
    case 'env':
      return `env ${describeEvent(option.event)}`;
    case 'advance':
      return 'advance';
  }
}

const BUCKET_VERSION = (object: number) => `v${object}`;
const DISPATCHER_SCHEDULE_MS = 60_000;
const CAPACITY_SCHEDULE_MS = 60_000;
/** Lambda's asynchronous invocations wait while the function is at its reserved concurrency; the dispatcher's expire after 60 s. */
const DISPATCHER_EVENT_AGE_MS = 60_000;
const WAITING_INVOCATIONS = 2;
const OPERATOR_ATTEMPTS = 5;
const READ_OPERATIONS = /^(Get|BatchGet|Describe|List|Scan|Query)/;

/** A Lambda function with reserved concurrency 1: one run at a time, later invocations wait (or expire). */
interface SingleFunction {
  active?: Actor;
  waiting: Array<{ payload: unknown; at: number }>;
}

export class ExplorerWorld {
  readonly clock = new VirtualClock();
  readonly rng: Rng;
  readonly ddb: DynamoDb;
  readonly sqs: SqsEmulator;
  readonly sfn: StepFunctionsFront;
  readonly ecs: EcsStandIn;
  readonly invariants: Invariants;
  readonly gates: Gate[] = [];
  readonly actors: Actor[] = [];
  /** The stage's routes (one, unnamed, without routes) and their intake queues; `intakeUrl` is the first's. */
  readonly routes: readonly RouteSettings[];
  readonly intakeUrls: readonly string[];
  readonly intakeUrl: string;
  readonly deadLetterUrl: string;
  /** The environment's events not yet happened, in order. */
  readonly script: EnvEvent[];
  private gateSeq = 0;
  private readonly ordinals = new Map<ActorKind, number>();
  private readonly dispatcher: SingleFunction = { waiting: [] };
  private readonly janitor: SingleFunction = { waiting: [] };
  private capacityActive = false;
  /** The dispatcher's warm container: the batches it saw started (gone when it crashes). */
  private started = new StartedBatches();
  private operator: Actor | undefined;
  /** Services refusing every call, until when (epoch ms). */
  private readonly outages = new Map<string, number>();
  /** What each message body parses to (the invariants parse every message after every step). */
  private readonly parsed = new Map<string, string | undefined>();
  private readonly operatorQueue: EnvEvent[] = [];
  /** Who received each intake message (by message id): for the dead-letter invariant. */
  readonly receivedBy = new Map<string, Actor[]>();

  constructor(
    readonly es: ExplorerStage,
    readonly binding: LibraryBinding,
    machine: ReturnType<LibraryBinding['machine']>,
    script: readonly EnvEvent[],
    seed: number,
    private readonly onCall?: CallListener,
  ) {
    this.rng = mulberry32(seed);
    const recorder = new Recorder(this.clock);
    this.ddb = new DynamoDb(this.clock, recorder, 0);
    this.sqs = new SqsEmulator(this.clock, recorder);
    this.script = [...script];
    this.routes = routesOf(es.dispatcher);
    this.intakeUrls = this.routes.map((r) => r.queueUrl);
    this.intakeUrl = this.intakeUrls[0];
    this.deadLetterUrl = es.dispatcher.deadLetterQueueUrl;
    this.invariants = new Invariants(this);
    this.ecs = new EcsStandIn(
      this.clock,
      {
        taskSeconds: 30,
        stopTimeoutSeconds: es.config.task.stopTimeoutSeconds,
        vcpuOf: (arn) => {
          const definition = es.stage.taskDefinitions.find((d) => d.arn === arn);
          if (!definition) throw new Error(`the stage has no task definition ${arn}: ECS would refuse the RunTask`);
          return definition.vcpu;
        },
      },
      {
        started: (jobId, execution) => this.invariants.taskStarting(jobId, execution),
        exited: (jobId, code) => this.invariants.taskExited(jobId, code),
        packedObjects: (batch, task) => this.packedObjects(batch, task),
        recordOutcome: (batch, jobId, outcome) => recordObjectOutcome(this.ddb.documentClient, this.es.dispatcher.batchesTableName, batch, jobId, outcome),
      },
    );
    this.sfn = new StepFunctionsFront(es.stage.stateMachine.arn, machine, this.clock, {
      handlers: (execution) => this.handlersOf(execution),
      started: (execution) => this.invariants.executionStarted(execution),
      ended: (execution) => this.executionEnded(execution),
    });
  }

  async init(): Promise<void> {
    this.binding.current = { clock: this.clock, rng: this.rng };
    for (const table of this.es.stage.tables) await this.ddb.createTable(table);
    for (const queue of this.es.stage.queues) this.sqs.createQueue(queue);
    this.sqs.onMessageMoved = (_queue, _body, _reason, messageId) => this.invariants.deadLettered(messageId, this.receivedBy.get(messageId) ?? []);
    for (const table of [this.es.dispatcher.tableName, this.es.dispatcher.batchesTableName]) {
      this.ddb.watch(table, (key, item) => this.invariants.written(table, unmarshall(key), item ? unmarshall(item) : undefined));
    }
    await configurePool(this.ddb.documentClient, { settings: this.es.configurePool, input: this.es.seed, now: this.clock.now() });
    this.every(DISPATCHER_SCHEDULE_MS, () => this.invokeDispatcher({ source: 'aws.events', 'detail-type': 'Scheduled Event' }));
    this.every(this.es.janitorPeriodMs, () => this.invokeJanitor({ source: 'aws.events', 'detail-type': 'Scheduled Event' }));
    this.every(CAPACITY_SCHEDULE_MS, () => this.runCapacity());
    await this.settle();
  }

  /** Everything the scheduler may do now. */
  options(faults: boolean): Option[] {
    const options: Option[] = [];
    for (const gate of this.gates) for (const how of faults ? gate.releases : gate.releases.slice(0, 1)) options.push({ kind: 'release', gate, how });
    if (this.script.length > 0) options.push({ kind: 'env', event: this.script[0] });
    if (this.clock.nextTimerAt() !== undefined) options.push({ kind: 'advance' });
    return options;
  }

  async apply(option: Option): Promise<void> {
    this.binding.current = { clock: this.clock, rng: this.rng };
    switch (option.kind) {
      case 'release':
        option.gate.release(option.how);
        break;
      case 'env':
        this.script.splice(this.script.indexOf(option.event), 1);
        this.happen(option.event);
        break;
      case 'advance':
        this.clock.advance();
        this.killOverdue();
        break;
    }
    await this.settle();
    this.invariants.afterStep();
  }

  /** Nothing left to do: the script is played, no actor runs, every upload has reached an end. */
  quiet(): boolean {
    return this.script.length === 0 && this.gates.length === 0 && this.actors.every((a) => a.state !== 'running') && this.invariants.allSettled();
  }

  get violation(): Violation | undefined {
    return this.invariants.violation;
  }

  /** A digest of what the engines hold (for counting distinct states). */
  stateDigest(): string {
    return createHash('sha1').update(this.invariants.digest()).digest('hex').slice(0, 16);
  }

  /** Runs what was set going until every actor waits at a gate or on the clock; timers due now fire. */
  private async settle(): Promise<void> {
    for (;;) {
      await this.clock.settle();
      const next = this.clock.nextTimerAt();
      if (next === undefined || next > this.clock.seconds() * 1000) return;
      this.clock.fireDue();
    }
  }

  private every(periodMs: number, fn: () => void): void {
    const tick = () => {
      fn();
      this.clock.setTimeout(tick, periodMs);
    };
    this.clock.setTimeout(tick, periodMs);
  }

  /** A Lambda's timeout ends its run (what it had sent stays done). */
  private killOverdue(): void {
    for (const actor of this.actors)
      if (actor.state === 'running' && actor.deadline !== undefined && this.clock.now() >= actor.deadline) this.crash(actor, 'timed out');
  }

  // ── Actors ────────────────────────────────────────────────────────────────────────────────────────────────────

  private spawn(
    kind: ActorKind,
    label: string | undefined,
    timeoutMs: number | undefined,
    body: (actor: Actor) => Promise<unknown>,
    ended?: (actor: Actor) => void,
  ): Actor {
    const ordinal = (this.ordinals.get(kind) ?? 0) + 1;
    this.ordinals.set(kind, ordinal);
    const now = this.clock.now();
    const actor: Actor = {
      id: this.actors.length + 1,
      kind,
      label: label ?? `${kind}#${ordinal}`,
      deadline: timeoutMs !== undefined ? now + timeoutMs : undefined,
      startedAt: now,
      state: 'running',
      calls: 0,
    };
    this.actors.push(actor);
    if (ended) this.endedHooks.set(actor, ended);
    const finish = (state: Actor['state'], error?: unknown) => {
      if (actor.state !== 'running') return;
      actor.state = state;
      actor.error = error;
      this.invariants.actorEnded(actor);
      ended?.(actor);
    };
    body(actor).then(
      () => finish('done'),
      (error: unknown) => finish('failed', error),
    );
    return actor;
  }

  private crash(actor: Actor, why: string): void {
    if (actor.state !== 'running') return;
    actor.state = 'crashed';
    for (const gate of this.gates.filter((g) => g.actor === actor)) gate.cancel(why);
    if (actor.kind === 'dispatcher') this.started = new StartedBatches();
    this.invariants.actorEnded(actor);
    this.endedHooks.get(actor)?.(actor);
  }

  private readonly endedHooks = new Map<Actor, (actor: Actor) => void>();

  /** A call of `actor`: it waits at a gate until the scheduler releases it. */
  private open = (actor: Actor, service: string, command: { constructor: { name: string }; input: unknown }, run: () => Promise<unknown>): Promise<unknown> => {
    if (actor.state !== 'running') return Promise.reject(new ActorCrashed(actor.label, 'is gone'));
    const operation = command.constructor.name.replace(/Command$/, '');
    const releases: readonly Release[] =
      actor.kind === 'execution'
        ? EXECUTION_FAULTS
        : READ_OPERATIONS.test(operation)
          ? LAMBDA_FAULTS.filter((f) => f !== 'crash-after' && f !== 'error-after')
          : LAMBDA_FAULTS;
    return this.gate(actor, service, operation, command.input, releases, (how) => this.callWith(actor, service, operation, how, run));
  };

  private gate(
    actor: Actor,
    service: string,
    operation: string,
    input: unknown,
    releases: readonly Release[],
    call: (how: Release) => Promise<unknown>,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const gate: Gate = {
        id: ++this.gateSeq,
        actor,
        key: `${actor.label}/${actor.calls++}:${operation}`,
        service,
        operation,
        input,
        releases,
        release: (how) => {
          this.gates.splice(this.gates.indexOf(gate), 1);
          if (how !== 'crash-before') this.onCall?.(actor, service, operation, input);
          call(this.duringOutage(service, how)).then(resolve, reject);
        },
        cancel: (why) => {
          this.gates.splice(this.gates.indexOf(gate), 1);
          reject(new ActorCrashed(actor.label, why));
        },
      };
      this.gates.push(gate);
    });
  }

  /** What a release becomes while its service refuses every call: refused, unless the actor dies first anyway. */
  private duringOutage(service: string, how: Release): Release {
    if ((this.outages.get(service) ?? 0) <= this.clock.now()) return how;
    if (service === 'ecs') return 'throttled';
    return how === 'crash-before' ? how : 'transient';
  }

  /** A Lambda's (or the CLI's) call, with the fault the scheduler chose. */
  private async callWith(actor: Actor, service: string, operation: string, how: Release, run: () => Promise<unknown>): Promise<unknown> {
    switch (how as Fault) {
      case 'transient':
        throw transientError(service, operation);
      case 'crash-before':
        this.crash(actor, 'crashed before the call');
        throw new ActorCrashed(actor.label, 'crashed');
      case 'crash-after':
        await run().then(
          (output) => this.heard(actor, operation, output),
          () => undefined,
        );
        this.crash(actor, 'crashed after the call');
        throw new ActorCrashed(actor.label, 'crashed');
      case 'error-after': {
        const output = await run();
        this.heard(actor, operation, output);
        throw lostAnswerError(service, operation);
      }
      default: {
        const output = await run();
        this.heard(actor, operation, output);
        return output;
      }
    }
  }

  /** What the explorer notes of an answer: which messages an actor received. */
  private heard(actor: Actor, operation: string, output: unknown): void {
    if (operation !== 'ReceiveMessage') return;
    for (const message of (output as { Messages?: Array<{ MessageId: string }> })?.Messages ?? []) {
      this.receivedBy.set(message.MessageId, [...(this.receivedBy.get(message.MessageId) ?? []), actor]);
    }
  }

  private clientsOf(actor: Actor) {
    const gated = (service: string, client: AwsClient) => gatedClient(this.open, actor, service, client);
    return {
      ddb: gated('dynamodb', this.ddb.documentClient),
      sqs: gated('sqs', this.sqs),
      sfn: gated('sfn', this.sfn),
      lambda: gated('lambda', standIn({ send: async (command: { input: { Payload?: Uint8Array } }) => this.wakeFromJanitor(command.input.Payload) })),
      account: gated(
        'account',
        accountFront(
          this.es.config.capacity.accountVcpuQuota,
          (provider) =>
            this.ecs
              .running()
              .filter((t) => t.capacityProvider === provider)
              .reduce((sum, t) => sum + t.vcpu, 0),
          this.clock,
        ),
      ),
    };
  }

  private readonly functionClock = { now: () => this.clock.now(), sleep: (ms: number) => this.clock.sleep(ms) };

  /** The functions' own log lines, printed with the actor's name when EXPLORER_LOG is set (for reading a replay). */
  /**
   * `sluice resize --route` on the first capped route: its cap doubled (`raise`), or given back to its configured
   * value. Nothing on a stage without routes.
   */
  private async resizeCappedRoute(clients: StageClients, raise: boolean): Promise<unknown> {
    const capped = this.es.dispatcher.routes?.find((route) => route.maxVcpu !== undefined);
    if (!capped) return undefined;
    return resizeRoute(clients, this.es.config, capped.name, raise ? 2 * capped.maxVcpu! : 'config');
  }

  private logOf(actor: Actor): Log | undefined {
    if (!process.env.EXPLORER_LOG) return undefined;
    return (event) => console.log(`${this.clock.seconds().toFixed(3).padStart(9)} ${actor.label} ${JSON.stringify(event)}`);
  }

  private invokeDispatcher(payload: unknown): void {
    this.invoke(this.dispatcher, payload, (p) => this.startDispatcher(p));
  }

  private invokeJanitor(payload: unknown): void {
    this.invoke(this.janitor, payload, (p) => this.startJanitor(p));
  }

  private invoke(fn: SingleFunction, payload: unknown, start: (payload: unknown) => void): void {
    if (fn.active?.state === 'running') {
      fn.waiting.push({ payload, at: this.clock.now() });
      if (fn.waiting.length > WAITING_INVOCATIONS) fn.waiting.shift();
      return;
    }
    start(payload);
  }

  private nextRun(fn: SingleFunction, start: (payload: unknown) => void): void {
    while (fn.waiting.length > 0) {
      const next = fn.waiting.shift()!;
      if (this.clock.now() - next.at <= DISPATCHER_EVENT_AGE_MS) return start(next.payload);
    }
  }

  private startDispatcher(payload: unknown): void {
    this.dispatcher.active = this.spawn(
      'dispatcher',
      undefined,
      this.es.dispatcherTimeoutMs,
      (actor) => {
        const c = this.clientsOf(actor);
        return runDispatcher({
          sqs: c.sqs,
          sfn: c.sfn,
          ddb: c.ddb,
          clock: this.functionClock,
          settings: this.es.dispatcher,
          started: this.started,
          wake: wakeOf(payload),
          log: this.logOf(actor),
        });
      },
      () => this.nextRun(this.dispatcher, (p) => this.startDispatcher(p)),
    );
  }

  private startJanitor(payload: unknown): void {
    this.janitor.active = this.spawn(
      'janitor',
      undefined,
      this.es.janitorTimeoutMs,
      (actor) => {
        const c = this.clientsOf(actor);
        return runJanitor(
          { sfn: c.sfn, sqs: c.sqs, lambda: c.lambda, ddb: c.ddb, clock: this.functionClock, settings: this.es.janitor, log: this.logOf(actor) },
          payload,
        );
      },
      () => this.nextRun(this.janitor, (p) => this.startJanitor(p)),
    );
  }

  private wakeFromJanitor(payload: Uint8Array | undefined): { StatusCode: number } {
    this.invokeDispatcher(payload ? JSON.parse(Buffer.from(payload).toString()) : {});
    return { StatusCode: 202 };
  }

  private runCapacity(): void {
    if (this.capacityActive) return;
    this.capacityActive = true;
    this.spawn(
      'capacity',
      undefined,
      30_000,
      (actor) => {
        const c = this.clientsOf(actor);
        return readCapacity({ quotas: c.account, cloudwatch: c.account, ddb: c.ddb, clock: this.functionClock, settings: this.es.capacity });
      },
      () => (this.capacityActive = false),
    );
  }

  // ── The environment ──────────────────────────────────────────────────────────────────────────────────────────

  /** Objects take the stage's routes two by two (1 and 2 the first route's, 3 and 4 the next's): a route may have two waiting. */
  private routeOf(object: number): RouteSettings {
    return this.routes[Math.floor((object - 1) / 2) % this.routes.length];
  }

  objectKey(object: number): string {
    return `${this.routeOf(object).inputPrefix}object-${object}.csv`;
  }

  jobIdOf(object: number): string {
    return jobIdOf(this.es.dispatcher.bucketName, this.objectKey(object), BUCKET_VERSION(object), `0000${object}`);
  }

  private uploadEvent(object: number): string {
    return JSON.stringify({
      version: '0',
      id: `event-${object}`,
      'detail-type': 'Object Created',
      source: 'aws.s3',
      account: this.es.config.account.id,
      time: new Date(this.clock.now()).toISOString(),
      region: this.es.config.account.region,
      detail: {
        bucket: { name: this.es.dispatcher.bucketName },
        object: { key: this.objectKey(object), size: 5, 'version-id': BUCKET_VERSION(object), sequencer: `0000${object}` },
        reason: 'PutObject',
      },
    });
  }

  private happen(event: EnvEvent): void {
    switch (event.kind) {
      case 'upload':
      case 'duplicate':
        // The route's rule's two targets: its intake queue, and the dispatcher woken.
        this.invariants.uploaded(this.jobIdOf(event.object));
        this.sqs.sendMessage(this.routeOf(event.object).queueUrl, this.uploadEvent(event.object));
        this.invokeDispatcher({ source: 'aws.s3', 'detail-type': 'Object Created' });
        return;
      case 'abort': {
        const oldest = [...this.sfn.executions.values()].find((e) => e.status === 'RUNNING');
        if (oldest) this.sfn.stop(oldest);
        return;
      }
      case 'outage':
        this.outages.set(event.service, this.clock.now() + event.seconds * 1000);
        return;
      case 'operator':
        // One operator, one command after another: the next waits for the one before to end.
        if (this.operator?.state === 'running') this.operatorQueue.push(event);
        else this.operate(event.command, event.object);
        return;
    }
  }

  /**
   * An operator's command. One that fails for want of AWS (a fault, its process killed) is run again, as an operator
   * would, a few times; one refused for its own reasons (not paused, nothing to redrive) is not.
   */
  private operate(command: OperatorCommand, object = 0, attempt = 1): void {
    const { config } = this.es;
    const now = this.clock.now();
    const again = (actor: Actor) => {
      const refused = actor.state === 'failed' && actor.error instanceof CliError;
      if ((actor.state === 'failed' || actor.state === 'crashed') && !refused && attempt < OPERATOR_ATTEMPTS) return this.operate(command, object, attempt + 1);
      const next = this.operatorQueue.shift();
      if (next?.kind === 'operator') this.operate(next.command, next.object);
    };
    this.operator = this.spawn(
      'operator',
      `sluice-${command}#${(this.ordinals.get('operator') ?? 0) + 1}`,
      undefined,
      async (actor) => {
        const c = this.clientsOf(actor);
        const clients = { ddb: c.ddb, sqs: c.sqs, sfn: c.sfn } as unknown as StageClients;
        const progress = { update: () => undefined, end: () => undefined };
        switch (command) {
          case 'pause':
            return pause(clients, config, now);
          case 'resume':
            return resume(clients, config, now);
          case 'resize':
            return resize(clients, config, { vcpu: Math.max(1, this.es.seed.budgetVcpu - 1) }, now);
          case 'resize-route':
          case 'resize-route-back':
            return this.resizeCappedRoute(clients, command === 'resize-route');
          case 'reseed':
            return configurePool(c.ddb, { settings: this.es.configurePool, input: this.es.seed, now });
          case 'redrive-job':
          case 'redrive-failed':
          case 'redrive-dlq': {
            const request =
              command === 'redrive-job'
                ? { jobIds: [this.jobIdOf(object)], deadLetters: false, dryRun: false }
                : command === 'redrive-failed'
                  ? { failedSince: now - 86_400_000, jobIds: [], deadLetters: false, dryRun: false }
                  : { jobIds: [], deadLetters: true, dryRun: false };
            // Twice, one after the other: the second must find nothing to do unless the job moved meanwhile.
            await redrive(clients, config, request, progress, now);
            const before = this.invariants.rowsDigest();
            const second = await redrive(clients, config, request, progress, this.clock.now());
            this.invariants.redrivenTwice(second.redriven, before);
            return second;
          }
        }
      },
      again,
    );
  }

  // ── Step Functions ───────────────────────────────────────────────────────────────────────────────────────────

  /** A packed task's objects as its worker reads them: its batch record's, of its task, each with whether its end is recorded. */
  private async packedObjects(batch: string, task: number): Promise<Array<{ jobId: string; recorded: boolean }>> {
    return objectsOfTask(await readBatchRecord(this.ddb.documentClient, this.es.dispatcher.batchesTableName, batch), task);
  }

  private executionActors = new Map<string, Actor>();

  /** The Task states' handlers of one execution: each call waits at a gate of the execution's actor. */
  private handlersOf(execution: Execution): Record<string, (input: any) => Promise<unknown>> {
    const actor = this.spawn(
      'execution',
      `exec:${execution.name}`,
      undefined,
      () => new Promise<void>((resolve) => this.executionDone.set(execution.arn, resolve)),
    );
    this.executionActors.set(execution.arn, actor);
    const handlers: Record<string, (input: any) => Promise<unknown>> = {};
    const partition = 'aws';
    for (const { name, resource } of this.sfn.taskStates()) {
      const via = (service: string, operation: string, run: (input: any) => Promise<unknown>) => (input: any) =>
        this.gate(actor, service, `${name}.${operation}`, input, EXECUTION_FAULTS, async (how) => {
          if (execution.status !== 'RUNNING') throw new ActorCrashed(actor.label, 'ended');
          if (how === 'transient') throw integrationError(service, operation, transientError(service, operation));
          const output = await run(input);
          if (how === 'error-after') throw integrationError(service, operation, lostAnswerError(service, operation));
          return output;
        });
      if (resource === integrationResource(partition, INTEGRATIONS.ecsRunTaskSync)) {
        handlers[name] = (input) =>
          this.gate(actor, 'ecs', `${name}.RunTask`, input, RUN_TASK_OUTCOMES, (how) => {
            if (execution.status !== 'RUNNING') return Promise.reject(new ActorCrashed(actor.label, 'ended'));
            return this.ecs.runTaskSync(input, execution.name, how as RunTaskOutcome);
          });
      } else if (resource === integrationResource(partition, INTEGRATIONS.dynamodbTransactWriteItems)) {
        handlers[name] = via('dynamodb', 'TransactWriteItems', dynamoDbSdkTask(this.ddb, 'transactWriteItems')!);
      } else if (resource.startsWith(`arn:${partition}:states:::dynamodb:`)) {
        handlers[name] = via('dynamodb', 'UpdateItem', dynamoDbTask(this.ddb, resource.split(':').pop()!)!);
      } else if (resource === integrationResource(partition, INTEGRATIONS.sqsSendMessage)) {
        handlers[name] = via('sqs', 'SendMessage', async (input) =>
          this.sqs.sendMessage(
            input.QueueUrl,
            typeof input.MessageBody === 'string' ? input.MessageBody : JSON.stringify(input.MessageBody),
            input.DelaySeconds,
            input.MessageAttributes,
          ),
        );
      } else if (resource === integrationResource(partition, INTEGRATIONS.lambdaInvoke)) {
        handlers[name] = via('lambda', 'Invoke', async (input) => {
          if (this.invokesFinisher(input)) return this.runFinisher(input.Payload);
          this.invokeDispatcher(input.Payload ?? {});
          return { StatusCode: 202, Payload: '' };
        });
      } else {
        throw new Error(`explorer: state ${name} calls ${resource}, which the explorer does not run`);
      }
    }
    return handlers;
  }

  /** Whether a Lambda Task state calls the finisher (a packed stage's, synchronously) rather than waking the dispatcher. */
  private invokesFinisher(input: { FunctionName?: unknown }): boolean {
    const finisher = this.es.finisher;
    return finisher !== undefined && String(input.FunctionName).split(':').includes(finisher.name);
  }

  /**
   * The finisher, called synchronously by an execution: an actor of its own, whose calls wait at gates and which may
   * crash like any Lambda. The execution hears its result, or an error if it died.
   */
  private runFinisher(payload: unknown): Promise<unknown> {
    const finisher = this.es.finisher!;
    return new Promise((resolve, reject) => {
      let summary: unknown;
      this.spawn(
        'finisher',
        undefined,
        finisher.timeoutMs,
        async (actor) => {
          const c = this.clientsOf(actor);
          const deps = { ddb: c.ddb, sqs: c.sqs, clock: this.functionClock, settings: finisher.settings, log: this.logOf(actor) };
          summary = await finishTask(deps, parseFinishEvent(payload));
        },
        (actor) =>
          actor.state === 'done'
            ? resolve({ StatusCode: 200, Payload: summary })
            : // A function that failed or died: Step Functions raises its error (Lambda.Unknown for a crash or timeout).
              reject(new AwsError('Lambda.Unknown', `the finisher ${actor.state}: ${String(actor.error ?? '')}`)),
      );
    });
  }

  private readonly executionDone = new Map<string, () => void>();

  private executionEnded(execution: Execution): void {
    const actor = this.executionActors.get(execution.arn);
    if (actor) for (const gate of this.gates.filter((g) => g.actor === actor)) gate.cancel(`execution ${execution.status}`);
    this.executionDone.get(execution.arn)?.();
    if (execution.status !== 'SUCCEEDED') this.ecs.stopTasksOf(execution.name);
    this.invariants.executionEnded(execution);
    // The stage's rule on FAILED, TIMED_OUT and ABORTED executions invokes the janitor with the event.
    if (['FAILED', 'TIMED_OUT', 'ABORTED'].includes(execution.status)) {
      this.invokeJanitor({
        source: 'aws.states',
        'detail-type': 'Step Functions Execution Status Change',
        detail: { executionArn: execution.arn, stateMachineArn: this.es.stage.stateMachine.arn, status: execution.status },
      });
    }
  }

  // ── What the invariants read ─────────────────────────────────────────────────────────────────────────────────

  /** The jobs of every message in the intake queues (visible, in flight or delayed) and in their DLQ. */
  jobsWithMessages(): Set<string> {
    return this.jobsOf([...this.intakeUrls.flatMap((url) => this.sqs.messages(url)), ...this.sqs.messages(this.deadLetterUrl)]);
  }

  deadLetteredJobs(): Set<string> {
    return this.jobsOf(this.sqs.messages(this.deadLetterUrl));
  }

  private jobsOf(messages: ReadonlyArray<{ readonly body: string }>): Set<string> {
    const jobs = new Set<string>();
    for (const message of messages) {
      if (!this.parsed.has(message.body)) {
        // Any key: a job of any route (the scope of each is the dispatcher's to check).
        const parsed = parseIntakeMessage(message.body, { bucketName: this.es.dispatcher.bucketName, inputPrefix: '' });
        this.parsed.set(message.body, parsed.kind === 'job' ? parsed.job.jobId : undefined);
      }
      const jobId = this.parsed.get(message.body);
      if (jobId) jobs.add(jobId);
    }
    return jobs;
  }
}
