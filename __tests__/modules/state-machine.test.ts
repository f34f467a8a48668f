import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { admitBatch } from '../../functions/admission';
import type { CapacityClass } from '../../functions/capacity-codes';
import { ADMITTED_FOR_ANOTHER_STATE_MACHINE, executionNameFor, jobIdOf, parseIntakeMessage, type Job } from '../../functions/jobs';
import { failedDayOf, ledgerKey, releaseLease } from '../../functions/ledger';
import { configureCommand, inUseVcpu, POOL_KEY, readPool, releasedShardKey } from '../../functions/limiter';
import { STATES } from '../../modules/run-jobs/definition';
import { loadLocalStepFunctions } from '../../twin/engines/local-sfn';
import { ecsError, localHandlers, synthesizedDefinition, taskFailed, type LocalHandler } from '../support/local-sfn';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { STAGES, stageConfig, type StageName } from '../support/synth';
import { routedDevConfig } from '../support/routed-stage';
import { packedDevConfig, packedRoutedDevConfig } from '../support/packed-stage';
import { systemClock } from '../../functions/runtime';
import { wakeOf } from '../../functions/dispatcher';
import { RELEASED_BY_ROUTE } from '../../functions/routes';
import { classAttribute, RELEASED_BY_CLASS } from '../../functions/placement';

// The library with `$$.State` filled in, as Step Functions fills it (the same copy the twin runs, on real time).
const { StateMachine } = loadLocalStepFunctions();

// asl-validator has no types of its own worth importing; it mutates its input, so it gets a clone.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as (definition: unknown) => { isValid: boolean; errorsText: (sep?: string) => string };

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

test.each([
  ...STAGES.map((stage) => [stage, stageConfig(stage)] as const),
  ['dev with routes', routedDevConfig()] as const,
  ['dev packing 4 objects a task', packedDevConfig()] as const,
  ['dev with routes, bulk packing 10', packedRoutedDevConfig()] as const,
])('the %s definition, as synthesized, is valid ASL', (_name, config) => {
  const definition = synthesizedDefinition(config.stage as StageName, config);
  const { isValid, errorsText } = aslValidator(structuredClone(definition));
  expect(errorsText('\n')).toBe('');
  expect(isValid).toBe(true);
});

function jobs(count: number): Job[] {
  return Array.from({ length: count }, (_, i) => {
    const key = `incoming/object-${i}.csv`;
    return { jobId: jobIdOf('bucket', key, `v${i}`, ''), bucket: 'bucket', key, versionId: `v${i}`, sequencer: '', round: 0, failedRuns: 0 };
  });
}

