/**
 * The sluice state machine: a Map over the jobs the dispatcher admitted, each one run as a Fargate task and always
 * ending with its lease given back: with its result (one transaction: the ledger row and a released counter), or
 * back to the intake queue when the account or Fargate has no capacity for it now — never failed for that.
 * The happy path is three states a job: RunTask, FinishJob, WakeDispatcher.
 *
 * On a stage that packs (functions/packing.ts) the Map's items are tasks, each its lead job with `pack`: the worker
 * reads its objects from the batch record, and every ending state (of the same names) hands the task to the finisher
 * (functions/finish-task.ts), which writes each object's result and gives every lease back. A stage that does not
 * pack is built exactly as before packing existed.
 */
import { stagePacks, type EnvironmentConfig } from '../../environments';
import { vcpuOf } from '../../environments/fargate';
import { ADMITTED_FOR_ANOTHER_STATE_MACHINE, RETURNED_BY, type JobInput } from '../../functions/jobs';
import { CLASS_SHORT_AT, RELEASED_BY_CLASS } from '../../functions/placement';
import { RELEASED_BY_ROUTE } from '../../functions/routes';
import { LEDGER_KEY_PREFIX, LEDGER_RESULT_EXPRESSIONS } from '../../functions/ledger';
import { POOL_KEY } from '../../functions/limiter';
import { WORKER_JOB_ENV, WORKER_PACKED_TASK_ENV, WORKER_ROUTE_ENV, WORKER_STATE_ENTERED_ENV } from '../../task-image/image-reference';
import { EXIT_CODES } from '../../task-image/src/exit-codes';
import { partitionOf } from '../../environments/partition';
import type { PolicyStatement } from '../iam';
import { STATE_ITEMS } from '../state-table';
import { choice, fail, map, pass, retrier, stateMachine, wait, type ChoiceRule, type Retrier, type StateMachineDefinition, type Step } from './asl';
import {
  dynamodbUpdateItem,
  ecsRunTaskSync,
  inputKey,
  lambdaInvoke,
  lambdaInvokeAsync,
  literalKey,
  prefixedKey,
  sqsSendMessage,
  transactWrite,
  type AwsPlace,
  type EcsTaskTarget,
  type SentTo,
  type TransactItem,
  type WrittenTable,
} from './integrations';
import { leaseSeconds, retryDelaysSeconds, runTaskStateTimeoutSeconds } from './timing';

/** What the states call, by group; the account, Region and timing come from the config. */
interface RunJobsDefinitionProps {
  readonly config: EnvironmentConfig;
  /** The state table: ledger rows, released counters and the pool. */
  readonly table: { readonly name: string; readonly arn: string };
  /**
   * Where a job without capacity goes back: the intake queue; on a stage with routes, its route's (the job's
   * intakeQueueUrl), one of `routeArns`.
   */
  readonly queue: { readonly url: string; readonly arn: string } | { readonly routeArns: readonly string[] };
  /**
   * The worker's task: what RunTask starts, its container and where it runs. Without routes, the stage's task
   * definition; with routes, the one each job names (its route's), of one of `taskDefinitionFamilyArns`.
   */
  readonly task: Omit<EcsTaskTarget, 'taskDefinition'> & {
    readonly taskDefinitionArn: string;
    readonly taskDefinitionFamilyArn: string;
    readonly taskDefinitionFamilyArns: readonly string[];
    readonly containerName: string;
    readonly subnetIds: readonly string[];
    readonly securityGroupIds: readonly string[];
  };
  /** The dispatcher, woken after each release. */
  readonly dispatcher: { readonly arn: string };
  /** On a stage that packs (and only there): the finisher, which ends each task (functions/finish-task.ts). */
  readonly finisher?: { readonly arn: string };
}

/** The definition and the statements its Task states need (the role's policy adds log delivery). */
export interface RunJobsDefinition {
  readonly definition: StateMachineDefinition;
  readonly statements: readonly PolicyStatement[];
}

/** State names: the twin and the tests address states by them. */
export const STATES = {
  runJobs: 'RunJobs',
  runTask: 'RunTask',
  whyNotStarted: 'WhyNotStarted',
  runTaskWhileThrottled: 'RunTaskWhileThrottled',
  whyStillNotStarted: 'WhyStillNotStarted',
  classifyTaskFailure: 'ClassifyTaskFailure',
  readStoppedTask: 'ReadStoppedTask',
  classifyExitCode: 'ClassifyExitCode',
  prepareRetry: 'PrepareRetry',
  waitBeforeRetry: 'WaitBeforeRetry',
  finishJob: 'FinishJob',
  recordSucceededOnly: 'RecordSucceededOnly',
  recordFailure: 'RecordFailure',
  recordFailedOnly: 'RecordFailedOnly',
  returnForCapacity: 'ReturnForCapacity',
  giveBackLeaseShortOfCapacity: 'GiveBackLeaseShortOfCapacity',
  returnWhileThrottled: 'ReturnWhileThrottled',
  giveBackLease: 'GiveBackLease',
  returnForVcpuLimit: 'ReturnForVcpuLimit',
  giveBackLeaseAndHold: 'GiveBackLeaseAndHold',
  wakeDispatcher: 'WakeDispatcher',
  wakeFailed: 'WakeFailed',
  leaveToJanitor: 'LeaveToJanitor',
  checkTaskSize: 'CheckTaskSize',
  admittedForAnotherTaskSize: 'AdmittedForAnotherTaskSize',
  admittedUnplaced: 'AdmittedUnplaced',
  admittedWithoutRoute: 'AdmittedWithoutRoute',
  admittedUnpacked: 'AdmittedUnpacked',
} as const;

