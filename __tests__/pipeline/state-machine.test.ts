import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ledgerKey, recordFirstSight } from '../../functions/ledger';
import { executionNameFor, jobIdOf, type Job } from '../../functions/jobs';
import { admissionCommand, configureCommand, readPool, releaseCommand, tryUpdate } from '../../functions/pool';
import { STATES } from '../../modules/pipeline/definition';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { startDynalite, type LocalDynamo } from '../support/dynalite';
import { ecsError, localHandlers, synthesizedDefinition, taskFailed, type LocalHandler } from '../support/local-sfn';
import { STAGES, stageConfig } from '../support/synth';
import { loadLocalStepFunctions } from '../../twin/engines/local-sfn';

// The library with `$$.State` filled in, as Step Functions fills it (the same copy the twin runs, on real time).
const { StateMachine } = loadLocalStepFunctions();

// asl-validator has no types of its own worth importing; it mutates its input, so it gets a clone.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as (definition: unknown) => { isValid: boolean; errorsText: (sep?: string) => string };

let dynamo: LocalDynamo;
beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(() => dynamo.close());

test.each(STAGES)('the %s definition, as synthesized, is valid ASL', (stage) => {
  const definition = synthesizedDefinition(stage);
  const { isValid, errorsText } = aslValidator(structuredClone(definition));
  expect(errorsText('\n')).toBe('');
  expect(isValid).toBe(true);
});

function jobs(count: number): Job[] {
  return Array.from({ length: count }, (_, i) => {
    const key = `incoming/object-${i}.csv`;
    return { jobId: jobIdOf('bucket', key, `v${i}`, ''), bucket: 'bucket', key, versionId: `v${i}`, sequencer: '', attempt: 0 };
  });
}