/** Admits the jobs as the dispatcher does (one transaction on moto), then runs one execution of the synthesized machine. */
async function runExecution(options: {
  jobs: Job[];
  runTask: LocalHandler;
  vcpu?: number;
  /** The class the batch is placed in (dev's only one by default); null: a batch that names none. */
  capacityProvider?: CapacityClass | null;
  /**
   * Runs dev with routes (routedDevConfig), the jobs admitted for this route (route null: a batch that names none) and
   * on its task definition (none: a batch that names none).
   */
  route?: { readonly name: string | null; readonly queueUrl: string; readonly taskDefinitionArn?: string };
  beforeRun?: (tableName: string, name: string) => Promise<void>;
}) {
  const capacityClass = options.capacityProvider === null ? undefined : (options.capacityProvider ?? 'FARGATE_SPOT');
  const { tableName, batchesTableName } = await moto.createTables();
  const config = options.route ? routedDevConfig() : stageConfig('dev');
  const { taskDefinitionArn } = options.route ?? {};
  const route: Record<string, string> = {
    ...(options.route?.name ? { route: options.route.name, intakeQueueUrl: options.route.queueUrl } : {}),
    ...(taskDefinitionArn ? { taskDefinitionArn } : {}),
  };
  await moto.ddb.send(new UpdateCommand(configureCommand(tableName, { budgetVcpu: 100, ratePerSecond: 19, burst: 100 }, 0)));
  const pool = await readPool(moto.ddb, tableName);
  const name = executionNameFor(options.jobs, pool.batchesAdmitted);
  const target = { tableName, batchesTableName, stateMachineArn: 'arn:aws:states:eu-west-1:111111111111:stateMachine:sluice-dev-jobs' };
  const admitted = await admitBatch(moto.ddb, target, {
    pool,
    jobs: options.jobs,
    batch: name,
    taskVcpu: 1,
    leaseMs: 3_600_000,
    now: Date.now(),
    capacityClass,
  });
  expect(admitted.kind).toBe('admitted');
  await options.beforeRun?.(tableName, name);

  const definition = synthesizedDefinition('dev', config, tableName);
  const wakeUps: unknown[] = [];
  const sent: Array<{ QueueUrl: string; MessageBody: unknown; DelaySeconds: number }> = [];
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  const instant = Object.fromEntries(
    [
      STATES.runTask,
      STATES.runTaskWhileThrottled,
      STATES.finishJob,
      STATES.recordFailure,
      STATES.recordSucceededOnly,
      STATES.recordFailedOnly,
      STATES.giveBackLease,
      STATES.giveBackLeaseShortOfCapacity,
      STATES.giveBackLeaseAndHold,
      STATES.returnForCapacity,
      STATES.returnWhileThrottled,
      STATES.returnForVcpuLimit,
      STATES.wakeDispatcher,
    ].map((s) => [s, 0]),
  );
  const execution = machine.run(
    {
      jobs: options.jobs.map((j) => ({
        ...j,
        vcpu: options.vcpu ?? 1,
        releaseShard: releasedShardKey(j.jobId).pk,
        ...(capacityClass ? { capacityProvider: capacityClass } : {}),
        ...route,
      })),
    },
    {
      overrides: {
        taskResourceLocalHandlers: localHandlers(definition, {
          dynamodb: moto.client,
          runTask: options.runTask,
          invokeLambda: async (input) => {
            wakeUps.push(input);
            return { StatusCode: 202 };
          },
          sendMessage: async (input) => {
            sent.push(input);
            return { MessageId: `m-${sent.length}` };
          },
        }),
        retryIntervalOverrides: instant,
        waitTimeOverrides: { [STATES.waitBeforeRetry]: 0 },
      },
      // aws-local-stepfunctions fills $$.Execution.Input/StartTime (and, loaded as above, $$.State); the
      // execution's name and ARN are given here.
      context: { Execution: { Name: name, Id: `arn:aws:states:eu-west-1:111111111111:execution:sluice-dev-jobs:${name}` } },
    },
  );
  let transitions = 0;
  const counting = (async () => {
    for await (const event of execution.eventLogs as AsyncIterable<{ type: string }>)
      if (event.type === 'StateEntered' || event.type === 'StateRetried') transitions++;
  })();
  const result = await execution.result;
  await counting;
  const ledger = async (job: Job) => (await moto.ddb.send(new GetCommand({ TableName: tableName, Key: ledgerKey(job.jobId) }))).Item!;
  const poolItem = async () => (await moto.ddb.send(new GetCommand({ TableName: tableName, Key: POOL_KEY }))).Item!;
  return { result, pool: await readPool(moto.ddb, tableName), poolItem, ledger, wakeUps, sent, tableName, transitions };
}

function succeedingTask(durationMs = 5) {
  let running = 0;
  let peak = 0;
  const calls: any[] = [];
  const handler: LocalHandler = async (input) => {
    calls.push(input);
    running++;
    peak = Math.max(peak, running);
    await new Promise((resolve) => setTimeout(resolve, durationMs));
    running--;
    return { TaskArn: `arn:aws:ecs:eu-west-1:111111111111:task/sluice-test/${calls.length}`, LastStatus: 'STOPPED', Containers: [{ ExitCode: 0 }] };
  };
  return { handler, calls, peak: () => peak };
}

