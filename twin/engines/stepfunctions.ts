import { executionArnOf } from '../../functions/jobs';
import { eachState, integrationResource, INTEGRATIONS, type DynamoDbAction, type Integration } from '../../modules/run-jobs/asl';
import type { VirtualClock } from './clock';
import type { DynamoDbApi } from './dynamo';
import type { EcsEmulator } from './ecs';
import { AwsError } from './errors';
import type { LambdaEmulator } from './lambda';
import { loadLocalStepFunctions, type StateMachineConstructor } from './local-sfn';
import type { Rng } from './random';
import type { Recorder } from './recorder';
import { TokenBucket } from './token-bucket';

/**
 * Step Functions Standard: StartExecution/DescribeExecution over aws-local-stepfunctions.
 *
 * - StartExecution is a token bucket: 1,300 burst, 300/s refill in the big Regions (800/150 elsewhere);
 *   over it, ThrottlingException (step-functions service quotas).
 * - Execution names: the same name with the same input while the execution is open is idempotent success;
 *   any other reuse is ExecutionAlreadyExists (StartExecution API). Names are 1–80 characters.
 * - Task states are run by local handlers keyed by state name, built by walking the definition (`eachState`: nested
 *   Map ItemProcessor/Iterator and Parallel branches included) and looking each `Resource` up in TASK_HANDLERS:
 *   `ecs:runTask.sync` → the ECS twin; `dynamodb:getItem|putItem|updateItem|deleteItem` and
 *   `aws-sdk:dynamodb:transactWriteItems` → the real DynamoDB operation on dynalite's engine, service errors
 *   surfacing as `DynamoDB.<ExceptionName>` (`DynamoDb.` for the SDK integration); `sqs:sendMessage` → the SQS
 *   twin; `lambda:invoke` (or a function's ARN) → the Lambda twin (InvocationType Event = asynchronous).
 *   A Resource the twin does not run is refused when the state machine is created.
 * - A Task state without TimeoutSeconds has no timeout on AWS (99999999 s); aws-local-stepfunctions defaults to
 *   60 s, so the twin sets 99999999 explicitly on such states.
 * - State transitions (billed; retries count) = states entered + retries. History events are estimated
 *   (2 per state, +3 per Task, +2 per Map iteration, +3 per retry); over 25,000 the execution fails, as on AWS.
 */
export interface ExecutionInfo {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
  startDate: number;
  stopDate?: number;
  error?: string;
  cause?: string;
  output?: unknown;
  transitions: number;
  historyEvents: number;
}

interface MapIterationInfo {
  execution: ExecutionInfo;
  index: number;
  status: 'SUCCEEDED' | 'FAILED';
  output?: unknown;
  error?: string;
  cause?: string;
}

interface TaskEndInfo {
  stateName: string;
  resource: string;
  input: any;
  execution: ExecutionInfo;
  /** The error name if the attempt failed. */
  error?: string;
}

interface SfnOptions {
  startExecutionBucket: { burst: number; refillPerSecond: number };
  maxHistoryEvents?: number;
}

interface SfnDeps {
  ecs: EcsEmulator;
  dynamodb: DynamoDbApi;
  lambda: LambdaEmulator;
  /** For `sqs:sendMessage` (the state machine's own requeue); absent in designs that send nothing. */
  sqs?: { sendMessage(url: string, body: string, delaySeconds?: number, attributes?: Record<string, { DataType: string; StringValue?: string }>): unknown };
}

type Handler = (input: any, execution: ExecutionInfo) => Promise<unknown>;

/** The actions of Step Functions' optimized DynamoDB integration, and the API operation each calls. */
const DYNAMODB_ACTIONS: Readonly<Record<string, string>> = {
  getItem: 'GetItem',
  putItem: 'PutItem',
  updateItem: 'UpdateItem',
  deleteItem: 'DeleteItem',
} satisfies Record<DynamoDbAction, string>;

