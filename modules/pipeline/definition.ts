/**
 * The sluice state machine: a Map over the jobs the dispatcher admitted, each one run as a Fargate task
 * and always ending with its lease released and its result in the ledger.
 */
import type { EnvironmentConfig } from '../../environments';
import type { JobInput } from '../../functions/jobs';
import { LEDGER_RESULT_EXPRESSIONS } from '../../functions/ledger';
import { SINGLE_RELEASE_EXPRESSIONS } from '../../functions/pool';
import { WORKER_JOB_ENV } from '../../task-image/image-reference';
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
  classifyTaskFailure: 'ClassifyTaskFailure',
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

  const itemStates = {
    [STATES.runTask]: task(STATES.runTask, {
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
              Environment: WORKER_JOB_ENV.map((name) => ({ Name: name, 'Value.$': `$.job.${JOB_FIELD_OF_ENV[name]}` })),
            },
          ],
        },
      },
      ResultSelector: { 'taskArn.$': '$.TaskArn' },
      ResultPath: '$.task',
      TimeoutSeconds: runTaskTimeoutSeconds(config),
      Retry: [
        {
          ErrorEquals: ECS_TRANSIENT_ERRORS,
          IntervalSeconds: ecs.intervalSeconds,
          MaxAttempts: ecs.maxAttempts,
          BackoffRate: ecs.backoffRate,
          MaxDelaySeconds: ecs.maxDelaySeconds,
          // Spread retries out: executions that failed together must not retry together.
          JitterStrategy: 'FULL',
        },
      ],
      Catch: [
        { ErrorEquals: ['States.TaskFailed'], ResultPath: '$.failure', Next: STATES.classifyTaskFailure },
        { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: STATES.recordFailure },
      ],
      next: STATES.recordSuccess,
    }),
    // Catching States.TaskFailed also catches every other Task error (it is a wildcard), so first keep
    // only a real container failure. Its exit code is in the Cause (the stopped task as JSON): bad input
    // is final; anything else (transient trouble, a Spot interruption's SIGTERM) is retried.
    // String matching, not States.StringToJson, so a Cause of another shape cannot fail the execution.
    [STATES.classifyTaskFailure]: choice(STATES.classifyTaskFailure, {
      Choices: [
        { Not: { Variable: '$.failure.Error', StringEquals: 'States.TaskFailed' }, Next: STATES.recordFailure },
        {
          And: [
            { Variable: '$.failure.Cause', IsPresent: true },
            {
              Or: [
                { Variable: '$.failure.Cause', StringMatches: `*"ExitCode":${EXIT_CODES.badInput},*` },
                { Variable: '$.failure.Cause', StringMatches: `*"ExitCode":${EXIT_CODES.badInput}}*` },
              ],
            },
          ],
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