/** Sets up the pool and ledger as the dispatcher leaves them, then runs one execution of the synthesized machine. */
async function runExecution(options: { jobs: Job[]; runTask: LocalHandler; budget?: number; beforeRun?: (table: string, name: string) => Promise<void> }) {
  const table = await dynamo.createTable();
  const config = stageConfig('dev');
  await dynamo.ddb.send(new UpdateCommand(configureCommand(table, { budgetVcpu: options.budget ?? 100, ratePerSecond: 19, burst: 100 }, 0)));
  const name = executionNameFor(options.jobs);
  const pool = await readPool(dynamo.ddb, table);
  const requests = options.jobs.map((j) => ({ jobId: j.jobId, vcpu: 1 }));
  expect(await tryUpdate(dynamo.ddb, admissionCommand(table, pool, Date.now(), requests, name, 3_600_000))).toBe(true);
  for (const job of options.jobs) await recordFirstSight(dynamo.ddb, table, job, Date.now());
  await options.beforeRun?.(table, name);

  const definition = synthesizedDefinition('dev', config, table);
  const wakeUps: unknown[] = [];
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  const execution = machine.run(
    { jobs: options.jobs.map((j) => ({ ...j, vcpu: 1 })) },
    {
      overrides: {
        taskResourceLocalHandlers: localHandlers(definition, {
          dynamodb: dynamo.client,
          runTask: options.runTask,
          invokeLambda: async (input) => {
            wakeUps.push(input);
            return { StatusCode: 202 };
          },
        }),
        retryIntervalOverrides: { [STATES.runTask]: 0, [STATES.runTaskWhileEc2Throttles]: 0, [STATES.releaseLease]: 0, [STATES.recordSuccess]: 0, [STATES.recordFailure]: 0, [STATES.wakeDispatcher]: 0 },
        waitTimeOverrides: { [STATES.waitBeforeRetry]: 0 },
      },
      // aws-local-stepfunctions fills $$.Execution.Input/StartTime (and, loaded as above, $$.State); the
      // execution's name and ARN are given here.
      context: {
        Execution: { Name: name, Id: `arn:aws:states:eu-west-1:111111111111:execution:sluice-dev-jobs:${name}` },
      },
    },
  );
  const result = await execution.result;
  const ledger = async (job: Job) => (await dynamo.ddb.send(new GetCommand({ TableName: table, Key: ledgerKey(job.jobId) }))).Item!;
  return { result, pool: await readPool(dynamo.ddb, table), ledger, wakeUps, table };
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

test('Map never runs more RunTasks at once than MaxConcurrency, and every job succeeds', async () => {
  const config = stageConfig('dev');
  const task = succeedingTask(20);
  const batch = jobs(25);
  const run = await runExecution({ jobs: batch, runTask: task.handler });
  expect(task.calls).toHaveLength(25);
  expect(task.peak()).toBe(config.capacity.mapMaxConcurrency);
  expect(run.pool.inUseVcpu).toBe(0);
  expect(run.pool.leases).toEqual({});
  for (const job of batch) expect(await run.ledger(job)).toMatchObject({ status: 'succeeded', taskArn: expect.stringContaining(':task/') });
  expect(run.wakeUps).toHaveLength(25);
});

test('RunTask gets the cluster, capacity providers, private networking and the job in its overrides', async () => {
  const task = succeedingTask();
  const [job] = jobs(1);
  await runExecution({ jobs: [job], runTask: task.handler });
  const config = stageConfig('dev');
  expect(task.calls[0]).toMatchObject({
    Cluster: expect.stringContaining(':cluster/'),
    TaskDefinition: expect.stringContaining(':task-definition/'),
    CapacityProviderStrategy: config.task.capacityProviders.map((p) => ({ CapacityProvider: p.name, Weight: p.weight, Base: p.base })),
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

test('bad input (exit 65) fails the job at once, with the reason, and releases its lease', async () => {
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
  expect(run.pool).toMatchObject({ inUseVcpu: 0, leases: {} });
  const row = await run.ledger(job);
  expect(row.status).toBe('failed');
  expect(row.error).toBe('States.TaskFailed');
  expect(row.cause).toContain('"ExitCode":65');
});

test('the exit code is read from the stopped task, not matched as text: spacing and field order do not matter', async () => {
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      const error = new Error(JSON.stringify({ StopCode: 'EssentialContainerExited', Containers: [{ ExitCode: 65, Name: 'worker' }], TaskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/t/1' }, null, 2));
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
  expect(run.result).toBeDefined();
  expect(calls).toBe(config.retry.taskFailed.maxAttempts + 1);
  expect((await run.ledger(job)).status).toBe('failed');
  expect(run.pool.leases).toEqual({});
});

test('EC2 throttling during RunTask (InvalidParameterException "Request limit exceeded") is retried like throttling', async () => {
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      if (calls <= 3) throw ecsError('ECS.InvalidParameterException', 'Error retrieving security group information for [sg-0123456789abcdef0]: Request limit exceeded.');
      return { TaskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/sluice-test/after-throttling', Containers: [{ ExitCode: 0 }] };
    },
  });
  expect(calls).toBe(4);
  expect(await run.ledger(job)).toMatchObject({ status: 'succeeded', taskArn: expect.stringContaining('after-throttling') });
  expect(run.pool.leases).toEqual({});
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
  expect(run.pool.leases).toEqual({});
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
  expect(run.pool).toMatchObject({ inUseVcpu: 0, leases: {} });
});

test('throttling and capacity errors are retried; when retries run out the job fails and its lease is released', async () => {
  const config = stageConfig('dev');
  let calls = 0;
  const [job] = jobs(1);
  const run = await runExecution({
    jobs: [job],
    runTask: async () => {
      calls++;
      throw calls % 2 ? ecsError('ECS.AmazonECSException', 'Rate exceeded') : ecsError('AmazonECS.Unknown', 'Capacity is unavailable at this time');
    },
  });
  expect(calls).toBe(config.retry.ecsApi.maxAttempts + 1);
  const row = await run.ledger(job);
  expect(row.status).toBe('failed');
  expect(['ECS.AmazonECSException', 'AmazonECS.Unknown']).toContain(row.error);
  expect(run.pool).toMatchObject({ inUseVcpu: 0, leases: {} });
});

test('any other error is caught: the job fails, the lease is released, the execution still ends well', async () => {
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
  expect(run.pool.leases).toEqual({});
  expect(run.wakeUps).toHaveLength(1);
});

test('releasing twice is harmless: a lease already released leaves the pool untouched', async () => {
  const task = succeedingTask();
  const [first, second] = jobs(2);
  const run = await runExecution({
    jobs: [first, second],
    runTask: task.handler,
    // The janitor released the first lease already (say, after a lost event) — and a later
    // execution took a lease for that job, which this execution must not release.
    beforeRun: async (table, name) => {
      expect(await tryUpdate(dynamo.ddb, releaseCommand(table, [{ jobId: first.jobId, vcpu: 1, execution: name }], Date.now()))).toBe(true);
      const pool = await readPool(dynamo.ddb, table);
      expect(await tryUpdate(dynamo.ddb, admissionCommand(table, pool, Date.now() + 10_000, [{ jobId: first.jobId, vcpu: 1 }], 'a-later-execution', 60_000))).toBe(true);
    },
  });
  expect(run.pool.inUseVcpu).toBe(1);
  expect(Object.keys(run.pool.leases)).toEqual([first.jobId]);
  expect(run.pool.leases[first.jobId].execution).toBe('a-later-execution');
  expect((await run.ledger(second)).status).toBe('succeeded');
});