/** Which job field feeds each variable the worker reads. */
const JOB_FIELD_OF_ENV: Record<(typeof WORKER_JOB_ENV)[number], keyof JobInput> = {
  BUCKET: 'bucket',
  KEY: 'key',
  VERSION_ID: 'versionId',
  JOB_ID: 'jobId',
};

/** On a stage that packs, where each variable a packed task's worker reads comes from (functions/packing.ts). */
const PACK_ENV_SOURCE: Record<(typeof WORKER_PACKED_TASK_ENV)[number], string> = {
  // The batch record's key.
  BATCH: '$$.Execution.Name',
  // A container override's value is a string: the task's index in decimal.
  TASK_INDEX: "States.Format('{}', $.job.pack.task)",
  JOB_ID: '$.job.jobId',
};

/** Errors of `ecs:runTask.sync` that mean "not now" (throttling, capacity, failures[]), per the ECS integration docs. */
const ECS_TRANSIENT_ERRORS = ['ECS.AmazonECSException', 'AmazonECS.Unknown'];
/**
 * EC2 throttling the security-group lookup during RunTask surfaces as this error, message "Error retrieving security
 * group information … Request limit exceeded"; the same error name also means a real misconfiguration.
 */
export const ECS_INVALID_PARAMETER = 'ECS.InvalidParameterException';
/** The messages that tell RunTask's errors apart (StringMatches patterns on the Cause). */
export const RUN_TASK_CAUSES = {
  vcpuLimit: '*limit on the number of vCPUs*',
  noCapacity: '*Capacity is unavailable*',
  ec2Throttling: '*Request limit exceeded*',
} as const;

/**
 * The DynamoDB errors worth retrying, under the optimized integration's prefix (`DynamoDB.`) and the AWS SDK
 * integration's (`DynamoDb.`). SDK integrations always add the Exception suffix, also to errors the API reference
 * names without it (RequestLimitExceeded): "be sure to include the Exception suffix" (supported-services-awssdk).
 */
const DYNAMODB_TRANSIENT = ['ProvisionedThroughputExceededException', 'RequestLimitExceededException', 'ThrottlingException', 'InternalServerErrorException'];
const LAMBDA_TRANSIENT_ERRORS = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];
const SQS_TRANSIENT_ERRORS = ['Sqs.SqsException', 'SQS.SdkClientException', 'SQS.AmazonSQSException', 'States.TaskFailed'];

const dynamoRetry: Retrier = retrier('dynamo', {
  ErrorEquals: [...DYNAMODB_TRANSIENT.map((e) => `DynamoDB.${e}`), 'DynamoDB.AmazonDynamoDBException'],
  IntervalSeconds: 1,
  MaxAttempts: 8,
  BackoffRate: 2,
  MaxDelaySeconds: 30,
  JitterStrategy: 'FULL',
});
/**
 * A release transaction is cancelled when another transaction writes its released counter at that instant
 * (TransactionConflict) — or when its lease is no longer this execution's: after a few tries, the result is recorded
 * without the lease, which the janitor gives back.
 */
const transactionRetry: Retrier = retrier('transaction', {
  ErrorEquals: ['DynamoDb.TransactionCanceledException', 'DynamoDb.TransactionConflictException', ...DYNAMODB_TRANSIENT.map((e) => `DynamoDb.${e}`)],
  IntervalSeconds: 1,
  MaxAttempts: 5,
  BackoffRate: 2,
  MaxDelaySeconds: 8,
  JitterStrategy: 'FULL',
});

/** What the state builders share: the props, the resources as the integrations take them, what several states need. */
interface Context {
  readonly props: RunJobsDefinitionProps;
  readonly config: EnvironmentConfig;
  readonly where: AwsPlace;
  /** The state table, with the name of the statement that allows the states' updates (keys united under it). */
  readonly table: WrittenTable;
  readonly queue: SentTo;
  /** The stage has routes: each job names its route (`route`) and its route's queue (`intakeQueueUrl`). */
  readonly routed: boolean;
  /** What RunTask starts: the stage's task definition, or (with routes) the job's `taskDefinitionArn`. */
  readonly worker: EcsTaskTarget;
  readonly dispatcher: RunJobsDefinitionProps['dispatcher'] & { readonly statementId: string };
  /** Set on a stage that packs (stagePacks): the Map's items are tasks, and the finisher ends each. */
  readonly finisher?: RunJobsDefinitionProps['dispatcher'] & { readonly statementId: string };
  readonly ecsApiRetry: Retrier;
}

