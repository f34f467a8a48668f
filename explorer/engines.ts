/**
 * What the explorer's actors run against, besides the twin's DynamoDB and SQS: a Step Functions front that runs the
 * synthesized state machine through aws-local-stepfunctions, and a stand-in for ECS whose RunTask answers as the
 * scheduler chooses. ECS's control plane is the one part no engine here covers: the stand-in only keeps which task
 * runs for which job and when it stops, from ECS's documented behaviour (a stopped task gets SIGTERM, then SIGKILL
 * after the container's stop timeout).
 */
import { USAGE_CLASS } from '../functions/capacity-codes';
import { executionArnOf } from '../functions/jobs';
import type { ObjectOutcome } from '../functions/packing';
import { CAPACITY_MESSAGE, jobIdOf as runTaskJobId, packedTaskOf, VCPU_LIMIT_MESSAGE } from '../twin/engines/ecs';
import type { VirtualClock } from '../twin/engines/clock';
import { AwsError } from '../twin/engines/errors';
import { loadLocalStepFunctions, type StateMachineConstructor } from '../twin/engines/local-sfn';
import { cloneJson, endOf, taskStates, withAwsTaskTimeouts } from '../twin/engines/stepfunctions';
import type { Rng } from '../twin/engines/random';
import type { RunTaskOutcome } from './gates';

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface Execution {
  readonly name: string;
  readonly arn: string;
  readonly input: string;
  readonly jobIds: readonly string[];
  status: ExecutionStatus;
  readonly startDate: number;
  stopDate?: number;
  error?: string;
  cause?: string;
  abort?: () => void;
}

/**
 * aws-local-stepfunctions bound once per process to whichever world runs now: its timers, `Date` and jitter go to
 * that world's clock and generator. Loading the library's bundle costs tens of milliseconds; a world costs less.
 */
export class LibraryBinding {
  current: { clock: VirtualClock; rng: Rng } | undefined;
  readonly StateMachine: StateMachineConstructor;

  constructor() {
    const world = () => {
      if (!this.current) throw new Error('explorer: the state machine library ran outside a world');
      return this.current;
    };
    const clock = {
      now: () => world().clock.now(),
      setTimeout: (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => world().clock.setTimeout(fn, ms, ...args),
      clearTimeout: (handle: Parameters<VirtualClock['clearTimeout']>[0]) => world().clock.clearTimeout(handle),
      dateClass(): DateConstructor {
        const now = () => world().clock.now();
        class BoundDate extends Date {
          constructor(...args: unknown[]) {
            if (args.length === 0) super(now());
            else super(...(args as [string | number | Date]));
          }
          static now(): number {
            return now();
          }
        }
        return BoundDate as unknown as DateConstructor;
      },
    };
    this.StateMachine = loadLocalStepFunctions(clock as unknown as VirtualClock, () => world().rng()).StateMachine;
  }

  /** The definition as Step Functions runs it (a Task without a timeout has none), and its Task states. */
  machine(definition: { StartAt: string; States: Record<string, unknown> }) {
    const runnable = withAwsTaskTimeouts(cloneJson(definition) as { StartAt: string; States: Record<string, any> });
    return {
      machine: new this.StateMachine(runnable as never, { validationOptions: { noValidate: true } }),
      tasks: taskStates(runnable),
    };
  }
}

type TaskHandler = (input: any) => Promise<unknown>;

/**
 * StartExecution, DescribeExecution and ListExecutions over the library, with Step Functions' name rules: the same
 * name and input while the execution runs is the same execution; any other reuse, open or closed, is
 * ExecutionAlreadyExists (names stay taken for 90 days).
 */
export class StepFunctionsFront {
  readonly executions = new Map<string, Execution>();

  constructor(
    private readonly stateMachineArn: string,
    private readonly machine: ReturnType<LibraryBinding['machine']>,
    private readonly clock: VirtualClock,
    private readonly hooks: {
      /** The Task states' handlers of one execution (each waits at a gate of that execution). */
      handlers(execution: Execution): Record<string, TaskHandler>;
      started(execution: Execution): void;
      ended(execution: Execution): void;
    },
  ) {}