/**
 * Step Functions' AWS SDK integration for DynamoDB's TransactWriteItems (`arn:aws:states:::aws-sdk:dynamodb:
 * transactWriteItems`): the Parameters are the API input; errors surface as `DynamoDb.<ExceptionName>` (the SDK
 * integrations' prefix, unlike the optimized integration's `DynamoDB.`), their message as the Cause.
 */
export function dynamoDbSdkTask(dynamodb: DynamoDbApi, action: string): ((input: any) => Promise<Record<string, unknown>>) | undefined {
  if (action !== 'transactWriteItems') return undefined;
  return async (input) => {
    try {
      return await dynamodb.call('TransactWriteItems', input);
    } catch (error) {
      const name = (error as Error).name;
      throw new AwsError(`DynamoDb.${name}`, (error as Error).message);
    }
  };
}

/**
 * Step Functions' optimized DynamoDB integration (`arn:aws:states:::dynamodb:<action>`) run against a real
 * DynamoDB-compatible server: the state's resolved Parameters are the API input, service errors surface as
 * `DynamoDB.<ExceptionName>` as they do in Step Functions. Undefined for an action the twin does not run.
 */
export function dynamoDbTask(dynamodb: DynamoDbApi, action: string): ((input: any) => Promise<Record<string, unknown>>) | undefined {
  const operation = DYNAMODB_ACTIONS[action];
  if (!operation) return undefined;
  return async (input) => {
    try {
      return await dynamodb.call(operation, input);
    } catch (error) {
      const name = (error as Error).name;
      throw new AwsError(name.startsWith('DynamoDB.') ? name : `DynamoDB.${name}`, (error as Error).message);
    }
  };
}

/** Makes the local handler of one Task state. */
type HandlerFactory = (deps: SfnDeps, task: { stateName: string; resource: string }) => Handler;

/** Task states' Resources in the twin's partition. */
const resource = (integration: Integration) => integrationResource('aws', integration);

const lambdaTask: HandlerFactory = (deps, { resource: arn }) => {
  const optimized = arn === resource(INTEGRATIONS.lambdaInvoke);
  return async (input) => {
    const functionName = optimized ? input.FunctionName : arn;
    const payload = optimized ? (input.Payload ?? {}) : input;
    if (optimized && input.InvocationType === 'Event') {
      deps.lambda.invokeAsync(functionName, payload);
      return { StatusCode: 202, Payload: '' };
    }
    const result = await deps.lambda.invokeSync(functionName, payload);
    return optimized ? { StatusCode: 200, Payload: result } : result;
  };
};

/** Resource → how the twin runs a Task state of it: the integrations it runs, one entry each. */
const TASK_HANDLERS: Readonly<Record<string, HandlerFactory>> = {
  [resource(INTEGRATIONS.ecsRunTaskSync)]: (deps) => (input, execution) => deps.ecs.runTaskSync(input, { executionName: execution.name }),
  [resource(INTEGRATIONS.dynamodbTransactWriteItems)]: (deps) => dynamoDbSdkTask(deps.dynamodb, 'transactWriteItems')!,
  ...Object.fromEntries(
    (Object.keys(DYNAMODB_ACTIONS) as DynamoDbAction[]).map((action): [string, HandlerFactory] => [
      resource(`dynamodb:${action}`),
      (deps) => dynamoDbTask(deps.dynamodb, action)!,
    ]),
  ),
  [resource(INTEGRATIONS.sqsSendMessage)]: (deps, { stateName, resource: arn }) => {
    const sqs = deps.sqs;
    if (!sqs) throw new Error(`state ${stateName}: this world has no SQS for ${arn}`);
    // The optimized integration sends a JSON MessageBody as its serialization.
    return async (input) =>
      sqs.sendMessage(
        input.QueueUrl,
        typeof input.MessageBody === 'string' ? input.MessageBody : JSON.stringify(input.MessageBody),
        input.DelaySeconds,
        input.MessageAttributes,
      );
  },
  [resource(INTEGRATIONS.lambdaInvoke)]: lambdaTask,
};