function contextOf(props: RunJobsDefinitionProps): Context {
  const { config, task } = props;
  const ecs = config.retry.ecsApi;
  const routed = !('url' in props.queue);
  if (stagePacks(config) !== (props.finisher !== undefined)) {
    throw new Error(`a stage that packs, and only such a stage, ends its tasks with the finisher (stage ${config.stage} packs: ${stagePacks(config)})`);
  }
  return {
    props,
    config,
    where: { partition: partitionOf(config.account.region), region: config.account.region, accountId: config.account.id },
    table: { ...props.table, statementIds: { Update: 'LedgerRowsAndCounters' } },
    queue:
      'url' in props.queue
        ? { ...props.queue, statementId: 'BackToTheQueue' }
        : { urlPath: '$.job.intakeQueueUrl', arns: props.queue.routeArns, statementId: 'BackToTheQueue' },
    routed,
    worker: {
      ...task,
      taskDefinition: routed
        ? { arnPath: '$.job.taskDefinitionArn', familyArns: task.taskDefinitionFamilyArns }
        : { arn: task.taskDefinitionArn, familyArn: task.taskDefinitionFamilyArn },
    },
    dispatcher: { ...props.dispatcher, statementId: 'WakeTheDispatcher' },
    ...(props.finisher ? { finisher: { ...props.finisher, statementId: 'InvokeTheFinisher' } } : {}),
    ecsApiRetry: {
      ErrorEquals: [...ECS_TRANSIENT_ERRORS, ECS_INVALID_PARAMETER],
      IntervalSeconds: ecs.intervalSeconds,
      MaxAttempts: ecs.maxAttempts,
      BackoffRate: ecs.backoffRate,
      MaxDelaySeconds: ecs.maxDelaySeconds,
      // Spread retries out: executions that failed together must not retry together.
      JitterStrategy: 'FULL',
    },
  };
}

/** The state table's items the states write: a job's ledger row, its released counter shard, the pool. */
const LEDGER_KEY = prefixedKey('pk', LEDGER_KEY_PREFIX, '$.job.jobId');
const RELEASED_KEY = inputKey('pk', '$.job.releaseShard', STATE_ITEMS.released);
const POOL_ITEM_KEY = literalKey('pk', POOL_KEY.pk);
const AT = { 'S.$': '$$.State.EnteredTime' };
const THIS_EXECUTION = { 'S.$': '$$.Execution.Name' };

function runTask(ctx: Context, name: string, retry: Retrier[], whenNotStarted: string): Step {
  const worker = ctx.props.task;
  return ecsRunTaskSync(
    ctx.where,
    name,
    {
      target: ctx.worker,
      parameters: {
        // The class admission placed the batch in (functions/placement.ts): where the account had room for it.
        CapacityProviderStrategy: [{ 'CapacityProvider.$': '$.job.capacityProvider', Weight: 1 }],
        NetworkConfiguration: {
          AwsvpcConfiguration: { Subnets: [...worker.subnetIds], SecurityGroups: [...worker.securityGroupIds], AssignPublicIp: 'DISABLED' },
        },
        PropagateTags: 'TASK_DEFINITION',
        EnableECSManagedTags: true,
        StartedBy: 'sluice',
        Tags: [{ Key: 'sluice:job', 'Value.$': '$.job.jobId' }],
        Overrides: {
          ContainerOverrides: [
            {
              Name: worker.containerName,
              Environment: workerEnvironment(ctx),
            },
          ],
        },
      },
    },
    {
      Comment: ctx.finisher
        ? "One Fargate task for its objects (its batch record's list); .sync waits for it to stop"
        : 'One Fargate task for one object; .sync waits for it to stop',
      ResultSelector: { 'taskArn.$': '$.TaskArn' },
      ResultPath: '$.task',
      TimeoutSeconds: runTaskStateTimeoutSeconds(ctx.config),
      ...(retry.length > 0 ? { Retry: retry } : {}),
      Catch: [
        { ErrorEquals: [...ECS_TRANSIENT_ERRORS, ECS_INVALID_PARAMETER], ResultPath: '$.failure', Next: whenNotStarted },
        { ErrorEquals: ['States.TaskFailed'], ResultPath: '$.failure', Next: STATES.classifyTaskFailure },
        { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: STATES.recordFailure },
      ],
      next: STATES.finishJob,
    },
  );
}

/**
 * The worker's variables per task: where its one object is, or (on a stage that packs) where its list is — the batch
 * record and its index there; when its state was entered; its route.
 */
