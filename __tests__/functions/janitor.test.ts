import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { readBatchRecord } from '../../functions/batches';
import { failedDayOf, ledgerKey, readLedgerRow, releaseLease, type LedgerRow } from '../../functions/ledger';
import { batchGetItems } from '../../functions/batch-get';
import { ADMITTED_FOR_ANOTHER_STATE_MACHINE } from '../../functions/jobs';
import { inUseVcpu, POOL_KEY, readPool, releasedShardKeys } from '../../functions/limiter';
import { ownByClass } from '../../functions/placement';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { intakeWorld, objectCreated } from '../support/intake-world';

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

async function releasedShards(tableName: string): Promise<Map<string, number>> {
  const items = await batchGetItems(moto.ddb, { table: tableName, keys: releasedShardKeys(), read: { ConsistentRead: true } });
  return new Map(items.map((i) => [String(i.pk), Number(i.releasedVcpu)]));
}

/** Admits `count` jobs through the real dispatcher; the execution's fate is the test's. */
async function admitted(count: number) {
  const world = await intakeWorld(moto, { budgetVcpu: 10, ratePerSecond: 19, burst: 100 });
  for (let i = 0; i < count; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/j-${i}.csv`));
  await world.dispatch();
  const [execution] = world.started;
  const row = async (jobId: string) => (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(jobId) }))).Item!;
  const endedEvent = {
    detail: { executionArn: `${world.settings.stateMachineArn.replace(':stateMachine:', ':execution:')}:${execution.name}`, status: 'ABORTED' },
  };
  return { world, execution, row, endedEvent };
}

/** Admits `count` jobs whose execution then times out; with one execution allowed per job, the janitor fails them. */
async function failedByTheJanitor(count: number) {
  const admission = await admitted(count);
  admission.execution.status = 'TIMED_OUT';
  const summary = await admission.world.janitor({ maxExecutionAttempts: 1 });
  const [job] = admission.execution.jobs;
  // Read as a redrive's caller reads it; the tests also look at what LedgerRow leaves out (finishedAt, failedDay).
  const failedRow = (await readLedgerRow(moto.ddb, admission.world.tableName, job.jobId)) as LedgerRow & Record<string, any>;
  return { ...admission, summary, job, failedRow };
}

test("an aborted execution's leases come back, its unfinished jobs are queued again, and they run as their next round", async () => {
  const { world, execution, row, endedEvent } = await admitted(3);
  execution.status = 'ABORTED';
  const summary = await world.janitor({}, endedEvent);
  // Told by the execution's end, not found by the sweep: nothing for the leaked-lease alarm.
  expect(summary).toMatchObject({ settled: 1, released: 3, sweptLeases: 0, requeued: 3, failed: 0, drift: 0 });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(0);
  expect(await readBatchRecord(moto.ddb, world.batchesTableName, execution.name)).toBeUndefined();
  expect(world.wakes).toHaveLength(1);
  for (const job of execution.jobs) expect(await row(job.jobId)).toMatchObject({ status: 'queued', lastError: expect.stringContaining('ABORTED') });

  const again = await world.dispatch();
  expect(again.admitted).toBe(3);
  const retry = world.started[1];
  expect(retry.name).not.toBe(execution.name);
  expect(retry.jobs.map((j) => [j.round, j.failedRuns])).toEqual([
    [1, 1],
    [1, 1],
    [1, 1],
  ]);
  for (const job of retry.jobs) expect(await row(job.jobId)).toMatchObject({ status: 'running', admissions: 2, failedRuns: 1 });
});

test('a job whose executions died too often is marked failed instead', async () => {
  const { world, summary, failedRow } = await failedByTheJanitor(1);
  expect(summary).toMatchObject({ released: 1, requeued: 0, failed: 1, jobsFailed: 1, jobsSucceeded: 0 });
  expect(failedRow).toMatchObject({ status: 'failed', error: 'ExecutionTIMED_OUT', failedDay: failedDayOf(failedRow.finishedAt!) });
  expect(failedRow.finishedAt).toBe(new Date(world.clock.now()).toISOString());
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);
});

test('the leases of a running execution are left alone, even past their expiry', async () => {
  const { world, execution } = await admitted(2);
  await world.advance(7_200_000);
  const summary = await world.janitor();
  expect(summary).toMatchObject({ released: 0, stillRunning: 2, drift: 0 });
  expect(await readBatchRecord(moto.ddb, world.batchesTableName, execution.name)).toBeDefined();
  expect(world.wakes).toHaveLength(0);
});

test('a batch that never started is given back after the grace period; its jobs wait for their own messages', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 10, ratePerSecond: 19, burst: 100 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/never.csv'));
  world.crashAfterNext('TransactWriteCommand');
  await expect(world.dispatch()).rejects.toMatchObject({ name: 'FunctionCrashed' });

  await world.advance(60_000);
  expect(await world.janitor()).toMatchObject({ released: 0, stillRunning: 1 }); // the dispatcher may still be starting it
  await world.advance(120_000);
  // Nothing told the janitor about this one: the sweep found it, and the leaked-lease alarm counts it.
  expect(await world.janitor()).toMatchObject({ released: 1, sweptLeases: 1, requeued: 0, settled: 1 });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(0);
  // Nothing re-queued: the intake message was never deleted, and it is the job's way back.
  expect(world.sqs.counts(world.queueUrl).total).toBe(1);
});

test('a finished execution that could not give a lease back: the janitor does, and the result stays', async () => {
  const { world, execution, row } = await admitted(2);
  const [kept, released] = execution.jobs;
  // The second job finished normally; the first recorded its result but kept its lease (its release kept failing).
  await releaseLease(
    moto.ddb,
    world.tableName,
    { jobId: released.jobId, lease: (await row(released.jobId)).lease, outcome: { status: 'unchanged' } },
    world.clock,
  );
  await moto.ddb.send(
    new UpdateCommand({
      TableName: world.tableName,
      Key: ledgerKey(kept.jobId),
      UpdateExpression: 'SET #s = :s',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':s': 'succeeded' },
    }),
  );
  execution.status = 'SUCCEEDED';
  const summary = await world.janitor();
  // Each outcome counted once, by the batch that recorded it: one succeeded; the other job has no result.
  expect(summary).toMatchObject({ settled: 1, released: 1, requeued: 0, failed: 0, jobsSucceeded: 1, jobsFailed: 0 });
  expect(await row(kept.jobId)).toMatchObject({ status: 'succeeded' });
  expect(await row(kept.jobId)).not.toHaveProperty('lease');
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(0);
});

test('drift between the counters and the leases is measured and repaired', async () => {
  const { world } = await admitted(2);
  // A counter edited by hand: 3 vCPU more admitted than any lease holds.
  await moto.ddb.send(
    new UpdateCommand({
      TableName: world.tableName,
      Key: POOL_KEY,
      UpdateExpression: 'SET admittedVcpu = admittedVcpu + :d',
      ExpressionAttributeValues: { ':d': 3 },
    }),
  );
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(5);
  const summary = await world.janitor();
  expect(summary).toMatchObject({ drift: 3, repaired: true, stillRunning: 2 });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(2);
  // The repair gave room back: the dispatcher is woken to admit into it, as after leases given back.
  expect(world.wakes).toHaveLength(1);
  expect(await world.janitor()).toMatchObject({ drift: 0, repaired: false });
  expect(world.wakes).toHaveLength(1);
});

test('a repair planned on counters that changed meanwhile is not applied', async () => {
  const { world, execution, row } = await admitted(2);
  await moto.ddb.send(
    new UpdateCommand({
      TableName: world.tableName,
      Key: POOL_KEY,
      UpdateExpression: 'SET admittedVcpu = admittedVcpu + :d',
      ExpressionAttributeValues: { ':d': 3 },
    }),
  );
  // A job releases its lease while the janitor measures: its repair must not apply on stale counts.
  world.beforeNext('TransactWriteCommand', async () =>
    releaseLease(
      moto.ddb,
      world.tableName,
      { jobId: execution.jobs[0].jobId, lease: (await row(execution.jobs[0].jobId)).lease, outcome: { status: 'unchanged' } },
      world.clock,
    ),
  );
  const summary = await world.janitor();
  expect(summary).toMatchObject({ drift: 3, repaired: false });
  expect(world.logs).toContainEqual(expect.objectContaining({ event: 'counterRepairDeferred' }));
  // Measured again, it is repaired: in use is what the one remaining lease holds.
  expect(await world.janitor()).toMatchObject({ drift: 3, repaired: true });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(1);
});

test('a class’s counters that drift from its leases while the totals hold (a deploy’s versions) are repaired too', async () => {
  const { world, execution, row } = await admitted(2);
  const [first] = execution.jobs;
  const lease = (await row(first.jobId)).lease;
  expect(lease).toMatchObject({ capacityProvider: 'FARGATE_SPOT' });
  // Released as a version that did not count classes would: the total goes up, the class's counter does not.
  await releaseLease(
    moto.ddb,
    world.tableName,
    { jobId: first.jobId, lease: { ...lease, capacityProvider: undefined }, outcome: { status: 'unchanged' } },
    world.clock,
  );
  let pool = await readPool(moto.ddb, world.tableName);
  expect(inUseVcpu(pool)).toBe(1);
  expect(ownByClass(pool)).toEqual({ FARGATE_SPOT: 2 });
  expect(await world.janitor()).toMatchObject({ drift: 0, repaired: true });
  pool = await readPool(moto.ddb, world.tableName);
  expect(ownByClass(pool)).toEqual({ FARGATE_SPOT: 1 });
  expect(inUseVcpu(pool)).toBe(1);
  // Too little counted in a class is raised on admitted, as for the totals.
  await moto.ddb.send(
    new UpdateCommand({
      TableName: world.tableName,
      Key: { pk: 'RELEASED#9' },
      UpdateExpression: 'ADD #c :d',
      ExpressionAttributeNames: { '#c': 'releasedVcpu@FARGATE_SPOT' },
      ExpressionAttributeValues: { ':d': 1 },
    }),
  );
  expect(ownByClass(await readPool(moto.ddb, world.tableName))).toEqual({ FARGATE_SPOT: 0 });
  expect(await world.janitor()).toMatchObject({ drift: 0, repaired: true });
  expect(ownByClass(await readPool(moto.ddb, world.tableName))).toEqual({ FARGATE_SPOT: 1 });
  expect(await world.janitor()).toMatchObject({ drift: 0, repaired: false });
});

test('a batch leased for another task size (its execution failed before any task) goes back without a failed run', async () => {
  const { world, execution, row } = await admitted(2);
  execution.status = 'FAILED';
  execution.error = ADMITTED_FOR_ANOTHER_STATE_MACHINE;
  expect(await world.janitor()).toMatchObject({ released: 2, requeued: 2, failed: 0 });
  for (const job of execution.jobs)
    expect(await row(job.jobId)).toMatchObject({ status: 'queued', failedRuns: 0, lastError: expect.stringContaining(ADMITTED_FOR_ANOTHER_STATE_MACHINE) });
  expect(world.sqs.counts(world.queueUrl).total).toBe(2);
});

test('counters that miss a lease are repaired by raising admitted: no released shard ever goes down', async () => {
  const { world } = await admitted(2);
  // A shard edited by hand: 1 vCPU more released than was, so the pool sees room the leases hold.
  await moto.ddb.send(
    new UpdateCommand({
      TableName: world.tableName,
      Key: { pk: 'RELEASED#7' },
      UpdateExpression: 'ADD releasedVcpu :d',
      ExpressionAttributeValues: { ':d': 1 },
    }),
  );
  const shardsBefore = await releasedShards(world.tableName);
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(1);
  expect(await world.janitor()).toMatchObject({ drift: -1, repaired: true });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(2);
  const shardsAfter = await releasedShards(world.tableName);
  for (const [pk, released] of shardsBefore) expect(shardsAfter.get(pk)).toBeGreaterThanOrEqual(released);
  // It took room away: nothing to wake the dispatcher for.
  expect(world.wakes).toHaveLength(0);
});

test('a batch that cannot be settled now does not keep the sweep from settling the others, and the sweep says so', async () => {
  const { world, execution } = await admitted(1);
  execution.status = 'ABORTED';
  for (const key of ['other-1']) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/${key}.csv`));
  await world.dispatch();
  const other = world.started[1];
  other.status = 'ABORTED';
  // The first batch's DescribeExecution is refused (throttled past the SDK's retries).
  const sfn = world.sfn;
  let refused = 0;
  const original = sfn.send.bind(sfn);
  sfn.send = async (command: { constructor: { name: string }; input: any }) => {
    if (command.constructor.name === 'DescribeExecutionCommand' && command.input.executionArn.endsWith(execution.name) && refused++ === 0) {
      throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    }
    return original(command);
  };
  await expect(world.janitor()).rejects.toThrow(/1 batch\(es\) could not be settled/);
  expect(world.logs).toContainEqual(expect.objectContaining({ event: 'batchNotSettled', batch: execution.name, error: 'ThrottlingException' }));
  // The other batch was settled all the same; the next sweep settles the first.
  expect(await readBatchRecord(moto.ddb, world.batchesTableName, other.name)).toBeUndefined();
  expect(await readBatchRecord(moto.ddb, world.batchesTableName, execution.name)).toBeDefined();
  expect(await world.janitor()).toMatchObject({ settled: 1, released: 1 });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(0);
});
