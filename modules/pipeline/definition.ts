/**
 * The sluice state machine: a Map over the jobs the dispatcher admitted, each one run as a Fargate task
 * and always ending with its lease released and its result in the ledger.
 */
import type { EnvironmentConfig } from '../../environments';
import type { JobInput } from '../../functions/jobs';
import { LEDGER_RESULT_EXPRESSIONS } from '../../functions/ledger';
import { SINGLE_RELEASE_EXPRESSIONS } from '../../functions/pool';
import { WORKER_JOB_ENV, WORKER_STATE_ENTERED_ENV } from '../../task-image/image-reference';
import { EXIT_CODES } from '../../task-image/src/exit-codes';
import { choice, map, pass, retrier, stateMachine, succeed, task, wait, type Retrier, type StateMachineDefinition } from './asl';
import { leaseSeconds, retryDelaysSeconds, runTaskTimeoutSeconds } from './timing';

export interface PipelineDefinitionProps {
  readonly config: EnvironmentConfig;
  readonly partition: string;
  readonly clusterArn: string;
  readonly taskDefinitionArn: string;
  readonly containerName: string;
  readonly subnetIds: readonly string[];
  readonly securityGroupIds: readonly string[];
  readonly tableName: string;
  readonly dispatcherFunctionArn: string;
}

/** State names: the twin and the tests address states by them. */
export const STATES = {
  runJobs: 'RunJobs',
  runTask: 'RunTask',
  isEc2Throttling: 'IsEc2Throttling',
  runTaskWhileEc2Throttles: 'RunTaskWhileEc2Throttles',
  classifyTaskFailure: 'ClassifyTaskFailure',
  readStoppedTask: 'ReadStoppedTask',
  classifyExitCode: 'ClassifyExitCode',
  prepareRetry: 'PrepareRetry',
  waitBeforeRetry: 'WaitBeforeRetry',
  recordSuccess: 'RecordSuccess',
  recordFailure: 'RecordFailure',
  releaseLease: 'ReleaseLease',
  wakeDispatcher: 'WakeDispatcher',
  jobDone: 'JobDone',
  done: 'Done',
} as const;

/** Which job field feeds each variable the worker reads. */
const JOB_FIELD_OF_ENV: Record<(typeof WORKER_JOB_ENV)[number], keyof JobInput> = {
  BUCKET: 'bucket',
  KEY: 'key',
  VERSION_ID: 'versionId',
  JOB_ID: 'jobId',
};

/** Errors of `ecs:runTask.sync` that mean "not now" (throttling, capacity, failures[]), per the ECS integration docs. */
export const ECS_TRANSIENT_ERRORS = ['ECS.AmazonECSException', 'AmazonECS.Unknown'];
/**
 * EC2 throttling the security-group lookup during RunTask surfaces as this error, message "Error retrieving security
 * group information … Request limit exceeded"; the same error name also means a real misconfiguration.
 */
export const ECS_INVALID_PARAMETER = 'ECS.InvalidParameterException';
export const EC2_THROTTLING_CAUSE_PATTERN = '*Request limit exceeded*';
const DYNAMODB_TRANSIENT_ERRORS = [
  'DynamoDB.ProvisionedThroughputExceededException',
  'DynamoDB.RequestLimitExceeded',
  'DynamoDB.ThrottlingException',
  'DynamoDB.InternalServerErrorException',
  'DynamoDB.AmazonDynamoDBException',
];
const LAMBDA_TRANSIENT_ERRORS = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];

const dynamoRetry: Retrier = retrier('dynamo', {
  ErrorEquals: DYNAMODB_TRANSIENT_ERRORS,
  IntervalSeconds: 1,
  MaxAttempts: 8,
  BackoffRate: 2,
  MaxDelaySeconds: 30,
  JitterStrategy: 'FULL',
});