function workerEnvironment(ctx: Context): Array<{ Name: string; 'Value.$': string }> {
  const own = ctx.finisher
    ? WORKER_PACKED_TASK_ENV.map((env) => ({ Name: env, 'Value.$': PACK_ENV_SOURCE[env] }))
    : WORKER_JOB_ENV.map((env) => ({ Name: env, 'Value.$': `$.job.${JOB_FIELD_OF_ENV[env]}` }));
  return [
    ...own,
    { Name: WORKER_STATE_ENTERED_ENV, 'Value.$': '$$.State.EnteredTime' },
    ...(ctx.routed ? [{ Name: WORKER_ROUTE_ENV, 'Value.$': '$.job.route' }] : []),
  ];
}

/** Why RunTask did not start the task: no vCPU in the account, no Fargate capacity, throttled, or a real error. */
function whyNotStarted(name: string, whenThrottled: string): Step {
  const causeIs = (pattern: string): ChoiceRule[] => [
    { Variable: '$.failure.Cause', IsPresent: true },
    { Variable: '$.failure.Cause', StringMatches: pattern },
  ];
  return choice(name, {
    Choices: [
      { And: causeIs(RUN_TASK_CAUSES.vcpuLimit), Next: STATES.returnForVcpuLimit },
      { And: causeIs(RUN_TASK_CAUSES.noCapacity), Next: STATES.returnForCapacity },
      { And: [{ Variable: '$.failure.Error', StringEquals: ECS_INVALID_PARAMETER }, ...causeIs(RUN_TASK_CAUSES.ec2Throttling)], Next: whenThrottled },
      { Variable: '$.failure.Error', StringEquals: 'ECS.AmazonECSException', Next: whenThrottled },
      { Variable: '$.failure.Error', StringEquals: 'AmazonECS.Unknown', Next: whenThrottled },
    ],
    Default: STATES.recordFailure,
  });
}

/** DynamoDB refuses attribute names an expression does not use: each write names only its own. */
function namesIn(...expressions: string[]) {
  return Object.fromEntries(Object.entries(LEDGER_RESULT_EXPRESSIONS.names).filter(([name]) => expressions.some((e) => new RegExp(`${name}\\b`).test(e))));
}

/**
 * The ledger row's update with the lease's release, and the released counter: one transaction (and `extra` items in
 * it). The state is given the items; what its role may write follows from them. `classShort`: Fargate had no capacity
 * in the task's class; the counter records when (`capacityShortAt@<class>`), and placement tries another class a while.
 */
function release(
  ctx: Context,
  expression: string,
  values: Record<string, unknown>,
  { extra = [], classShort = false }: { extra?: TransactItem[]; classShort?: boolean } = {},
) {
  const ofClass = (prefix: string) => `States.Format('${prefix}{}', $.job.capacityProvider)`;
  return {
    // One token per attempt: a retry after a lost answer is safe anyway (the lease's condition fails and the
    // result is recorded without it), and a retry after a conflict must run again, not be answered from the first.
    clientRequestToken: {
      'ClientRequestToken.$': `States.Hash(States.Format('{}|{}|${expression.length}|{}', $$.Execution.Name, $.job.jobId, $$.State.RetryCount), 'MD5')`,
    },
    items: [
      {
        action: 'Update',
        table: ctx.table,
        key: LEDGER_KEY,
        write: {
          UpdateExpression: expression,
          ConditionExpression: LEDGER_RESULT_EXPRESSIONS.heldByThisExecution,
          ExpressionAttributeNames: namesIn(expression, LEDGER_RESULT_EXPRESSIONS.heldByThisExecution),
          ExpressionAttributeValues: { ...values, ':batch': THIS_EXECUTION, ':at': AT },
        },
      },
      {
        action: 'Update',
        table: ctx.table,
        key: RELEASED_KEY,
        write: {
          // The total, the task's class and (with routes) the job's route: placement counts the stage's own use per
          // class, admission each route's.
          UpdateExpression: `ADD releasedVcpu :vcpu, #placed :vcpu${ctx.routed ? ', #route :vcpu' : ''}${classShort ? ' SET #short = :at' : ''}`,
          ExpressionAttributeNames: {
            '#placed.$': ofClass(RELEASED_BY_CLASS),
            ...(ctx.routed ? { '#route.$': `States.Format('${RELEASED_BY_ROUTE}{}', $.job.route)` } : {}),
            ...(classShort ? { '#short.$': ofClass(CLASS_SHORT_AT) } : {}),
          },
          ExpressionAttributeValues: { ':vcpu': { 'N.$': "States.Format('{}', $.job.vcpu)" }, ...(classShort ? { ':at': AT } : {}) },
        },
      },
      ...extra,
    ] satisfies TransactItem[],
  };
}