  async send(command: { constructor: { name: string }; input: any }): Promise<any> {
    const input = command.input;
    switch (command.constructor.name) {
      case 'StartExecutionCommand':
        return this.start(input.name, input.input ?? '{}');
      case 'DescribeExecutionCommand': {
        const execution = this.executions.get(input.executionArn);
        if (!execution) throw new AwsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${input.executionArn}'`, false);
        return {
          executionArn: execution.arn,
          name: execution.name,
          status: execution.status,
          input: execution.input,
          startDate: new Date(execution.startDate),
          stopDate: execution.stopDate !== undefined ? new Date(execution.stopDate) : undefined,
          error: execution.error,
          cause: execution.cause,
        };
      }
      case 'ListExecutionsCommand':
        return {
          executions: [...this.executions.values()]
            .filter((e) => input.statusFilter === undefined || e.status === input.statusFilter)
            .map((e) => ({ executionArn: e.arn, name: e.name, status: e.status, startDate: new Date(e.startDate) })),
        };
      default:
        throw new AwsError('InvalidAction', `the explorer's Step Functions does not run ${command.constructor.name}`, false);
    }
  }

  private start(name: string, text: string) {
    const arn = executionArnOf(this.stateMachineArn, name);
    const existing = this.executions.get(arn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === text) return { executionArn: arn, startDate: new Date(existing.startDate) };
      throw new AwsError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`, false);
    }
    const parsed = JSON.parse(text) as { jobs?: Array<{ jobId: string }> };
    const execution: Execution = {
      name,
      arn,
      input: text,
      jobIds: (parsed.jobs ?? []).map((j) => j.jobId),
      status: 'RUNNING',
      startDate: this.clock.now(),
    };
    this.executions.set(arn, execution);
    this.hooks.started(execution);
    const run = this.machine.machine.run(parsed, {
      overrides: { taskResourceLocalHandlers: this.hooks.handlers(execution) },
      context: { Execution: { Id: arn, Name: name } },
    } as never) as unknown as { result: Promise<unknown>; abort(): void };
    execution.abort = () => run.abort();
    run.result.then(
      () => this.end(execution, 'SUCCEEDED', {}),
      (error: unknown) => {
        const [status, details] = endOf(error, { exceeded: false, limit: Infinity });
        this.end(execution, status, details);
      },
    );
    return { executionArn: arn, startDate: new Date(execution.startDate) };
  }

  private end(execution: Execution, status: ExecutionStatus, details: { error?: string; cause?: string }) {
    if (execution.status !== 'RUNNING') return;
    execution.status = status;
    execution.stopDate = this.clock.now();
    execution.error = details.error;
    execution.cause = details.cause;
    this.hooks.ended(execution);
  }

  /** StopExecution: the execution ends ABORTED; its running Task states are cancelled. */
  stop(execution: Execution): void {
    execution.abort?.();
  }

  taskStates() {
    return this.machine.tasks;
  }
}

export interface Task {
  /** The job it runs (a packed task's lead), and every job it runs (a packed task's objects it had not finished yet). */
  readonly jobId: string;
  readonly jobIds: readonly string[];
  readonly execution: string;
  /** The capacity provider RunTask named (the first of its strategy). */
  readonly capacityProvider?: string;
  /** Its task definition's vCPU. */
  readonly vcpu: number;
  readonly startedAt: number;
  /** When the container exits on its own. */
  readonly endsAt: number;
  /** When ECS has stopped it after a StopTask (SIGTERM, then SIGKILL after the stop timeout). */
  stoppedAt?: number;
}

/** RunTask (.sync) as the scheduler decides it ends; the tasks that run, and until when. */
export class EcsStandIn {
  readonly tasks: Task[] = [];
  private seq = 0;

  constructor(
    private readonly clock: VirtualClock,
    /** `vcpuOf`: the vCPU of the task definition a RunTask names (a route may run its own). */
    private readonly settings: { taskSeconds: number; stopTimeoutSeconds: number; vcpuOf: (taskDefinition: string) => number },
    private readonly hooks: {
      started(jobId: string, execution: string): void;
      exited(jobId: string, code: number): void;
      /** A packed task's objects, in order, from its batch record, each with whether the worker recorded its end. */
      packedObjects(batch: string, task: number): Promise<ReadonlyArray<{ readonly jobId: string; readonly recorded: boolean }>>;
      /** Records an object's end on the batch record as the worker does; false when the record is gone (the batch was settled). */
      recordOutcome(batch: string, jobId: string, outcome: ObjectOutcome): Promise<boolean>;
    },
  ) {}

  /** The tasks that hold vCPU now (running, or stopping after StopTask). */
  running(): Task[] {
    const now = this.clock.now();
    return this.tasks.filter((t) => now < Math.min(t.endsAt, t.stoppedAt ?? Infinity));
  }

  /** RunTask .sync for `parameters` ending as `outcome`: the task's description, or the error Step Functions raises. */
  runTaskSync(parameters: Record<string, unknown>, execution: string, outcome: RunTaskOutcome): Promise<unknown> {
    const jobId = runTaskJobId(parameters) ?? 'unknown';
    switch (outcome) {
      case 'capacity':
        return Promise.reject(new AwsError('AmazonECS.Unknown', JSON.stringify({ Failures: [{ Reason: CAPACITY_MESSAGE }], Tasks: [] })));
      case 'vcpu-limit':
        return Promise.reject(new AwsError('ECS.AmazonECSException', VCPU_LIMIT_MESSAGE));
      case 'throttled':
        return Promise.reject(new AwsError('ECS.AmazonECSException', 'Rate exceeded'));
    }
    const packed = packedTaskOf(parameters);
    if (packed) return this.runPackedTask(parameters, execution, outcome, packed);
    const taskArn = `arn:aws:ecs:eu-west-1:111111111111:task/explorer/${++this.seq}`;
    this.hooks.started(jobId, execution);
    const task = this.launch(parameters, execution, jobId, [jobId]);
    const exitCode = outcome === 'exit0' ? 0 : outcome === 'exit75' ? 75 : 65;
    return new Promise((resolve, reject) =>
      this.clock.setTimeout(() => {
        if (task.stoppedAt === undefined) this.hooks.exited(jobId, exitCode);
        const described = {
          TaskArn: taskArn,
          LastStatus: 'STOPPED',
          StopCode: 'EssentialContainerExited',
          Containers: [{ Name: 'worker', ExitCode: exitCode }],
        };
        if (exitCode === 0) resolve(described);
        else reject(new AwsError('States.TaskFailed', JSON.stringify(described)));
      }, this.settings.taskSeconds * 1000),
    );
  }

  /**
   * A packed task: the worker runs the objects it has not recorded yet, one after another, and records each one's end.
   * How the scheduler ends the task: `exit0`, every object done; `exit65`, the first refused as bad input (recorded
   * failed) and the others done, the task exiting 0; `exit75`, the task stopped transiently on an object (recording
   * nothing more). An end the worker cannot record (the batch was settled) stops it there, exit 75.
   */
  private async runPackedTask(
    parameters: Record<string, unknown>,
    execution: string,
    outcome: 'exit0' | 'exit65' | 'exit75',
    packed: { batch: string; task: number },
  ): Promise<unknown> {
    const objects = await this.hooks.packedObjects(packed.batch, packed.task);
    const toRun = objects.filter((o) => !o.recorded).map((o) => o.jobId);
    for (const jobId of toRun) this.hooks.started(jobId, execution);
    const task = this.launch(parameters, execution, runTaskJobId(parameters) ?? 'unknown', toRun);
    const taskArn = `arn:aws:ecs:eu-west-1:111111111111:task/explorer/${++this.seq}`;
    await this.clock.sleep(this.settings.taskSeconds * 1000);
    // A task stopped while it ran (its execution ended) that reaches the end of its object within its stop timeout
    // records that object's end: the worker does not abandon an outcome write for SIGTERM.
    if (task.stoppedAt !== undefined && toRun.length > 0 && this.clock.now() <= task.stoppedAt) {
      const at = new Date(this.clock.now()).toISOString();
      if (await this.hooks.recordOutcome(packed.batch, toRun[0], { status: 'succeeded', at })) this.hooks.exited(toRun[0], 0);
    }
    // `exit75` stops on the first object of a task's first run (the others never reached), and after one object of a
    // run that resumes (the rest of the task not re-run): both ways a packed task's retry meets.
    const stopAt = toRun.length === objects.length ? 0 : 1;
    const exitCode = task.stoppedAt === undefined ? await this.recordEnds(packed.batch, toRun, outcome, stopAt) : 75;
    const described = { TaskArn: taskArn, LastStatus: 'STOPPED', StopCode: 'EssentialContainerExited', Containers: [{ Name: 'worker', ExitCode: exitCode }] };
    if (exitCode === 0) return described;
    throw new AwsError('States.TaskFailed', JSON.stringify(described));
  }

  /** A task launched now for `jobIds` (a packed task's: the objects it will run), holding its task definition's vCPU. */
  private launch(parameters: Record<string, unknown>, execution: string, jobId: string, jobIds: readonly string[]): Task {
    const strategy = parameters.CapacityProviderStrategy as Array<{ CapacityProvider?: string }> | undefined;
    const task: Task = {
      jobId,
      jobIds,
      execution,
      capacityProvider: strategy?.[0]?.CapacityProvider,
      vcpu: this.settings.vcpuOf(String(parameters.TaskDefinition)),
      startedAt: this.clock.now(),
      endsAt: this.clock.now() + this.settings.taskSeconds * 1000,
    };
    this.tasks.push(task);
    return task;
  }

  /** Records the ends of a packed task's objects as the scheduler chose them; answers the task's exit code. */
  private async recordEnds(batch: string, toRun: readonly string[], outcome: 'exit0' | 'exit65' | 'exit75', stopAt: number): Promise<number> {
    const at = new Date(this.clock.now()).toISOString();
    for (const [i, jobId] of toRun.entries()) {
      const stopsHere = outcome === 'exit75' && i >= Math.min(stopAt, toRun.length - 1);
      const end: ObjectOutcome | undefined = stopsHere
        ? undefined
        : outcome === 'exit65' && i === 0
          ? { status: 'failed', reason: 'refused as bad input (explorer)', at }
          : { status: 'succeeded', at };
      if (!end || !(await this.hooks.recordOutcome(batch, jobId, end))) {
        // It stopped on this object; the ones after it never ran.
        this.hooks.exited(jobId, 75);
        return 75;
      }
      this.hooks.exited(jobId, end.status === 'failed' ? 65 : 0);
    }
    return 0;
  }

  /** The execution ended while its tasks ran: Step Functions stops them; each is gone after its stop timeout. */
  stopTasksOf(execution: string): void {
    const stoppedAt = this.clock.now() + this.settings.stopTimeoutSeconds * 1000;
    for (const task of this.tasks)
      if (task.execution === execution && task.stoppedAt === undefined && task.endsAt > this.clock.now()) task.stoppedAt = stoppedAt;
  }
}

/** Service Quotas and AWS/Usage for the capacity reader: the stage's quota, and the vCPU its tasks hold (per minute). */
export function accountFront(quotaVcpu: number, usedVcpu: (capacityProvider: string) => number, clock: VirtualClock) {
  return {
    async send(command: { constructor: { name: string }; input: any }): Promise<any> {
      switch (command.constructor.name) {
        case 'GetServiceQuotaCommand':
          return { Quota: { ServiceCode: 'fargate', QuotaCode: command.input.QuotaCode, Value: quotaVcpu } };
        case 'GetAWSDefaultServiceQuotaCommand':
          return { Quota: { ServiceCode: 'fargate', QuotaCode: command.input.QuotaCode, Value: quotaVcpu } };
        case 'GetMetricDataCommand': {
          const minute = Math.floor(clock.now() / 60_000) * 60_000 - 60_000;
          // The query names its class as AWS/Usage does (Standard/OnDemand, Standard/Spot): the provider's use.
          const usageClass = command.input.MetricDataQueries[0].MetricStat.Metric.Dimensions.find((d: { Name: string }) => d.Name === 'Class').Value;
          const provider = Object.entries(USAGE_CLASS).find(([, c]) => c === usageClass)![0];
          return { MetricDataResults: [{ Id: 'usage', Values: [usedVcpu(provider)], Timestamps: [new Date(minute)] }] };
        }
        default:
          throw new AwsError('InvalidAction', `the explorer's account does not answer ${command.constructor.name}`, false);
      }
    },
  };
}