/** A Lambda function's ARN as the Resource: the function is invoked with the state's input, its result the output. */
const LAMBDA_FUNCTION_ARN = /^arn:aws:lambda:/;

export class SfnEmulator {
  private readonly StateMachine: StateMachineConstructor;
  private readonly machines = new Map<string, { machine: InstanceType<StateMachineConstructor>; handlers: Map<string, Handler> }>();
  private readonly executions = new Map<string, ExecutionInfo>();
  private readonly bucket: TokenBucket;
  private seq = 0;
  private endListeners: Array<(execution: ExecutionInfo) => void> = [];
  private iterationListeners: Array<(iteration: MapIterationInfo) => void> = [];
  private taskListeners: Array<(task: TaskEndInfo) => void> = [];
  running = 0;

  constructor(
    private readonly clock: VirtualClock,
    private readonly rng: Rng,
    private readonly recorder: Recorder,
    private readonly deps: SfnDeps,
    private readonly options: SfnOptions,
  ) {
    this.StateMachine = loadLocalStepFunctions(clock, rng).StateMachine;
    this.bucket = new TokenBucket(clock, options.startExecutionBucket.burst, options.startExecutionBucket.refillPerSecond);
  }

  onExecutionEnd(listener: (execution: ExecutionInfo) => void): void {
    this.endListeners.push(listener);
  }

  /** Sees every Task state attempt end (for attributing admissions and releases to jobs). */
  onTaskEnd(listener: (task: TaskEndInfo) => void): void {
    this.taskListeners.push(listener);
  }

  onMapIterationEnd(listener: (iteration: MapIterationInfo) => void): void {
    this.iterationListeners.push(listener);
  }

  /** Registers a definition (validated once with asl-validator, as CreateStateMachine would). */
  createStateMachine(stateMachineArn: string, definition: { StartAt: string; States: Record<string, any>; [field: string]: unknown }): void {
    new this.StateMachine(cloneJson(definition) as any); // throws with asl-validator's messages if invalid
    const runnable = withAwsTaskTimeouts(cloneJson(definition));
    const handlers = new Map<string, Handler>();
    for (const { name, resource } of taskStates(runnable)) {
      const existing = handlers.get(name);
      const handler = this.handlerFor(resource, name);
      if (existing && (existing as Handler & { resource?: string }).resource !== resource) {
        throw new Error(`state name ${name} is used by Tasks with different resources; local handlers are keyed by state name`);
      }
      Object.assign(handler, { resource });
      handlers.set(name, handler);
    }
    const machine = new this.StateMachine(runnable as any, { validationOptions: { noValidate: true } });
    this.machines.set(stateMachineArn, { machine, handlers });
  }

  /** The AWS SDK v3 `client.send(command)` surface for the commands the pipeline uses. */
  async send(command: { constructor: { name: string }; input: any }): Promise<any> {
    const input = command.input;
    switch (command.constructor.name) {
      case 'StartExecutionCommand':
        return this.startExecution(input);
      case 'DescribeExecutionCommand': {
        const execution = this.executions.get(input.executionArn);
        if (!execution) throw new AwsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${input.executionArn}'`, false);
        return describe(execution);
      }
      case 'ListExecutionsCommand': {
        const executions = [...this.executions.values()].filter(
          (e) => e.stateMachineArn === input.stateMachineArn && (input.statusFilter === undefined || e.status === input.statusFilter),
        );
        return {
          executions: executions.map((e) => ({
            executionArn: e.executionArn,
            stateMachineArn: e.stateMachineArn,
            name: e.name,
            status: e.status,
            startDate: new Date(e.startDate),
          })),
        };
      }
      default:
        throw new AwsError('InvalidAction', `the Step Functions twin does not implement ${command.constructor.name}`, false);
    }
  }