function recordOnly(ctx: Context, name: string, expression: string, values: Record<string, unknown>): Step {
  return dynamodbUpdateItem(
    ctx.where,
    name,
    {
      table: ctx.table,
      key: LEDGER_KEY,
      write: {
        UpdateExpression: expression,
        ConditionExpression: LEDGER_RESULT_EXPRESSIONS.noOtherLease,
        ExpressionAttributeNames: namesIn(expression, LEDGER_RESULT_EXPRESSIONS.noOtherLease),
        ExpressionAttributeValues: { ...values, ':batch': THIS_EXECUTION, ':at': AT },
      },
    },
    {
      Comment: 'The lease could not be given back with the result: record the result; the janitor gives the lease back',
      ResultPath: null,
      Retry: [dynamoRetry],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.ledgerError', Next: STATES.wakeDispatcher }],
      next: STATES.wakeDispatcher,
    },
  );
}

const SUCCEEDED_VALUES = { ':status': { S: 'succeeded' }, ':taskArn': { 'S.$': '$.task.taskArn' } };
const FAILED_VALUES = {
  ':status': { S: 'failed' },
  ':error': { 'S.$': '$.failure.Error' },
  ':cause': { 'S.$': 'States.JsonToString($.failure)' },
  // failedDayOf(:at): the date before the 'T' of the ISO time.
  ':day': { 'S.$': "States.ArrayGetItem(States.StringSplit($$.State.EnteredTime, 'T'), 0)" },
};

/** Back to the intake queue as the job's next round, after a delay; then the lease goes back (with a hold, or without). */
function returnToQueue(ctx: Context, name: string, giveBack: string): Step {
  return sqsSendMessage(
    ctx.where,
    name,
    {
      queue: ctx.queue,
      message: {
        DelaySeconds: ctx.config.capacity.capacityRetryDelaySeconds,
        // This execution gives the job back: a dispatcher that meets the message before GiveBackLease waits for it.
        MessageAttributes: { [RETURNED_BY]: { DataType: 'String', 'StringValue.$': '$$.Execution.Name' } },
        MessageBody: {
          sluice: 'requeue',
          'jobId.$': '$.job.jobId',
          'bucket.$': '$.job.bucket',
          'key.$': '$.job.key',
          'versionId.$': '$.job.versionId',
          'sequencer.$': '$.job.sequencer',
          'round.$': 'States.MathAdd($.job.round, 1)',
          'failedRuns.$': '$.job.failedRuns',
        },
      },
    },
    {
      Comment: 'No capacity for this job now: it waits in the intake queue, not here, and is not failed',
      ResultPath: null,
      Retry: [{ ErrorEquals: SQS_TRANSIENT_ERRORS, IntervalSeconds: 1, MaxAttempts: 5, BackoffRate: 2, MaxDelaySeconds: 20, JitterStrategy: 'FULL' }],
      // Never failed for lack of capacity: without its next round sent, the job keeps its lease for the janitor.
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.requeueError', Next: STATES.leaveToJanitor }],
      next: giveBack,
    },
  );
}

// The whole failure, not its Cause: an error may come without one, and a missing path fails the execution.
const RETURNED_VALUES = { ':status': { S: 'queued' }, ':reason': { 'S.$': 'States.JsonToString($.failure)' }, ':zero': { N: '0' }, ':one': { N: '1' } };

/** Why a job goes back to its queue: RunTask throttled, no Fargate capacity in its class, the account's vCPU quota reached. */
type ReturnedWhy = 'plain' | 'classShort' | 'hold';

/**
 * Gives the lease back once the job's next round is queued, after RunTask did not start its task: still throttled
 * (`plain`), no Fargate capacity in the task's class (`classShort`: placement avoids the class a while), or the
 * account's vCPU quota reached (`hold`: admit nothing new until the capacity reader has measured it again).
 */
function giveBackLease(ctx: Context, name: string, why: ReturnedWhy): Step {
  const holdAdmissions: TransactItem = {
    action: 'Update',
    table: ctx.table,
    key: POOL_ITEM_KEY,
    write: { UpdateExpression: 'SET capacityLimitAt = :at', ExpressionAttributeValues: { ':at': AT } },
  };
  const given = why === 'hold' ? { extra: [holdAdmissions] } : { classShort: why === 'classShort' };
  return transactWrite(ctx.where, name, release(ctx, LEDGER_RESULT_EXPRESSIONS.returned, RETURNED_VALUES, given), {
    ResultPath: null,
    Retry: [transactionRetry],
    // The message is in the queue; a lease that could not be given back is the janitor's.
    Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.releaseError', Next: STATES.wakeDispatcher }],
    next: STATES.wakeDispatcher,
  });
}