test('Map never runs more RunTasks at once than MaxConcurrency; every job ends succeeded with its lease given back', async () => {
  const config = stageConfig('dev');
  const task = succeedingTask(20);
  const batch = jobs(25);
  const run = await runExecution({ jobs: batch, runTask: task.handler });
  expect(task.calls).toHaveLength(25);
  expect(task.peak()).toBe(config.capacity.mapMaxConcurrency);
  expect(inUseVcpu(run.pool)).toBe(0);
  for (const job of batch) {
    const row = await run.ledger(job);
    expect(row).toMatchObject({ status: 'succeeded', taskArn: expect.stringContaining(':task/') });
    expect(row).not.toHaveProperty('lease');
  }
  expect(run.wakeUps).toHaveLength(25);
  // Each wake-up says when, no earlier than the release it follows (the dispatcher skips releases it counted):
  // the k-th wake-up comes no earlier than the k-th job's end.
  const ascending = (times: number[]) => [...times].sort((a, b) => a - b);
  const finishedAt = ascending(await Promise.all(batch.map(async (job) => Date.parse(String((await run.ledger(job)).finishedAt)))));
  const wakeTimes = ascending((run.wakeUps as Array<{ Payload: unknown }>).map((wake) => wakeOf(wake.Payload)?.releasedAt ?? NaN));
  wakeTimes.forEach((at, k) => expect(at).toBeGreaterThanOrEqual(finishedAt[k]));
});

test('the happy path is three states a job, plus the size check and the Map', async () => {
  const run = await runExecution({ jobs: jobs(4), runTask: succeedingTask().handler });
  expect(run.transitions).toBe(2 + 3 * 4);
});

/** Runs a batch the gate must refuse: it fails with the error janitors know, and no task is asked for. */
async function expectRefusedAtTheGate(options: Omit<Parameters<typeof runExecution>[0], 'runTask'>): Promise<void> {
  let calls = 0;
  const run = await runExecution({
    ...options,
    runTask: async () => {
      calls++;
      return { TaskArn: 'never' };
    },
  }).catch((error: Error) => ({ error }));
  // The library's execution error carries the Fail state's error as its cause.
  expect(run).toMatchObject({ error: { cause: { name: ADMITTED_FOR_ANOTHER_STATE_MACHINE } } });
  expect(calls).toBe(0);
}

test('a batch leased for another task size than the state machine runs (a deploy changed task.cpu) fails before any task starts', async () => {
  await expectRefusedAtTheGate({ jobs: jobs(1), vcpu: 2 });
});

test('a batch that names no capacity class (admitted by a dispatcher of another version) fails before any task starts', async () => {
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    capacityProvider: null,
    runTask: async () => {
      calls++;
      return { TaskArn: 'never' };
    },
  }).catch((error: Error) => ({ error }));
  expect(run).toMatchObject({ error: { cause: { name: ADMITTED_FOR_ANOTHER_STATE_MACHINE } } });
  expect(calls).toBe(0);
});

test('a task runs in the class its batch was placed in, and its release counts there', async () => {
  const task = succeedingTask();
  const batch = jobs(3);
  const run = await runExecution({ jobs: batch, capacityProvider: 'FARGATE', runTask: task.handler });
  expect(task.calls.map((c) => c.CapacityProviderStrategy)).toEqual(batch.map(() => [{ CapacityProvider: 'FARGATE', Weight: 1 }]));
  expect(run.pool).toMatchObject({ admittedByClass: { FARGATE: 3 }, releasedByClass: { FARGATE: 3 } });
  expect(inUseVcpu(run.pool)).toBe(0);
});

