/**
 * Break 1 of explorer/reverted-fixes.md (E2, E3): whoever gives a job back sends its next round first and releases
 * its lease after, so a crash between leaves a duplicate, not a job without a message. A dispatcher run that meets
 * that message before the release must not take it for a duplicate of the running job (the lease is held) and delete
 * it: the release would then leave the job queued with no message, for good. Here a dispatcher run happens before each call of
 * the janitor (and between the state machine's capacity return and its release): the job always gets its next round.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { REDRIVE_OF, RETURNED_BY } from '../../functions/jobs';
import { ledgerKey, readLedgerRow, releaseLease, requeueMessageFor } from '../../functions/ledger';
import { inUseVcpu, readPool } from '../../functions/limiter';
import { validateEnvironment } from '../../environments';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { stageConfig } from '../support/synth';
import { capacityError, runExecutionOf } from '../support/execution';
import { intakeWorld, objectCreated } from '../support/intake-world';
import { beforeEachCall } from './support';

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

test("the janitor's requeue of an aborted execution's job is never lost to a dispatcher run, whichever of its calls that run precedes", async () => {
  const points = await beforeEachCall(async (k) => {
    const world = await intakeWorld(moto, { budgetVcpu: 10, ratePerSecond: 19, burst: 20 });
    world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/stranded.csv'));
    expect((await world.dispatch()).admitted).toBe(1);
    const [execution] = world.started;
    const { jobId } = execution.jobs[0];
    execution.status = 'ABORTED';

    let injected = false;
    world.beforeCall(k, async () => {
      injected = true;
      await world.dispatchNow();
    });
    await world.janitor();
    if (!injected) return false;

    // Whatever the interleaving, the job runs again: now, or once its message is visible.
    for (let tries = 0; tries < 5 && world.started.length < 2; tries++) {
      await world.advance(61_000);
      await world.dispatch();
    }
    const row = (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(jobId), ConsistentRead: true }))).Item!;
    expect(row).toMatchObject({ status: 'running', admissions: 2, failedRuns: 1 });
    expect(world.started).toHaveLength(2);
    expect(world.sqs.counts(world.deadLetterQueueUrl).total).toBe(0);
    return true;
  });
  expect(points).toBeGreaterThanOrEqual(4);
});

test("the state machine's capacity return, seen by a dispatcher before its lease is given back, is waited for, not deleted", async () => {
  // The schema's shortest delay: the requeue is visible before the release has done its retries.
  const input = { ...stageConfig('dev'), capacity: { ...stageConfig('dev').capacity, capacityRetryDelaySeconds: 1 } };
  const config = validateEnvironment('dev', input);
  const world = await intakeWorld(moto, { budgetVcpu: 4, ratePerSecond: 2, burst: 4 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/returned.csv'));
  expect((await world.dispatch()).admitted).toBe(1);
  const [execution] = world.started;
  const { jobId } = execution.jobs[0];
  let during: unknown;
  await runExecutionOf(moto, world, config, execution, {
    runTask: async () => {
      throw capacityError();
    },
    afterSend: async () => {
      await world.advance(2_000);
      during = await world.dispatch();
    },
  });
  execution.status = 'SUCCEEDED';
  expect(during).toMatchObject({ admitted: 0, duplicates: 0, deferred: 1 });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(0);

  // Deferred, not deleted: it comes back and runs the job's next round.
  await world.advance(61_000);
  expect(await world.dispatch()).toMatchObject({ admitted: 1 });
  const row = (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(jobId), ConsistentRead: true }))).Item!;
  expect(row).toMatchObject({ status: 'running', admissions: 2, capacityReturns: 1 });
});

test('a requeue received in one batch after a stale copy of its job is kept, not dropped as that copy’s duplicate', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 10, ratePerSecond: 19, burst: 20 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/copies.csv'));
  expect((await world.dispatch()).admitted).toBe(1);
  const [running] = world.started;
  const { jobId } = running.jobs[0];
  const row = (await readLedgerRow(moto.ddb, world.tableName, jobId))!;
  // A late duplicate of the upload, then the execution's capacity return (returnedBy it), both visible at once; the
  // execution has not given its lease back yet.
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/copies.csv'));
  world.sqs.sendMessage(world.queueUrl, JSON.stringify(requeueMessageFor(row, 0)), 0, { [RETURNED_BY]: { DataType: 'String', StringValue: running.name } });
  expect(await world.dispatch()).toMatchObject({ admitted: 0, deferred: 1 });
  expect(await releaseLease(moto.ddb, world.tableName, { jobId, lease: row.lease!, outcome: { status: 'queued', reason: 'no capacity' } }, world.clock)).toBe(
    true,
  );
  running.status = 'SUCCEEDED';

  await world.advance(61_000);
  expect(await world.dispatch()).toMatchObject({ admitted: 1 });
  expect(world.started).toHaveLength(2);
});

test('in one batch, a copy of a give-back is dropped; two different messages that give one job its next round wait their turns', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 10, ratePerSecond: 19, burst: 20 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/twice-returned.csv'));
  expect((await world.dispatch()).admitted).toBe(1);
  const [running] = world.started;
  const row = (await readLedgerRow(moto.ddb, world.tableName, running.jobs[0].jobId))!;
  const requeue = JSON.stringify(requeueMessageFor(row, 0));
  // The execution's give-back, sent twice (a retried send), and a redrive from an operator.
  const returned = { [RETURNED_BY]: { DataType: 'String', StringValue: running.name } };
  world.sqs.sendMessage(world.queueUrl, requeue, 0, returned);
  world.sqs.sendMessage(world.queueUrl, requeue, 0, returned);
  world.sqs.sendMessage(world.queueUrl, requeue, 0, { [REDRIVE_OF]: { DataType: 'String', StringValue: '2026-12-07T00:00:00.000Z' } });
  expect(await world.dispatch()).toMatchObject({ admitted: 0, deferred: 2, duplicates: 1 });
  expect(world.sqs.counts(world.queueUrl)).toMatchObject({ delayed: 2, total: 2 });
});