/** A container failure: bad input (final), or anything else (retried after a delay, up to the configured attempts). */
function taskFailureSteps(ctx: Context): Step[] {
  return [
    // Catching States.TaskFailed also catches every other Task error (it is a wildcard), so first keep only a
    // real container failure. Its Cause is the stopped task as JSON (the DescribeTasks shape): parsed, its exit
    // code says bad input (final) or anything else (retried: transient trouble, a Spot interruption's SIGTERM).
    // StringToJson fails the execution on a Cause that is not JSON, so only a Cause that starts with '{' is parsed
    // (≥ '{' and < '|', the next character: a test that holds whatever the text's line breaks). For this error of
    // ecs:runTask.sync, Step Functions writes the stopped task there, serialized: a '{' that is not JSON is not expected.
    choice(STATES.classifyTaskFailure, {
      Choices: [
        { Not: { Variable: '$.failure.Error', StringEquals: 'States.TaskFailed' }, Next: STATES.recordFailure },
        {
          And: [
            { Variable: '$.failure.Cause', IsPresent: true },
            { Variable: '$.failure.Cause', IsString: true },
            { Variable: '$.failure.Cause', StringGreaterThanEquals: '{' },
            { Variable: '$.failure.Cause', StringLessThan: '|' },
          ],
          Next: STATES.readStoppedTask,
        },
        { Variable: '$.attempt', NumericLessThan: ctx.config.retry.taskFailed.maxAttempts, Next: STATES.prepareRetry },
      ],
      Default: STATES.recordFailure,
    }),
    pass(STATES.readStoppedTask, {
      Parameters: { 'task.$': 'States.StringToJson($.failure.Cause)' },
      ResultPath: '$.stopped',
      next: STATES.classifyExitCode,
    }),
    // The task definition has one container, the worker: its exit code is Containers[0].ExitCode (absent if it was
    // killed before it could exit).
    choice(STATES.classifyExitCode, {
      Choices: [
        {
          And: [
            { Variable: '$.stopped.task.Containers[0].ExitCode', IsPresent: true },
            { Variable: '$.stopped.task.Containers[0].ExitCode', NumericEquals: EXIT_CODES.badInput },
          ],
          Next: STATES.recordFailure,
        },
        { Variable: '$.attempt', NumericLessThan: ctx.config.retry.taskFailed.maxAttempts, Next: STATES.prepareRetry },
      ],
      Default: STATES.recordFailure,
    }),
    pass(STATES.prepareRetry, {
      Parameters: {
        'job.$': '$.job',
        'attempt.$': 'States.MathAdd($.attempt, 1)',
        'delaySeconds.$': 'States.ArrayGetItem($.retryDelays, $.attempt)',
        'retryDelays.$': '$.retryDelays',
      },
      next: STATES.waitBeforeRetry,
    }),
    wait(STATES.waitBeforeRetry, { SecondsPath: '$.delaySeconds', next: STATES.runTask }),
  ];
}

/** The result and the lease's release in one transaction; when that keeps failing, `withoutLease` records the result alone. */
function recordAndRelease(ctx: Context, name: string, expression: string, values: Record<string, unknown>, withoutLease: string, comment?: string): Step {
  return transactWrite(ctx.where, name, release(ctx, expression, values), {
    ...(comment ? { Comment: comment } : {}),
    ResultPath: null,
    Retry: [transactionRetry],
    Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.releaseError', Next: withoutLease }],
    next: STATES.wakeDispatcher,
  });
}

function wakeDispatcher(ctx: Context): Step {
  return lambdaInvokeAsync(
    ctx.where,
    STATES.wakeDispatcher,
    // releasedAt: entered after the release committed, so no earlier than it (the dispatcher skips releases it counted).
    { fn: ctx.dispatcher, payload: { reason: 'lease-released', 'releasedAt.$': '$$.State.EnteredTime' } },
    {
      Comment: 'A lease is free: let the dispatcher admit the next job now, not at its next schedule',
      ResultPath: null,
      // The Map collects every iteration's output: keep it to the job id, whatever the job carried.
      OutputPath: '$.job.jobId',
      Retry: [{ ErrorEquals: LAMBDA_TRANSIENT_ERRORS, IntervalSeconds: 1, MaxAttempts: 3, BackoffRate: 2, JitterStrategy: 'FULL' }],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: null, Next: STATES.wakeFailed }],
    },
  );
}