test('RunTask gets the cluster, the capacity class, private networking and the job in its overrides', async () => {
  const task = succeedingTask();
  const [job] = jobs(1);
  await runExecution({ jobs: [job], runTask: task.handler });
  expect(task.calls[0]).toMatchObject({
    Cluster: expect.stringContaining(':cluster/'),
    TaskDefinition: expect.stringContaining(':task-definition/'),
    CapacityProviderStrategy: [{ CapacityProvider: 'FARGATE_SPOT', Weight: 1 }],
    NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED' } },
    PropagateTags: 'TASK_DEFINITION',
    Overrides: {
      ContainerOverrides: [
        {
          Name: 'worker',
          Environment: [
            { Name: 'BUCKET', Value: job.bucket },
            { Name: 'KEY', Value: job.key },
            { Name: 'VERSION_ID', Value: job.versionId },
            { Name: 'JOB_ID', Value: job.jobId },
            { Name: 'STATE_ENTERED_AT', Value: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
          ],
        },
      ],
    },
  });
});

test('bad input (exit 65) fails the job at once, with the reason, and gives its lease back', async () => {
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      throw taskFailed(65);
    },
  });
  expect(calls).toBe(1);
  expect(inUseVcpu(run.pool)).toBe(0);
  const row = await run.ledger(job);
  expect(row).toMatchObject({ status: 'failed', error: 'States.TaskFailed' });
  expect(row.cause).toContain('"ExitCode":65');
  // In the failed index, under the day it failed (the intrinsic's date is the TypeScript writers' failedDayOf).
  expect(row.failedDay).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  expect(row.failedDay).toBe(failedDayOf(String(row.finishedAt)));
});

test('the exit code is read from the stopped task, not matched as text: spacing and field order do not matter', async () => {
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      const error = new Error(
        JSON.stringify(
          { StopCode: 'EssentialContainerExited', Containers: [{ ExitCode: 65, Name: 'worker' }], TaskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/t/1' },
          null,
          2,
        ),
      );
      error.name = 'States.TaskFailed';
      throw error;
    },
  });
  expect(calls).toBe(1);
  expect(await run.ledger(job)).toMatchObject({ status: 'failed', error: 'States.TaskFailed' });
});

test('a task failure whose cause is not the stopped task is retried, never parsed (that would fail the execution)', async () => {
  const config = stageConfig('dev');
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      const error = new Error('Essential container in task exited');
      error.name = 'States.TaskFailed';
      throw error;
    },
  });
  expect(calls).toBe(config.retry.taskFailed.maxAttempts + 1);
  expect((await run.ledger(job)).status).toBe('failed');
  expect(inUseVcpu(run.pool)).toBe(0);
});

test('a Spot interruption (SIGTERM → exit 75) is retried and then succeeds', async () => {
  const outcomes = [taskFailed(75, 'SpotInterruption')];
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      const failure = outcomes.shift();
      if (failure) throw failure;
      return { TaskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/sluice-test/second', Containers: [{ ExitCode: 0 }] };
    },
  });
  expect(calls).toBe(2);
  expect(await run.ledger(job)).toMatchObject({ status: 'succeeded', taskArn: expect.stringContaining('second') });
});

test('a task killed before it could exit (no exit code) is retried, up to the configured attempts', async () => {
  const config = stageConfig('dev');
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      throw taskFailed(undefined, 'SpotInterruption');
    },
  });
  expect(calls).toBe(config.retry.taskFailed.maxAttempts + 1);
  expect((await run.ledger(job)).status).toBe('failed');
  expect(inUseVcpu(run.pool)).toBe(0);
});

test('throttling is retried with jitter; a job still throttled after its retries goes back to the queue, not failed', async () => {
  const config = stageConfig('dev');
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      throw ecsError('ECS.AmazonECSException', 'Rate exceeded');
    },
  });
  expect(calls).toBe(1 + config.retry.ecsApi.maxAttempts + 1);
  expect(await run.ledger(job)).toMatchObject({ status: 'queued', capacityReturns: 1 });
  expect(await run.ledger(job)).not.toHaveProperty('lease');
  expect(inUseVcpu(run.pool)).toBe(0);
  // Throttled is not short of capacity: no class is marked, placement goes on as it was.
  expect(run.pool.classShortAt).toEqual({});
  expect(run.sent).toHaveLength(1);
  expect(run.sent[0].DelaySeconds).toBe(config.capacity.capacityRetryDelaySeconds);
  // What goes back is what the dispatcher takes: the same job, its next round.
  const parsed = parseIntakeMessage(JSON.stringify(run.sent[0].MessageBody), { bucketName: 'bucket', inputPrefix: 'incoming/' });
  expect(parsed).toEqual({ kind: 'job', job: { ...job, round: 1 } });
});

