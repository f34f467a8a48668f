/** Each function family's settings go into its Lambda environment and come back as they were. */
import {
  capacityEnvironment,
  capacitySettingsFromEnv,
  configurePoolEnvironment,
  configurePoolSettingsFromEnv,
  dispatcherEnvironment,
  dispatcherSettingsFromEnv,
  janitorEnvironment,
  janitorSettingsFromEnv,
  type DispatcherSettings,
  type JanitorSettings,
} from '../../functions/environment';

const dispatcher: DispatcherSettings = {
  queueUrl: 'https://sqs.eu-west-1.amazonaws.com/111111111111/intake',
  deadLetterQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/111111111111/intake-dlq',
  tableName: 'state',
  batchesTableName: 'batches',
  stateMachineArn: 'arn:aws:states:eu-west-1:111111111111:stateMachine:jobs',
  bucketName: 'uploads',
  inputPrefix: 'incoming/',
  taskVcpu: 0.25,
  jobsPerExecution: 10,
  leaseSeconds: 3600,
  maxRunMs: 60_000,
  batchWindowMs: 0,
  startGraceMs: 330_000,
  capacityWeights: { FARGATE: 1, FARGATE_SPOT: 3 },
};

const JANITOR: JanitorSettings = {
  tableName: 'state',
  batchesTableName: 'batches',
  queueUrl: dispatcher.queueUrl,
  stateMachineArn: dispatcher.stateMachineArn,
  dispatcherFunctionName: 'dispatcher',
  maxExecutionAttempts: 3,
  startGraceMs: 120_000,
  stopGraceMs: 0,
};

test("the dispatcher's environment: every setting under its variable, durations in seconds, no suffix as empty", () => {
  expect(dispatcherEnvironment(dispatcher)).toEqual({
    QUEUE_URL: dispatcher.queueUrl,
    DEAD_LETTER_QUEUE_URL: dispatcher.deadLetterQueueUrl,
    TABLE_NAME: 'state',
    BATCHES_TABLE_NAME: 'batches',
    STATE_MACHINE_ARN: dispatcher.stateMachineArn,
    BUCKET_NAME: 'uploads',
    INPUT_PREFIX: 'incoming/',
    INPUT_SUFFIX: '',
    TASK_VCPU: '0.25',
    JOBS_PER_EXECUTION: '10',
    LEASE_SECONDS: '3600',
    MAX_RUN_SECONDS: '60',
    BATCH_WINDOW_MS: '0',
    START_GRACE_SECONDS: '330',
    CAPACITY_WEIGHTS: '{"FARGATE":1,"FARGATE_SPOT":3}',
  });
  expect(dispatcherSettingsFromEnv(dispatcherEnvironment(dispatcher))).toEqual({ ...dispatcher, inputSuffix: undefined });
  const suffixed = { ...dispatcher, inputSuffix: '.csv' };
  expect(dispatcherSettingsFromEnv(dispatcherEnvironment(suffixed))).toEqual(suffixed);
});

test('each other family comes back as it went', () => {
  expect(janitorEnvironment(JANITOR)).toMatchObject({ START_GRACE_SECONDS: '120', STOP_GRACE_SECONDS: '0' });
  expect(janitorSettingsFromEnv(janitorEnvironment(JANITOR))).toEqual(JANITOR);
  const capacity = { tableName: 'state', weights: { FARGATE: 1, FARGATE_SPOT: 3 } };
  expect(capacityEnvironment(capacity)).toEqual({ TABLE_NAME: 'state', CAPACITY_WEIGHTS: '{"FARGATE":1,"FARGATE_SPOT":3}' });
  expect(capacitySettingsFromEnv(capacityEnvironment(capacity))).toEqual(capacity);
  const configure = { tableName: 'state', taskVcpu: 1, jobsPerExecution: 10, accountVcpuQuota: 256 };
  expect(configurePoolSettingsFromEnv(configurePoolEnvironment(configure))).toEqual(configure);
});

test('a missing or bad variable names itself', () => {
  const { QUEUE_URL: _missing, ...rest } = dispatcherEnvironment(dispatcher);
  expect(() => dispatcherSettingsFromEnv(rest)).toThrow(/^bad function configuration: QUEUE_URL: /);
  expect(() => janitorSettingsFromEnv({ ...janitorEnvironment(JANITOR), START_GRACE_SECONDS: '0' })).toThrow(/START_GRACE_SECONDS/);
});

const TASK_DEFINITION = 'arn:aws:ecs:eu-west-1:111111111111:task-definition/sluice-dev-worker:7';

test('routes travel as JSON in ROUTES, which a stage without routes does not have at all', () => {
  expect(dispatcherEnvironment(dispatcher)).not.toHaveProperty('ROUTES');
  expect(janitorEnvironment(JANITOR)).not.toHaveProperty('ROUTES');
  const routes = [
    { name: 'default', queueUrl: dispatcher.queueUrl, inputPrefix: 'incoming/', share: 3, priority: 0, taskVcpu: 1, taskDefinitionArn: TASK_DEFINITION },
    {
      ...{ name: 'urgent', queueUrl: `${dispatcher.queueUrl}-urgent`, inputPrefix: 'incoming-urgent/', inputSuffix: '.csv', share: 1, priority: 2, maxVcpu: 8 },
      ...{ taskVcpu: 4, taskDefinitionArn: `${TASK_DEFINITION}-urgent:3` },
    },
  ];
  expect(dispatcherSettingsFromEnv(dispatcherEnvironment({ ...dispatcher, routes }))).toEqual({ ...dispatcher, inputSuffix: undefined, routes });
  expect(janitorSettingsFromEnv(janitorEnvironment({ ...JANITOR, routes }))).toEqual({ ...JANITOR, routes });
  expect(() => dispatcherSettingsFromEnv({ ...dispatcherEnvironment(dispatcher), ROUTES: '[{"name":"a"}]' })).toThrow(/ROUTES: must be a JSON list of routes/);
  expect(() => dispatcherSettingsFromEnv({ ...dispatcherEnvironment(dispatcher), ROUTES: '[]' })).toThrow(/ROUTES/);
  // Without its task size a route's leases could not be counted.
  const sizeless = JSON.stringify(routes.map(({ taskVcpu: _, ...route }) => route));
  expect(() => dispatcherSettingsFromEnv({ ...dispatcherEnvironment(dispatcher), ROUTES: sizeless })).toThrow(/ROUTES: must be a JSON list of routes/);
});