/** Every ending of a job: its result recorded and its lease given back (or back to the queue), then the dispatcher woken. */
function resultSteps(ctx: Context): Step[] {
  return [
    recordAndRelease(
      ctx,
      STATES.finishJob,
      LEDGER_RESULT_EXPRESSIONS.succeeded,
      SUCCEEDED_VALUES,
      STATES.recordSucceededOnly,
      'The result and the lease given back, in one transaction',
    ),
    recordOnly(ctx, STATES.recordSucceededOnly, LEDGER_RESULT_EXPRESSIONS.succeededOnly, SUCCEEDED_VALUES),
    recordAndRelease(ctx, STATES.recordFailure, LEDGER_RESULT_EXPRESSIONS.failed, FAILED_VALUES, STATES.recordFailedOnly),
    recordOnly(ctx, STATES.recordFailedOnly, LEDGER_RESULT_EXPRESSIONS.failedOnly, FAILED_VALUES),
    returnToQueue(ctx, STATES.returnForCapacity, STATES.giveBackLeaseShortOfCapacity),
    giveBackLease(ctx, STATES.giveBackLeaseShortOfCapacity, 'classShort'),
    returnToQueue(ctx, STATES.returnWhileThrottled, STATES.giveBackLease),
    giveBackLease(ctx, STATES.giveBackLease, 'plain'),
    returnToQueue(ctx, STATES.returnForVcpuLimit, STATES.giveBackLeaseAndHold),
    giveBackLease(ctx, STATES.giveBackLeaseAndHold, 'hold'),
    ...lastSteps(ctx, 'The next round could not be sent: the lease stays, and once the execution has ended the janitor re-queues the job'),
  ];
}

/** Waking the dispatcher, and the two ends when that or what came before it failed: both leave the job's id. */
function lastSteps(ctx: Context, whyLeftToJanitor: string): Step[] {
  return [
    wakeDispatcher(ctx),
    pass(STATES.wakeFailed, { Comment: 'The dispatcher runs every minute anyway', Parameters: { 'jobId.$': '$.job.jobId' } }),
    pass(STATES.leaveToJanitor, { Comment: whyLeftToJanitor, Parameters: { 'jobId.$': '$.job.jobId' } }),
  ];
}

/** How a packed task ended, as the finisher takes it (functions/finish-task.ts). */
type TaskOutcome =
  | { readonly kind: 'ran'; readonly 'taskArn.$': string }
  | { readonly kind: 'failed'; readonly 'error.$': string; readonly 'cause.$': string }
  | { readonly kind: 'returned'; readonly why: ReturnedWhy; readonly 'reason.$': string };

/** The finisher's own failures worth retrying at once, beside any other (it is idempotent: a task ended twice ends once). */
const finisherRetries: Retrier[] = [
  retrier('finisher', {
    ErrorEquals: LAMBDA_TRANSIENT_ERRORS,
    IntervalSeconds: 1,
    MaxAttempts: 6,
    BackoffRate: 2,
    MaxDelaySeconds: 20,
    JitterStrategy: 'FULL',
  }),
  retrier('finisher', { ErrorEquals: ['States.ALL'], IntervalSeconds: 2, MaxAttempts: 3, BackoffRate: 2, MaxDelaySeconds: 30, JitterStrategy: 'FULL' }),
];

/**
 * A packed task's end: the finisher, waited for, records each of its objects' results and gives their leases back
 * (sending those that did not run back to their queue first). When it keeps failing, the leases stay for the janitor.
 */
function finishTask(ctx: Context, name: string, outcome: TaskOutcome, comment?: string): Step {
  return lambdaInvoke(
    ctx.where,
    name,
    { fn: ctx.finisher!, payload: { 'execution.$': '$$.Execution.Name', 'job.$': '$.job', outcome } },
    {
      ...(comment ? { Comment: comment } : {}),
      ResultPath: null,
      Retry: finisherRetries,
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.finishError', Next: STATES.leaveToJanitor }],
      next: STATES.wakeDispatcher,
    },
  );
}

/** Every ending of a packed task: the finisher ends its objects, then the dispatcher is woken. */
function packedResultSteps(ctx: Context): Step[] {
  const failure = 'States.JsonToString($.failure)';
  const returned = (why: ReturnedWhy): TaskOutcome => ({ kind: 'returned', why, 'reason.$': failure });
  return [
    finishTask(ctx, STATES.finishJob, { kind: 'ran', 'taskArn.$': '$.task.taskArn' }, "The task ran: each object's result and every lease given back"),
    finishTask(ctx, STATES.recordFailure, { kind: 'failed', 'error.$': '$.failure.Error', 'cause.$': failure }),
    finishTask(ctx, STATES.returnForCapacity, returned('classShort')),
    finishTask(ctx, STATES.returnWhileThrottled, returned('plain')),
    finishTask(ctx, STATES.returnForVcpuLimit, returned('hold')),
    ...lastSteps(ctx, 'The finisher could not end the task: its leases stay, and once the execution has ended the janitor settles its batch'),
  ];
}

/**
 * A batch is leased at one task size (the dispatcher's) and placed in one capacity class: it runs only on a state
 * machine of that size which runs tasks where admission placed them. With routes, a batch is admitted for its route
 * and names the task definition it was leased for: a revision of its route's (kept: skipDestroy), whose size is the
 * batch's vCPU whatever a deploy changed since, so no size is checked.
 */