test("the account's vCPU limit: the job goes back to the queue at once and admission holds until the account is measured again", async () => {
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      throw ecsError('ECS.AmazonECSException', "You've reached the limit on the number of vCPUs you can run concurrently");
    },
  });
  expect(calls).toBe(1);
  expect(await run.ledger(job)).toMatchObject({ status: 'queued', capacityReturns: 1 });
  expect(run.sent).toHaveLength(1);
  expect((await run.poolItem()).capacityLimitAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  expect(run.pool.capacityLimitAt).toBeDefined();
  // The quota, not the class's capacity: the hold stops every class, and no class is marked short.
  expect(run.pool.classShortAt).toEqual({});
});

const BULK_TASK_DEFINITION = 'arn:aws:ecs:eu-west-1:111111111111:task-definition/sluice-dev-worker-bulk:7';

test("with routes: a job runs on its route's task definition; without capacity it goes back to its route's queue, and its release counts for its route", async () => {
  const [job] = jobs(1);
  const queueUrl = 'https://sqs.eu-west-1.amazonaws.com/111111111111/sluice-dev-intake-bulk';
  const started: any[] = [];
  const run = await runExecution({
    jobs: [job],
    route: { name: 'bulk', queueUrl, taskDefinitionArn: BULK_TASK_DEFINITION },
    runTask: async (input) => {
      started.push(input);
      throw ecsError('ECS.AmazonECSException', "You've reached the limit on the number of vCPUs you can run concurrently");
    },
  });
  expect(started.map((input) => input.TaskDefinition)).toEqual([BULK_TASK_DEFINITION]);
  expect(run.sent.map((message) => message.QueueUrl)).toEqual([queueUrl]);
  expect(await run.ledger(job)).toMatchObject({ status: 'queued', capacityReturns: 1 });
  const shard = await moto.ddb.send(new GetCommand({ TableName: run.tableName, Key: releasedShardKey(job.jobId) }));
  expect(shard.Item).toMatchObject({ releasedVcpu: 1, [`${RELEASED_BY_ROUTE}bulk`]: 1, [classAttribute(RELEASED_BY_CLASS, 'FARGATE_SPOT')]: 1 });
});

test('with routes: a batch that names no route or no task definition (admitted by a dispatcher of another version) fails before any task starts', async () => {
  await expectRefusedAtTheGate({ jobs: jobs(1), route: { name: null, queueUrl: 'unused', taskDefinitionArn: BULK_TASK_DEFINITION } });
  await expectRefusedAtTheGate({ jobs: jobs(1), route: { name: 'bulk', queueUrl: 'unused' } });
});

test("with routes: a batch of any size runs, on the revision it was leased for (a deploy may have changed its route's task since)", async () => {
  const task = succeedingTask();
  const queueUrl = 'https://sqs.eu-west-1.amazonaws.com/111111111111/sluice-dev-intake-bulk';
  await runExecution({ jobs: jobs(1), vcpu: 2, route: { name: 'bulk', queueUrl, taskDefinitionArn: BULK_TASK_DEFINITION }, runTask: task.handler });
  expect(task.calls.map((input) => input.TaskDefinition)).toEqual([BULK_TASK_DEFINITION]);
});

