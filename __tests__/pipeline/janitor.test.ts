import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { JanitorSettings } from '../../functions/environment';
import { runJanitor } from '../../functions/janitor';
import { ledgerKey, redriveFailedJobs } from '../../functions/ledger';
import { readPool } from '../../functions/pool';
import { AwsError } from '../../twin/engines/errors';
import { startDynalite, type LocalDynamo } from '../support/dynalite';
import { intakeWorld, objectCreated } from '../support/intake-world';

let dynamo: LocalDynamo;
beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(() => dynamo.close());

/** Admits `count` jobs through the real dispatcher, then lets the janitor judge their execution. */
async function scenario(count: number, executionStatus: string | 'missing', options: { attempts?: number; advanceMs?: number } = {}) {
  const world = await intakeWorld(dynamo, { budgetVcpu: 10, ratePerSecond: 19, burst: 100 });
  for (let i = 0; i < count; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/j-${i}.csv`));
  await world.dispatch();
  const [execution] = world.started;
  if (options.advanceMs) await world.advance(options.advanceMs);

  const described: string[] = [];
  const wakes: unknown[] = [];
  const settings: JanitorSettings = {
    tableName: world.tableName,
    queueUrl: world.queueUrl,
    stateMachineArn: world.settings.stateMachineArn,
    dispatcherFunctionName: 'sluice-test-dispatcher',
    maxExecutionAttempts: options.attempts ?? 3,
    startGraceMs: 120_000,
  };
  const summary = await runJanitor({
    ddb: world.ddb,
    sqs: world.sqs,
    clock: world.clock,
    settings,
    sfn: {
      async send(command: { input: { executionArn: string } }) {
        described.push(command.input.executionArn);
        if (executionStatus === 'missing') throw new AwsError('ExecutionDoesNotExist', 'Execution Does Not Exist', false);
        return { status: executionStatus };
      },
    },
    lambda: { send: async (command: { input: unknown }) => wakes.push(command.input) },
  });
  const ledger = async (jobId: string) => (await dynamo.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(jobId) }))).Item!;
  return { world, execution, summary, described, wakes, ledger, pool: await readPool(dynamo.ddb, world.tableName) };
}

test("an aborted execution's leases come back and its unfinished jobs are queued again", async () => {
  const { world, execution, summary, described, wakes, ledger, pool } = await scenario(3, 'ABORTED');
  expect(described).toEqual([`arn:aws:states:eu-west-1:111111111111:execution:sluice-test-jobs:${execution.name}`]);
  expect(summary).toMatchObject({ released: 3, requeued: 3, failed: 0 });
  expect(pool).toMatchObject({ inUseVcpu: 0, leases: {} });
  expect(wakes).toHaveLength(1);
  for (const job of execution.jobs) expect(await ledger(job.jobId)).toMatchObject({ status: 'queued', lastError: expect.stringContaining('ABORTED') });

  // The re-queued jobs go through the dispatcher again, as a second attempt under a new execution name.
  const again = await world.dispatch();
  expect(again.admitted).toBe(3);
  const retry = world.started[1];
  expect(retry.name).not.toBe(execution.name);
  expect(retry.jobs.map((j) => j.attempt)).toEqual([1, 1, 1]);
  for (const job of retry.jobs) expect(await ledger(job.jobId)).toMatchObject({ status: 'running', attempts: 2 });
});

test('a job out of attempts is marked failed instead', async () => {
  const { summary, execution, ledger, world } = await scenario(1, 'TIMED_OUT', { attempts: 1 });
  expect(summary).toMatchObject({ released: 1, requeued: 0, failed: 1 });
  expect(await ledger(execution.jobs[0].jobId)).toMatchObject({ status: 'failed', error: 'ExecutionTIMED_OUT' });
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);
});

test('leases of a running execution are left alone', async () => {
  const { summary, pool, wakes } = await scenario(2, 'RUNNING', { advanceMs: 7_200_000 });
  expect(summary).toMatchObject({ released: 0, stillRunning: 2 });
  expect(Object.keys(pool.leases)).toHaveLength(2);
  expect(wakes).toHaveLength(0);
});

test('a lease whose execution never started is reclaimed after the grace period, without re-queueing', async () => {
  const early = await scenario(1, 'missing', { advanceMs: 60_000 });
  expect(early.summary.released).toBe(0); // the dispatcher may still be starting it

  const late = await scenario(1, 'missing', { advanceMs: 180_000 });
  expect(late.summary).toMatchObject({ released: 1, requeued: 0 });
  expect(late.pool.leases).toEqual({});
  // The intake message was deleted only after a successful start, so here it is already gone: the
  // job is in the ledger as running and nothing re-queues it — the case the grace period is for is
  // a dispatcher that stopped before StartExecution, whose message is still queued.
  expect(late.world.sqs.counts(late.world.queueUrl).total).toBe(0);
});

test('an operator redrives a failed job: it runs again as its next attempt; other jobs are left alone', async () => {
  const { world, execution, ledger } = await scenario(2, 'TIMED_OUT', { attempts: 1 });
  const [failed, other] = execution.jobs;
  // The second job's row is set to succeeded, as if it had finished before the timeout.
  await world.ddb.send(
    new UpdateCommand({
      TableName: world.tableName,
      Key: ledgerKey(other.jobId),
      UpdateExpression: 'SET #s = :s',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':s': 'succeeded' },
    }),
  );
  const outcome = await redriveFailedJobs(world, { tableName: world.tableName, queueUrl: world.queueUrl }, [failed.jobId, other.jobId, 'f'.repeat(32)], world.clock.now());
  expect(outcome).toEqual({ redriven: [failed.jobId], skipped: [{ jobId: other.jobId, status: 'succeeded' }, { jobId: 'f'.repeat(32), status: 'unknown' }] });
  expect(await ledger(failed.jobId)).toMatchObject({ status: 'queued', lastError: expect.stringContaining('redriven') });

  const again = await world.dispatch();
  expect(again.admitted).toBe(1);
  expect(world.started[1].jobs).toEqual([expect.objectContaining({ jobId: failed.jobId, attempt: 1 })]);
});