function entryGate(ctx: Context): Step[] {
  const placed = { Variable: '$.jobs[0].capacityProvider', IsPresent: true };
  const admittedForAnother = (name: string, cause: string) => fail(name, { Error: ADMITTED_FOR_ANOTHER_STATE_MACHINE, Cause: cause });
  const byAnotherVersion = 'a dispatcher of another version admitted it while a deploy rolled out';
  const packed = packedGate(ctx, admittedForAnother, byAnotherVersion);
  if (ctx.routed) return routedEntryGate(placed, packed, admittedForAnother, byAnotherVersion);
  const taskVcpu = vcpuOf(ctx.config.task.cpu);
  const ofThisSize = { Variable: '$.jobs[0].vcpu', NumericEquals: taskVcpu };
  return [
    choice(STATES.checkTaskSize, {
      Choices: [
        { And: [ofThisSize, placed, ...packed.rules], Next: STATES.runJobs },
        ...packed.otherwise([ofThisSize, placed]),
        { ...ofThisSize, Next: STATES.admittedUnplaced },
      ],
      Default: STATES.admittedForAnotherTaskSize,
    }),
    admittedForAnother(
      STATES.admittedForAnotherTaskSize,
      `the batch was leased for another task size than this state machine's ${taskVcpu} vCPU (a deploy changed task.cpu); the janitor re-queues its jobs`,
    ),
    admittedForAnother(STATES.admittedUnplaced, `the batch names no capacity class (${byAnotherVersion}); the janitor re-queues its jobs`),
    ...packed.fails,
  ];
}

/** What the gate of a stage that packs adds: a batch names its tasks (each item's `pack`); one that passed the rest without is refused. */
interface PackedGate {
  readonly rules: readonly ChoiceRule[];
  readonly otherwise: (passedTheRest: readonly ChoiceRule[]) => ChoiceRule[];
  readonly fails: readonly Step[];
}

function packedGate(ctx: Context, admittedForAnother: (name: string, cause: string) => Step, byAnotherVersion: string): PackedGate {
  if (!ctx.finisher) return { rules: [], otherwise: () => [], fails: [] };
  return {
    rules: [{ Variable: '$.jobs[0].pack', IsPresent: true }],
    otherwise: (passedTheRest) => [{ And: [...passedTheRest], Next: STATES.admittedUnpacked }],
    fails: [admittedForAnother(STATES.admittedUnpacked, `the batch names no packed task (${byAnotherVersion}); the janitor re-queues its jobs`)],
  };
}

/** The gate of a stage with routes: a batch names its capacity class, its route and its route's task definition. */
function routedEntryGate(placed: ChoiceRule, packed: PackedGate, admittedForAnother: (name: string, cause: string) => Step, byAnotherVersion: string): Step[] {
  const routed = { Variable: '$.jobs[0].route', IsPresent: true };
  const onItsTask = { Variable: '$.jobs[0].taskDefinitionArn', IsPresent: true };
  return [
    choice(STATES.checkTaskSize, {
      Choices: [
        { And: [placed, routed, onItsTask, ...packed.rules], Next: STATES.runJobs },
        ...packed.otherwise([placed, routed, onItsTask]),
        { ...placed, Next: STATES.admittedWithoutRoute },
      ],
      Default: STATES.admittedUnplaced,
    }),
    admittedForAnother(STATES.admittedUnplaced, `the batch names no capacity class (${byAnotherVersion}); the janitor re-queues its jobs`),
    admittedForAnother(STATES.admittedWithoutRoute, `the batch names no route or task definition (${byAnotherVersion}); the janitor re-queues its jobs`),
    ...packed.fails,
  ];
}

export function runJobsDefinition(props: RunJobsDefinitionProps): RunJobsDefinition {
  const ctx = contextOf(props);
  const { config } = ctx;
  const itemSteps: Step[] = [
    runTask(ctx, STATES.runTask, [], STATES.whyNotStarted),
    whyNotStarted(STATES.whyNotStarted, STATES.runTaskWhileThrottled),
    // The same RunTask, entered once ECS (or EC2 behind it) throttled: retried with full jitter, then back to the queue.
    runTask(ctx, STATES.runTaskWhileThrottled, [ctx.ecsApiRetry], STATES.whyStillNotStarted),
    whyNotStarted(STATES.whyStillNotStarted, STATES.returnWhileThrottled),
    ...taskFailureSteps(ctx),
    ...(ctx.finisher ? packedResultSteps(ctx) : resultSteps(ctx)),
  ];

  return stateMachine({
    Comment: `sluice ${config.stage}: run admitted jobs on Fargate, give every lease back`,
    TimeoutSeconds: leaseSeconds(config),
    steps: [
      ...entryGate(ctx),
      map(STATES.runJobs, {
        ItemsPath: '$.jobs',
        ItemSelector: { 'job.$': '$$.Map.Item.Value', attempt: 0, retryDelays: retryDelaysSeconds(config.retry.taskFailed) },
        MaxConcurrency: config.capacity.mapMaxConcurrency,
        steps: itemSteps,
        ResultPath: null,
      }),
    ],
  });
}