export function pipelineDefinition(props: PipelineDefinitionProps): StateMachineDefinition {
  const { config } = props;
  const dynamodb = (action: string) => `arn:${props.partition}:states:::dynamodb:${action}`;
  const ledgerKey = { pk: { 'S.$': "States.Format('JOB#{}', $.job.jobId)" } };
  const at = { 'S.$': '$$.State.EnteredTime' };
  const ecs = config.retry.ecsApi;
  const ecsApiRetry: Retrier = {
    ErrorEquals: ECS_TRANSIENT_ERRORS,
    IntervalSeconds: ecs.intervalSeconds,
    MaxAttempts: ecs.maxAttempts,
    BackoffRate: ecs.backoffRate,
    MaxDelaySeconds: ecs.maxDelaySeconds,
    // Spread retries out: executions that failed together must not retry together.
    JitterStrategy: 'FULL',
  };
  const runTask = (name: string, retry: Retrier[]) =>
    task(name, {
      Comment: 'One Fargate task for one object; .sync waits for it to stop',
      Resource: `arn:${props.partition}:states:::ecs:runTask.sync`,
      Parameters: {
        Cluster: props.clusterArn,
        TaskDefinition: props.taskDefinitionArn,
        CapacityProviderStrategy: config.task.capacityProviders.map((p) => ({ CapacityProvider: p.name, Weight: p.weight, Base: p.base })),
        NetworkConfiguration: {
          AwsvpcConfiguration: { Subnets: [...props.subnetIds], SecurityGroups: [...props.securityGroupIds], AssignPublicIp: 'DISABLED' },
        },
        PropagateTags: 'TASK_DEFINITION',
        EnableECSManagedTags: true,
        StartedBy: 'sluice',
        Tags: [{ Key: 'sluice:job', 'Value.$': '$.job.jobId' }],
        Overrides: {
          ContainerOverrides: [
            {
              Name: props.containerName,
              Environment: [
                ...WORKER_JOB_ENV.map((name) => ({ Name: name, 'Value.$': `$.job.${JOB_FIELD_OF_ENV[name]}` })),
                { Name: WORKER_STATE_ENTERED_ENV, 'Value.$': '$$.State.EnteredTime' },
              ],
            },
          ],
        },
      },
      ResultSelector: { 'taskArn.$': '$.TaskArn' },
      ResultPath: '$.task',
      TimeoutSeconds: runTaskTimeoutSeconds(config.task),
      Retry: retry,
      Catch: [
        { ErrorEquals: [ECS_INVALID_PARAMETER], ResultPath: '$.failure', Next: STATES.isEc2Throttling },
        { ErrorEquals: ['States.TaskFailed'], ResultPath: '$.failure', Next: STATES.classifyTaskFailure },
        { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: STATES.recordFailure },
      ],
      next: STATES.recordSuccess,
    });

  const itemStates = {
    [STATES.runTask]: runTask(STATES.runTask, [ecsApiRetry]),
    // Told apart by its message: EC2 throttling is retried like ECS throttling, any other invalid parameter fails.
    [STATES.isEc2Throttling]: choice(STATES.isEc2Throttling, {
      Choices: [{ Variable: '$.failure.Cause', StringMatches: EC2_THROTTLING_CAUSE_PATTERN, Next: STATES.runTaskWhileEc2Throttles }],
      Default: STATES.recordFailure,
    }),
    // The same RunTask, entered only once EC2 throttled: here the invalid-parameter error is retried too.
    [STATES.runTaskWhileEc2Throttles]: runTask(STATES.runTaskWhileEc2Throttles, [{ ...ecsApiRetry, ErrorEquals: [...ECS_TRANSIENT_ERRORS, ECS_INVALID_PARAMETER] }]),
    // Catching States.TaskFailed also catches every other Task error (it is a wildcard), so first keep only a
    // real container failure. Its Cause is the stopped task as JSON (the DescribeTasks shape): parsed, its exit
    // code says bad input (final) or anything else (retried: transient trouble, a Spot interruption's SIGTERM).
    // StringToJson fails the execution on a Cause that is not JSON, so only a Cause that starts with '{' is parsed
    // (≥ '{' and < '|', the next character: a test that holds whatever the text's line breaks). For this error of
    // ecs:runTask.sync, Step Functions writes the stopped task there, serialized: a '{' that is not JSON is not expected.
    [STATES.classifyTaskFailure]: choice(STATES.classifyTaskFailure, {
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
        { Variable: '$.attempt', NumericLessThan: config.retry.taskFailed.maxAttempts, Next: STATES.prepareRetry },
      ],
      Default: STATES.recordFailure,
    }),
    [STATES.readStoppedTask]: pass(STATES.readStoppedTask, {
      Parameters: { 'task.$': 'States.StringToJson($.failure.Cause)' },
      ResultPath: '$.stopped',
      next: STATES.classifyExitCode,
    }),
    // The task definition has one container, the worker: its exit code is Containers[0].ExitCode (absent if it was
    // killed before it could exit).
    [STATES.classifyExitCode]: choice(STATES.classifyExitCode, {
      Choices: [
        {
          And: [{ Variable: '$.stopped.task.Containers[0].ExitCode', IsPresent: true }, { Variable: '$.stopped.task.Containers[0].ExitCode', NumericEquals: EXIT_CODES.badInput }],
          Next: STATES.recordFailure,
        },
        { Variable: '$.attempt', NumericLessThan: config.retry.taskFailed.maxAttempts, Next: STATES.prepareRetry },
      ],
      Default: STATES.recordFailure,
    }),
    [STATES.prepareRetry]: pass(STATES.prepareRetry, {
      Parameters: {
        'job.$': '$.job',
        'attempt.$': 'States.MathAdd($.attempt, 1)',
        'delaySeconds.$': 'States.ArrayGetItem($.retryDelays, $.attempt)',
        'retryDelays.$': '$.retryDelays',
      },
      next: STATES.waitBeforeRetry,
    }),
    [STATES.waitBeforeRetry]: wait(STATES.waitBeforeRetry, { SecondsPath: '$.delaySeconds', next: STATES.runTask }),
    [STATES.recordSuccess]: task(STATES.recordSuccess, {
      Resource: dynamodb('updateItem'),
      Parameters: {
        TableName: props.tableName,
        Key: ledgerKey,
        UpdateExpression: LEDGER_RESULT_EXPRESSIONS.succeeded,
        ExpressionAttributeNames: LEDGER_RESULT_EXPRESSIONS.names,
        ExpressionAttributeValues: { ':status': { S: 'succeeded' }, ':taskArn': { 'S.$': '$.task.taskArn' }, ':at': at },
      },
      ResultPath: null,
      Retry: [dynamoRetry],
      // The lease is released even if the ledger cannot be written.
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.ledgerError', Next: STATES.releaseLease }],
      next: STATES.releaseLease,
    }),
    [STATES.recordFailure]: task(STATES.recordFailure, {
      Resource: dynamodb('updateItem'),
      Parameters: {
        TableName: props.tableName,
        Key: ledgerKey,
        UpdateExpression: LEDGER_RESULT_EXPRESSIONS.failed,
        ExpressionAttributeNames: LEDGER_RESULT_EXPRESSIONS.names,
        ExpressionAttributeValues: {
          ':status': { S: 'failed' },
          ':error': { 'S.$': '$.failure.Error' },
          ':cause': { 'S.$': 'States.JsonToString($.failure)' },
          ':at': at,
        },
      },
      ResultPath: null,
      Retry: [dynamoRetry],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.ledgerError', Next: STATES.releaseLease }],
      next: STATES.releaseLease,
    }),
    [STATES.releaseLease]: task(STATES.releaseLease, {
      Comment: 'Give the vCPU back; a lease already released fails the condition, which is fine',
      Resource: dynamodb('updateItem'),
      Parameters: {
        TableName: props.tableName,
        Key: { pk: { S: 'POOL' } },
        UpdateExpression: SINGLE_RELEASE_EXPRESSIONS.update,
        ConditionExpression: SINGLE_RELEASE_EXPRESSIONS.condition,
        ExpressionAttributeNames: { '#job.$': '$.job.jobId' },
        ExpressionAttributeValues: {
          ':vcpu': { 'N.$': "States.Format('{}', $.job.vcpu)" },
          ':execution': { 'S.$': '$$.Execution.Name' },
          ':updatedAt': at,
        },
      },
      ResultPath: null,
      Retry: [dynamoRetry],
      Catch: [
        { ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], ResultPath: null, Next: STATES.wakeDispatcher },
        // Could not release: the janitor reclaims the lease when this execution ends.
        { ErrorEquals: ['States.ALL'], ResultPath: '$.releaseError', Next: STATES.wakeDispatcher },
      ],
      next: STATES.wakeDispatcher,
    }),
    [STATES.wakeDispatcher]: task(STATES.wakeDispatcher, {
      Comment: 'A lease is free: let the dispatcher admit the next job now, not at its next schedule',
      Resource: `arn:${props.partition}:states:::lambda:invoke`,
      Parameters: { FunctionName: props.dispatcherFunctionArn, InvocationType: 'Event', Payload: { reason: 'lease-released' } },
      ResultPath: null,
      Retry: [{ ErrorEquals: LAMBDA_TRANSIENT_ERRORS, IntervalSeconds: 1, MaxAttempts: 3, BackoffRate: 2, JitterStrategy: 'FULL' }],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: null, Next: STATES.jobDone }],
      next: STATES.jobDone,
    }),
    // Keep the Map's collected output tiny, whatever the job carried.
    [STATES.jobDone]: pass(STATES.jobDone, { Parameters: { 'jobId.$': '$.job.jobId' } }),
  };

  return stateMachine({
    Comment: `sluice ${config.stage}: run admitted jobs on Fargate, release every lease`,
    TimeoutSeconds: leaseSeconds(config),
    StartAt: STATES.runJobs,
    States: {
      [STATES.runJobs]: map(STATES.runJobs, {
        ItemsPath: '$.jobs',
        ItemSelector: { 'job.$': '$$.Map.Item.Value', attempt: 0, retryDelays: retryDelaysSeconds(config.retry.taskFailed) },
        MaxConcurrency: config.capacity.mapMaxConcurrency,
        ItemProcessor: { ProcessorConfig: { Mode: 'INLINE' }, StartAt: STATES.runTask, States: itemStates },
        ResultPath: null,
        next: STATES.done,
      }),
      [STATES.done]: succeed(),
    },
  });
}
