/**
 * Break 6 of explorer/reverted-fixes.md (E8): `sluice redrive` must be idempotent in effect, and never leave a job
 * without a message. A redrive sends the job's next round first — saying which failure it redrives — and then marks
 * the row; the admission takes a failed row only for a message that redrives that very failure; a second redrive
 * finds the mark and sends nothing.
 */
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ledgerKey, readLedgerRow, redriveJob, type LedgerRow } from '../../functions/ledger';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { stageConfig } from '../support/synth';
import { capacityError, runExecutionOf } from '../support/execution';
import { intakeWorld, objectCreated } from '../support/intake-world';

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

async function rowOf(tableName: string, jobId: string) {
  return (await moto.ddb.send(new GetCommand({ TableName: tableName, Key: ledgerKey(jobId), ConsistentRead: true }))).Item!;
}

/** A job the janitor failed (its one allowed execution timed out). */
async function failedJob() {
  const world = await intakeWorld(moto, { budgetVcpu: 4, ratePerSecond: 2, burst: 4 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/failing.csv'));
  expect((await world.dispatch()).admitted).toBe(1);
  const [execution] = world.started;
  execution.status = 'TIMED_OUT';
  await world.janitor({ maxExecutionAttempts: 1 });
  const { jobId } = execution.jobs[0];
  expect(await rowOf(world.tableName, jobId)).toMatchObject({ status: 'failed' });
  return { world, jobId, target: { tableName: world.tableName, queueUrl: world.queueUrl } };
}

test('redrive --job on a job waiting for its capacity requeue, twice: one message more at most, and the job runs once', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 4, ratePerSecond: 2, burst: 4 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/redriven.csv'));
  expect((await world.dispatch()).admitted).toBe(1);
  const [first] = world.started;
  const { jobId } = first.jobs[0];
  await runExecutionOf(moto, world, stageConfig('dev'), first, {
    runTask: async () => {
      throw capacityError();
    },
  });
  first.status = 'SUCCEEDED';
  const target = { tableName: world.tableName, queueUrl: world.queueUrl };
  const deps = { ddb: moto.ddb, sqs: world.sqs };

  expect(await redriveJob(deps, target, (await readLedgerRow(moto.ddb, world.tableName, jobId))!, world.clock.now())).toEqual({ sent: true });
  const second = await redriveJob(deps, target, (await readLedgerRow(moto.ddb, world.tableName, jobId))!, world.clock.now());
  expect(second).toEqual({ sent: false, reason: expect.stringContaining('already sent') });
  expect(world.sqs.counts(world.queueUrl)).toMatchObject({ visible: 1, delayed: 1 }); // the redrive's, and the capacity return's

  // Whichever comes first runs the job; the other is a duplicate of a job that runs or has run.
  expect(await world.dispatch()).toMatchObject({ admitted: 1 });
  await world.advance(61_000);
  expect(await world.dispatch()).toMatchObject({ admitted: 0, duplicates: 1 });
  expect(world.started).toHaveLength(2);
  expect(await rowOf(world.tableName, jobId)).toMatchObject({ status: 'running', admissions: 2 });
});

test('redriving a failed job sends first: a redrive that cannot send changes nothing, and the job is never queued without a message', async () => {
  const { world, jobId, target } = await failedJob();
  const refusing = { send: async () => Promise.reject(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' })) };
  await expect(
    redriveJob({ ddb: moto.ddb, sqs: refusing }, target, (await readLedgerRow(moto.ddb, world.tableName, jobId))!, world.clock.now()),
  ).rejects.toThrow('Rate exceeded');
  expect(await rowOf(world.tableName, jobId)).toMatchObject({ status: 'failed', failedDay: expect.any(String) });

  expect(await redriveJob({ ddb: moto.ddb, sqs: world.sqs }, target, (await readLedgerRow(moto.ddb, world.tableName, jobId))!, world.clock.now())).toEqual({
    sent: true,
  });
  // Still failed (and listed) until its message is admitted; then a fresh set of executions.
  expect(await rowOf(world.tableName, jobId)).toMatchObject({ status: 'failed' });
  expect(await world.dispatch()).toMatchObject({ admitted: 1 });
  const row = await rowOf(world.tableName, jobId);
  expect(row).toMatchObject({ status: 'running', failedRuns: 0, admissions: 2 });
  expect(row).not.toHaveProperty('failedDay');
});

test('a redrive that died between its send and its mark is sent again; the job still runs once', async () => {
  const { world, jobId, target } = await failedJob();
  const row = (await readLedgerRow(moto.ddb, world.tableName, jobId))! as LedgerRow & Record<string, unknown>;
  const deps = { ddb: moto.ddb, sqs: world.sqs };
  // The first redrive's message is out; its mark never landed (the CLI was killed): the row reads as before.
  expect(await redriveJob(deps, target, row, world.clock.now())).toEqual({ sent: true });
  expect(await redriveJob(deps, target, row, world.clock.now())).toEqual({ sent: true });
  expect(world.sqs.counts(world.queueUrl).total).toBe(2);
  expect(await world.dispatch()).toMatchObject({ admitted: 1, duplicates: 1 });
  expect(world.started).toHaveLength(2);
});

test("a redrive's message for a failure that is over (the job ran and failed again since) starts nothing", async () => {
  const { world, jobId, target } = await failedJob();
  const deps = { ddb: moto.ddb, sqs: world.sqs };
  expect(await redriveJob(deps, target, (await readLedgerRow(moto.ddb, world.tableName, jobId))!, world.clock.now())).toEqual({ sent: true });
  // Held back (a copy in flight elsewhere), while the job is redriven again, runs and fails again.
  const old = await world.sqs.send(new ReceiveMessageCommand({ QueueUrl: world.queueUrl, VisibilityTimeout: 900, MessageAttributeNames: ['All'] }));
  expect(old.Messages).toHaveLength(1);
  world.sqs.sendMessage(world.queueUrl, old.Messages[0].Body, 0, old.Messages[0].MessageAttributes);
  expect(await world.dispatch()).toMatchObject({ admitted: 1 });
  world.started[1].status = 'TIMED_OUT';
  await world.advance(1_000);
  await world.janitor({ maxExecutionAttempts: 1 });
  expect(await rowOf(world.tableName, jobId)).toMatchObject({ status: 'failed' });
  // The held copy arrives: it redrives a failure that is over.
  await world.advance(901_000);
  expect(await world.dispatch()).toMatchObject({ admitted: 0, duplicates: 1 });
  expect(await rowOf(world.tableName, jobId)).toMatchObject({ status: 'failed' });
});