test('no Fargate capacity (failures[]): back to the queue at once, no hold', async () => {
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      throw ecsError(
        'AmazonECS.Unknown',
        JSON.stringify({ Failures: [{ Reason: 'Capacity is unavailable at this time. Please try again later or in a different availability zone' }] }),
      );
    },
  });
  expect(await run.ledger(job)).toMatchObject({ status: 'queued', capacityReturns: 1 });
  expect((await run.poolItem()).capacityLimitAt).toBeUndefined();
  // The class had no capacity: the return says when, so placement tries another class a while.
  expect(run.pool.classShortAt.FARGATE_SPOT).toEqual(expect.any(Number));
  expect(run.pool.classShortAt.FARGATE).toBeUndefined();
  // The reason kept is the whole failure: an error without a Cause must not fail the execution on a missing path.
  // (Not parsed: aws-local-stepfunctions strips every backslash from an intrinsic function's result, so a Cause that is
  // itself JSON comes out unescaped; Step Functions escapes it.)
  expect(String((await run.ledger(job)).lastError)).toMatch(/^\{"Error":"AmazonECS.Unknown","Cause":".*Capacity is unavailable/);
});

test('EC2 throttling during RunTask (InvalidParameterException "Request limit exceeded") is retried like throttling', async () => {
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      if (calls <= 3)
        throw ecsError('ECS.InvalidParameterException', 'Error retrieving security group information for [sg-0123456789abcdef0]: Request limit exceeded.');
      return { TaskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/sluice-test/after-throttling', Containers: [{ ExitCode: 0 }] };
    },
  });
  expect(calls).toBe(4);
  expect(await run.ledger(job)).toMatchObject({ status: 'succeeded', taskArn: expect.stringContaining('after-throttling') });
});

test('any other invalid parameter is a configuration error: the job fails at once with the message', async () => {
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      throw ecsError('ECS.InvalidParameterException', 'subnet-0123456789abcdef0 does not exist');
    },
  });
  expect(calls).toBe(1);
  const row = await run.ledger(job);
  expect(row).toMatchObject({ status: 'failed', error: 'ECS.InvalidParameterException' });
  expect(row.cause).toContain('does not exist');
  expect(inUseVcpu(run.pool)).toBe(0);
});

test('any other error is caught: the job fails, the lease is given back, the execution still ends well', async () => {
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      const error = new Error('not authorized to perform ecs:RunTask');
      error.name = 'ECS.AccessDeniedException';
      throw error;
    },
  });
  expect((await run.ledger(job)).status).toBe('failed');
  expect(inUseVcpu(run.pool)).toBe(0);
  expect(run.wakeUps).toHaveLength(1);
});

test("a lease the janitor already gave back (and a later batch took) is left alone: the result is recorded, that batch's lease kept", async () => {
  const [first, second] = jobs(2);
  const run = await runExecution({
    jobs: [first, second],
    runTask: succeedingTask().handler,
    beforeRun: async (tableName, name) => {
      const row = (await moto.ddb.send(new GetCommand({ TableName: tableName, Key: ledgerKey(first.jobId) }))).Item!;
      expect(
        await releaseLease(moto.ddb, tableName, { jobId: first.jobId, lease: row.lease, outcome: { status: 'queued', reason: 'janitor' } }, systemClock),
      ).toBe(true);
      const target = { tableName, batchesTableName: 'unused', stateMachineArn: 'arn:aws:states:eu-west-1:111111111111:stateMachine:sluice-dev-jobs' };
      void target;
      // A later batch takes the job: its lease on the row now names that batch.
      await moto.ddb.send(
        new UpdateCommand({
          TableName: tableName,
          Key: ledgerKey(first.jobId),
          UpdateExpression: 'SET #l = :l',
          ExpressionAttributeNames: { '#l': 'lease' },
          ExpressionAttributeValues: { ':l': { execution: 'a-later-batch', vcpu: 1, admittedAt: 0, expiresAt: 1 } },
        }),
      );
      await moto.ddb.send(
        new UpdateCommand({
          TableName: tableName,
          Key: POOL_KEY,
          UpdateExpression: 'SET admittedVcpu = admittedVcpu + :one',
          ExpressionAttributeValues: { ':one': 1 },
        }),
      );
      void name;
    },
  });
  expect((await run.ledger(first)).lease.execution).toBe('a-later-batch');
  expect(await run.ledger(second)).toMatchObject({ status: 'succeeded' });
  // The later batch's vCPU is still counted; this execution's two came back.
  expect(inUseVcpu(run.pool)).toBe(1);
});