  startExecution(input: { stateMachineArn: string; name?: string; input?: string }): { executionArn: string; startDate: Date } {
    const entry = this.machines.get(input.stateMachineArn);
    if (!entry) throw new AwsError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${input.stateMachineArn}'`, false);
    if (!this.bucket.tryTake()) {
      this.recorder.count('startExecutionThrottles');
      throw new AwsError('ThrottlingException', 'Rate exceeded');
    }
    const name = input.name ?? this.randomName();
    // eslint-disable-next-line no-control-regex -- Step Functions refuses control characters in names; so does the twin
    if (!/^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]{1,80}$/.test(name)) {
      throw new AwsError('InvalidName', `Invalid Name: '${name}'`, false);
    }
    const executionArn = executionArnOf(input.stateMachineArn, name);
    const text = input.input ?? '{}';
    const existing = this.executions.get(executionArn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === text) return { executionArn, startDate: new Date(existing.startDate) };
      throw new AwsError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`, false);
    }
    const execution: ExecutionInfo = {
      executionArn,
      stateMachineArn: input.stateMachineArn,
      name,
      input: text,
      status: 'RUNNING',
      startDate: this.clock.now(),
      transitions: 0,
      historyEvents: 2,
    };
    this.executions.set(executionArn, execution);
    this.running++;
    this.recorder.emit('execStart', { execution: name });
    this.run(entry, execution);
    return { executionArn, startDate: new Date(execution.startDate) };
  }

  describeExecution(executionArn: string): ExecutionInfo | undefined {
    return this.executions.get(executionArn);
  }

  private run(entry: { machine: InstanceType<StateMachineConstructor>; handlers: Map<string, Handler> }, execution: ExecutionInfo): void {
    const run = entry.machine.run(JSON.parse(execution.input), {
      overrides: { taskResourceLocalHandlers: this.listenedHandlers(entry.handlers, execution) },
      context: { Execution: { Id: execution.executionArn, Name: execution.name } },
    } as any);
    const history = this.countHistory(run, execution);
    run.result.then(
      (output: unknown) => this.finish(execution, 'SUCCEEDED', { output }),
      (error: any) => this.finish(execution, ...endOf(error, history)),
    );
  }

  /** The execution's Task handlers, each telling the task listeners what it was given and how it ended. */
  private listenedHandlers(handlers: Map<string, Handler>, execution: ExecutionInfo): Record<string, (input: any) => Promise<any>> {
    const listened: Record<string, (input: any) => Promise<any>> = {};
    for (const [name, handler] of handlers) {
      const resource = (handler as Handler & { resource: string }).resource;
      listened[name] = async (input) => {
        try {
          const output = await handler(input, execution);
          for (const listener of this.taskListeners) listener({ stateName: name, resource, input, execution });
          return output;
        } catch (error) {
          for (const listener of this.taskListeners) listener({ stateName: name, resource, input, execution, error: (error as Error).name });
          throw error;
        }
      };
    }
    return listened;
  }

  /**
   * Counts the execution's transitions and history events from the library's event log, tells the iteration
   * listeners each Map iteration's end, and aborts the execution once it is over the history limit, as AWS fails it.
   */
  private countHistory(run: { eventLogs: unknown; abort(): void }, execution: ExecutionInfo): { exceeded: boolean; limit: number } {
    const history = { exceeded: false, limit: this.options.maxHistoryEvents ?? 25_000 };
    void (async () => {
      for await (const event of run.eventLogs as AsyncIterable<any>) {
        switch (event.type) {
          case 'StateEntered':
            execution.transitions++;
            execution.historyEvents += event.state?.type === 'Task' ? 5 : 2;
            break;
          case 'StateRetried':
            execution.transitions++;
            execution.historyEvents += 3;
            break;
          case 'MapIterationStarted':
            execution.historyEvents += 2;
            break;
          case 'MapIterationSucceeded':
          case 'MapIterationFailed':
            for (const listener of this.iterationListeners) listener(iterationOf(execution, event));
            break;
        }
        if (execution.historyEvents > history.limit && !history.exceeded) {
          history.exceeded = true;
          run.abort();
        }
      }
    })();
    return history;
  }

  private finish(execution: ExecutionInfo, status: ExecutionInfo['status'], result: { output?: unknown; error?: string; cause?: string }): void {
    execution.status = status;
    execution.stopDate = this.clock.now();
    Object.assign(execution, result);
    this.running--;
    this.recorder.emit('execEnd', {
      execution: execution.name,
      status,
      transitions: execution.transitions,
      historyEvents: execution.historyEvents,
      ...(result.error ? { error: result.error, cause: String(result.cause ?? '').slice(0, 300) } : {}),
    });
    for (const listener of this.endListeners) listener(execution);
  }

  private handlerFor(resource: string, stateName: string): Handler {
    const factory = TASK_HANDLERS[resource] ?? (LAMBDA_FUNCTION_ARN.test(resource) ? lambdaTask : undefined);
    if (!factory) {
      throw new Error(
        `state ${stateName}: the twin does not run Task resource ${resource} (it runs ${Object.keys(TASK_HANDLERS).join(', ')} and Lambda function ARNs)`,
      );
    }
    return factory(this.deps, { stateName, resource });
  }

  private randomName(): string {
    const hex = () =>
      Math.floor(this.rng() * 0x100000000)
        .toString(16)
        .padStart(8, '0');
    return `${hex()}-${hex().slice(0, 4)}-${hex().slice(0, 4)}-${hex()}${(++this.seq).toString(16)}`;
  }
}

function iterationOf(execution: ExecutionInfo, event: any): MapIterationInfo {
  const failed = event.type === 'MapIterationFailed';
  return {
    execution,
    index: event.index,
    status: failed ? 'FAILED' : 'SUCCEEDED',
    output: event.output,
    error: failed ? event.Error : undefined,
    cause: failed ? String(event.Cause ?? '') : undefined,
  };
}

/** How an execution the library ended with an error ends on AWS: over the history limit, aborted, timed out or failed. */
export function endOf(error: any, history: { exceeded: boolean; limit: number }): [ExecutionInfo['status'], { error?: string; cause?: string }] {
  if (history.exceeded) return ['FAILED', { error: 'States.Runtime', cause: `The execution reached the maximum number of history events (${history.limit}).` }];
  if (error?.name === 'ExecutionAbortedError') return ['ABORTED', {}];
  if (error?.name === 'ExecutionTimeoutError') return ['TIMED_OUT', { error: 'States.Timeout' }];
  const cause = error?.cause ?? error;
  return ['FAILED', { error: cause?.name ?? 'States.Runtime', cause: String(cause?.message ?? cause) }];
}

/** Every Task state of a definition, including those nested in Map and Parallel states. */
export function taskStates(definition: { States: Record<string, any> }): Array<{ name: string; resource: string }> {
  return [...eachState(definition)].filter(({ state }) => state.Type === 'Task').map(({ name, state }) => ({ name, resource: state.Resource }));
}

export function withAwsTaskTimeouts<T extends { States: Record<string, any> }>(definition: T): T {
  for (const { state } of eachState(definition)) {
    if (state.Type === 'Task' && state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) state.TimeoutSeconds = 99_999_999;
  }
  return definition;
}

function describe(execution: ExecutionInfo) {
  return {
    executionArn: execution.executionArn,
    stateMachineArn: execution.stateMachineArn,
    name: execution.name,
    status: execution.status,
    startDate: new Date(execution.startDate),
    stopDate: execution.stopDate !== undefined ? new Date(execution.stopDate) : undefined,
    input: execution.input,
    error: execution.error,
    cause: execution.cause,
  };
}

/**
 * A JSON clone. Not structuredClone: under jest that returns objects of the outer realm, and
 * aws-local-stepfunctions only evaluates `.$` keys inside objects whose prototype is its own realm's Object.prototype.
 */
export function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
