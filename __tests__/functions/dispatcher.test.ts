import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { readBatchRecord } from '../../functions/batches';
import { StartedBatches, wakeOf } from '../../functions/dispatcher';
import { ledgerKey, releaseLease } from '../../functions/ledger';
import { configureCommand, inUseVcpu, POOL_KEY, readPool, releasedShardKeys } from '../../functions/limiter';
import { AwsError } from '../../twin/engines/errors';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { BUCKET, intakeWorld, objectCreated, VISIBILITY_PASSED_MS } from '../support/intake-world';

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

const roomy = { budgetVcpu: 100, ratePerSecond: 19, burst: 100 };
const row = async (tableName: string, jobId: string) => (await moto.ddb.send(new GetCommand({ TableName: tableName, Key: ledgerKey(jobId) }))).Item;

test('poison goes to the DLQ with its reason and never holds up the good messages', async () => {
  const world = await intakeWorld(moto, roomy);
  const poison: Array<[string, RegExp]> = [
    ['{not json', /not JSON/],
    [JSON.stringify({ source: 'aws.s3', 'detail-type': 'Object Deleted', detail: {} }), /not an S3 Object Created event/],
    [objectCreated('incoming/a.csv', 'v1', 'someone-elses-bucket'), /is not this pipeline's bucket/],
    [objectCreated('results/a.csv.json'), /outside the input prefix "incoming\/"/],
  ];
  for (const [body] of poison) world.sqs.sendMessage(world.queueUrl, body);
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/good-1.csv'));
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/good-2.csv'));

  const summary = await world.dispatch();
  expect(summary).toMatchObject({ poison: 4, admitted: 2, executionsStarted: 1, stoppedBecause: 'queue-empty' });
  expect(world.started[0].jobs.map((j) => j.key).sort()).toEqual(['incoming/good-1.csv', 'incoming/good-2.csv']);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);

  const { Messages = [] } = await world.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: world.deadLetterQueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }),
  );
  expect(Messages).toHaveLength(4);
  for (const [body, reason] of poison) {
    const dead = Messages.find((m: { Body: string }) => m.Body === body);
    expect(dead.MessageAttributes.reason.StringValue).toMatch(reason);
  }
});

test('one admission is one transaction: leases on the rows, the pool counted, the batch recorded', async () => {
  const world = await intakeWorld(moto, roomy);
  for (let i = 0; i < 3; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/tx-${i}.csv`));
  await world.dispatch();
  const [execution] = world.started;
  expect(execution.jobs).toHaveLength(3);
  // Shards the readers sum, one after the other: the batch's releases never write one shard at once.
  const shards = releasedShardKeys().map((k) => k.pk);
  const taken = execution.jobs.map((job) => shards.indexOf(job.releaseShard));
  expect(taken.every((n) => n >= 0)).toBe(true);
  expect(taken.map((n) => (n - taken[0] + shards.length) % shards.length)).toEqual([0, 1, 2]);
  for (const job of execution.jobs) {
    expect(await row(world.tableName, job.jobId)).toMatchObject({
      status: 'running',
      admissions: 1,
      executionName: execution.name,
      bucket: BUCKET,
      lease: { execution: execution.name, vcpu: 1 },
    });
  }
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(3);
  expect(await readBatchRecord(moto.ddb, world.batchesTableName, execution.name)).toMatchObject({
    jobs: execution.jobs.map((j) => ({ jobId: j.jobId, vcpu: 1 })),
  });
});

test('the same object delivered three times starts one execution', async () => {
  const world = await intakeWorld(moto, roomy);
  for (let i = 0; i < 3; i++) world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/twice.csv', 'v7'));
  const first = await world.dispatch();
  // One more copy arrives after the job started: its ledger row refuses the admission.
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/twice.csv', 'v7'));
  const second = await world.dispatch();

  expect(world.started).toHaveLength(1);
  expect(world.started[0].jobs).toHaveLength(1);
  expect(first.duplicates + second.duplicates).toBe(3);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);
});

test('a redelivery after the job finished starts nothing', async () => {
  const world = await intakeWorld(moto, roomy);
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/done.csv'));
  await world.dispatch();
  const [execution] = world.started;
  const lease = (await row(world.tableName, execution.jobs[0].jobId))!.lease;
  await moto.ddb.send(
    new UpdateCommand({
      TableName: world.tableName,
      Key: ledgerKey(execution.jobs[0].jobId),
      UpdateExpression: 'SET #s = :s',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':s': 'succeeded' },
    }),
  );
  await releaseLease(moto.ddb, world.tableName, { jobId: execution.jobs[0].jobId, lease, outcome: { status: 'unchanged' } }, world.clock);
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/done.csv'));
  const summary = await world.dispatch();
  expect(summary).toMatchObject({ admitted: 0, duplicates: 1 });
  expect(world.started).toHaveLength(1);
});

test('a backlog larger than the budget: what fits is admitted, the rest waits unreceived', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 4, ratePerSecond: 19, burst: 100 }, 1);
  for (let i = 0; i < 10; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/backlog-${i}.csv`));

  const first = await world.dispatch();
  // Out of budget it stops rather than poll: the next lease release wakes it.
  expect(first).toMatchObject({ admitted: 4, stoppedBecause: 'no-budget', waits: 0 });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(4);
  // The six waiting were never received: with maxReceiveCount 1, one receive too many would have sent them to the DLQ.
  expect(world.sqs.counts(world.queueUrl)).toMatchObject({ visible: 6, inflight: 0 });

  // Two jobs finish and release their leases; the next run admits exactly two more.
  for (const job of world.started[0].jobs.slice(0, 2)) {
    const { lease } = (await row(world.tableName, job.jobId))!;
    expect(await releaseLease(moto.ddb, world.tableName, { jobId: job.jobId, lease, outcome: { status: 'unchanged' } }, world.clock)).toBe(true);
  }
  const second = await world.dispatch();
  expect(second.admitted).toBe(2);
  expect(world.sqs.counts(world.queueUrl).visible).toBe(4);
  expect(world.sqs.counts(world.deadLetterQueueUrl).total).toBe(0);
});

/** The account as the capacity reader would have written it on POOL. */
async function measuredAccount(tableName: string, account: { freeVcpu: number; readAt: number; classes: Record<string, unknown> }) {
  await moto.ddb.send(
    new UpdateCommand({
      TableName: tableName,
      Key: POOL_KEY,
      UpdateExpression: 'SET #account = :account',
      ExpressionAttributeNames: { '#account': 'account' },
      ExpressionAttributeValues: { ':account': account },
    }),
  );
}

/**
 * A budget of 2 vCPU filled by the first two of `uploads`: the run stopped short of room and recorded its look.
 * `releaseOne` gives back the first job's lease, as its execution would.
 */
async function fullPoolLookedAt(name: string, uploads: number) {
  const world = await intakeWorld(moto, { budgetVcpu: 2, ratePerSecond: 19, burst: 100 });
  for (let i = 0; i < uploads; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/${name}-${i}.csv`));
  const first = await world.dispatch();
  const { lastLook } = await readPool(moto.ddb, world.tableName);
  const releaseOne = async () => {
    const job = world.started[0].jobs[0];
    await releaseLease(
      moto.ddb,
      world.tableName,
      { jobId: job.jobId, lease: (await row(world.tableName, job.jobId))!.lease, outcome: { status: 'unchanged' } },
      world.clock,
    );
  };
  return { world, first, lastLook: lastLook!, releaseOne };
}

test('a wake-up for a release the last look short of room counted reads POOL alone and stops', async () => {
  const { world, first, lastLook, releaseOne } = await fullPoolLookedAt('seen', 4);
  expect(first).toMatchObject({ admitted: 2, stoppedBecause: 'no-budget' });
  // Its last read of the releases before stopping was strongly consistent, and that is the look it recorded.
  const lastBatchGet = world.ddbCalls.filter((c) => c.name === 'BatchGetCommand').pop()!;
  expect(lastBatchGet.input.RequestItems[world.tableName]).toMatchObject({ ConsistentRead: true });
  const { admittedVcpu, budgetVcpu } = await readPool(moto.ddb, world.tableName);
  expect(lastLook).toMatchObject({ admittedVcpu, budgetVcpu });

  // Made before that look: counted there, and there was no room with it. One read, of POOL.
  world.ddbCalls.length = 0;
  expect(await world.dispatch({}, { releasedAt: lastLook.at - 1_000 })).toMatchObject({ admitted: 0, stoppedBecause: 'release-seen' });
  expect(world.ddbCalls.map((c) => c.name)).toEqual(['GetCommand']);
  // Too close to it to be sure, given the clocks of two services: it looks (consistently, as woken by a release).
  world.ddbCalls.length = 0;
  expect(await world.dispatch({}, { releasedAt: lastLook.at - 50 })).toMatchObject({ admitted: 0, stoppedBecause: 'no-budget' });
  expect(world.ddbCalls.find((c) => c.name === 'BatchGetCommand')!.input.RequestItems[world.tableName]).toMatchObject({ ConsistentRead: true });

  // A release after it: the wake-up looks, and admits into the room.
  await world.advance(5_000);
  await releaseOne();
  expect(await world.dispatch({}, { releasedAt: world.clock.now() })).toMatchObject({ admitted: 1, stoppedBecause: 'no-budget' });
  expect(world.sqs.counts(world.queueUrl).visible).toBe(1);
});

test('the pool changed since the last look (resized, measured, admitted): a wake-up for an older release looks', async () => {
  const { world, lastLook } = await fullPoolLookedAt('changed', 4);
  // An operator's resize writes nothing the dispatcher is woken by; the next release's wake-up must see it.
  await moto.ddb.send(new UpdateCommand(configureCommand(world.tableName, { budgetVcpu: 3, ratePerSecond: 19, burst: 100 }, world.clock.now())));
  expect(await world.dispatch({}, { releasedAt: lastLook.at - 1_000 })).toMatchObject({ admitted: 1, stoppedBecause: 'no-budget' });

  // That run admitted and looked again; a measurement of the account since then counts as a change too.
  const second = (await readPool(moto.ddb, world.tableName)).lastLook!;
  expect(second.admittedVcpu).toBe(3);
  await measuredAccount(world.tableName, { freeVcpu: 100, readAt: world.clock.now(), classes: {} });
  expect((await world.dispatch({}, { releasedAt: second.at - 1_000 })).stoppedBecause).toBe('no-budget');
});

test('a run that died after an admission, before its stop: a wake-up for a release before the old look looks, and gives the batch back', async () => {
  const { world, lastLook, releaseOne } = await fullPoolLookedAt('died', 2);
  await releaseOne();
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/died-late.csv'));
  world.crashAfterNext('TransactWriteCommand');
  await expect(world.dispatch()).rejects.toMatchObject({ name: 'FunctionCrashed' });
  // A run killed outright (a timeout) runs no catch and leaves the look as it was: the admission alone tells.
  await moto.ddb.send(
    new UpdateCommand({
      TableName: world.tableName,
      Key: POOL_KEY,
      UpdateExpression: 'SET lastLook = :look',
      ExpressionAttributeValues: { ':look': lastLook },
    }),
  );

  await world.advance(VISIBILITY_PASSED_MS);
  expect(await world.dispatch({}, { releasedAt: lastLook.at - 1_000 })).toMatchObject({ reclaimed: 1, admitted: 1 });
});

test('a run that found room and left it (the queue looked empty) forgets the last look', async () => {
  const { world, lastLook, releaseOne } = await fullPoolLookedAt('left', 2);
  expect(lastLook).toBeDefined();
  await releaseOne();
  // The schedule's run finds room and nothing waiting.
  expect(await world.dispatch()).toMatchObject({ admitted: 0, stoppedBecause: 'queue-empty' });
  expect((await readPool(moto.ddb, world.tableName)).lastLook).toBeUndefined();
  // Work that the next release's wake-up finds: its release was before the old look, which no longer stands.
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/left-late.csv'));
  expect(await world.dispatch({}, { releasedAt: lastLook.at - 1_000 })).toMatchObject({ admitted: 1 });
});

test('a schedule run stopped short of room on its first (eventually consistent) read leaves the look as it was', async () => {
  const { world, lastLook } = await fullPoolLookedAt('first', 3);
  world.ddbCalls.length = 0;
  expect(await world.dispatch()).toMatchObject({ admitted: 0, stoppedBecause: 'no-budget' });
  // One read of the shards, not strongly consistent, and nothing written: the look it did not take is not recorded.
  const reads = world.ddbCalls.filter((c) => c.name === 'BatchGetCommand');
  expect(reads).toHaveLength(1);
  expect(reads[0].input.RequestItems[world.tableName].ConsistentRead).toBeUndefined();
  expect(world.ddbCalls.some((c) => c.name === 'UpdateCommand')).toBe(false);
  expect((await readPool(moto.ddb, world.tableName)).lastLook).toEqual(lastLook);
});

test('woken by the janitor, a run reads the releases strongly consistently: the room it was woken for is there', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 2, ratePerSecond: 19, burst: 100 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/janitor-woken.csv'));
  world.ddbCalls.length = 0;
  await world.dispatch({}, wakeOf({ reason: 'janitor' }));
  expect(world.ddbCalls.find((c) => c.name === 'BatchGetCommand')!.input.RequestItems[world.tableName]).toMatchObject({ ConsistentRead: true });
});

test('a run that dies with room it found (before admitting) forgets the look; one that cannot record it still ends well', async () => {
  const { world, lastLook, releaseOne } = await fullPoolLookedAt('dies', 3);
  await releaseOne();
  world.beforeNext('TransactWriteCommand', async () => {
    throw new Error('DynamoDB unreachable');
  });
  await expect(world.dispatch({}, { releasedAt: world.clock.now() })).rejects.toThrow('DynamoDB unreachable');
  // Nothing admitted, so the old look would still match the pool: forgotten, a queued wake-up for an older release looks.
  expect((await readPool(moto.ddb, world.tableName)).lastLook).toBeUndefined();
  await world.advance(VISIBILITY_PASSED_MS); // the message it had received comes back
  expect(await world.dispatch({}, { releasedAt: lastLook.at - 1_000 })).toMatchObject({ admitted: 1, stoppedBecause: 'no-budget' });

  // Recording a look fails (a transaction holds POOL): the run's work stands and it ends as it would have.
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/dies-late.csv'));
  world.beforeNext('UpdateCommand', async () => {
    throw new AwsError('TransactionConflictException', 'Transaction is ongoing for the item', false);
  });
  expect(await world.dispatch({}, { releasedAt: world.clock.now() })).toMatchObject({ stoppedBecause: 'no-budget' });
  expect(world.logs).toContainEqual(expect.objectContaining({ event: 'lastLookNotKept', error: 'TransactionConflictException' }));
});

test('a wake-up made room only when the state machine or the janitor sent it; its release time only when well formed', () => {
  expect(wakeOf({ reason: 'lease-released', releasedAt: '2026-12-01T10:00:00.123Z' })).toEqual({ releasedAt: Date.parse('2026-12-01T10:00:00.123Z') });
  expect(wakeOf({ reason: 'lease-released', releasedAt: 'soon' })).toEqual({});
  expect(wakeOf({ reason: 'lease-released', releasedAt: 1764583200000 })).toEqual({});
  expect(wakeOf({ reason: 'lease-released' })).toEqual({});
  expect(wakeOf({ reason: 'janitor' })).toEqual({});
  expect(wakeOf({ reason: 'schedule', releasedAt: '2026-12-01T10:00:00Z' })).toBeUndefined();
  expect(wakeOf({ reason: 'object-created' })).toBeUndefined();
  expect(wakeOf(undefined)).toBeUndefined();
  expect(wakeOf('lease-released')).toBeUndefined();
});

test('a batch short of full waits up to the batch window for more room, then goes as it is', async () => {
  const spentSoThat = async (world: Awaited<ReturnType<typeof intakeWorld>>, tokensLeft: number) => {
    // Ten tokens a second, a burst of ten: `tokensLeft` now, the rest within a second.
    await moto.ddb.send(
      new UpdateCommand({
        TableName: world.tableName,
        Key: POOL_KEY,
        UpdateExpression: 'SET tat = :tat',
        ExpressionAttributeValues: { ':tat': world.clock.now() + (10 - tokensLeft) * 100 },
      }),
    );
    for (let i = 0; i < 10; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/window-${i}.csv`));
  };
  const patient = await intakeWorld(moto, { budgetVcpu: 100, ratePerSecond: 10, burst: 10 });
  await spentSoThat(patient, 3);
  const summary = await patient.dispatch({ batchWindowMs: 1_000 });
  expect(patient.started.map((e) => e.jobs.length)).toEqual([10]);
  expect(summary).toMatchObject({ admitted: 10, executionsStarted: 1 });

  const eager = await intakeWorld(moto, { budgetVcpu: 100, ratePerSecond: 10, burst: 10 });
  await spentSoThat(eager, 3);
  await eager.dispatch({ batchWindowMs: 0 });
  expect(eager.started[0].jobs).toHaveLength(3);
});

test('a batch short of room goes as soon as releases fill it, not when its window closes', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 10, ratePerSecond: 100, burst: 20 });
  for (let i = 0; i < 7; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/running-${i}.csv`));
  expect(await world.dispatch()).toMatchObject({ admitted: 7 });
  for (let i = 0; i < 10; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/next-${i}.csv`));
  // 0.3 s into the next run, the seven running jobs end: their vCPU is released.
  const releasedAt = world.clock.now() + 300;
  world.clock.setTimeout(() => {
    void world.ddb.send(
      new UpdateCommand({
        TableName: world.tableName,
        Key: releasedShardKeys()[0],
        UpdateExpression: 'ADD releasedVcpu :vcpu',
        ExpressionAttributeValues: { ':vcpu': 7 },
      }),
    );
  }, 300);
  const summary = await world.dispatch({ batchWindowMs: 5_000 });
  expect(world.started.map((e) => e.jobs.length)).toEqual([7, 10]);
  expect(summary).toMatchObject({ admitted: 10, executionsStarted: 1 });
  // It looked again every 100 ms: admitted within that of the release, long before the 5 s window closed; the
  // looks are one pause.
  expect(world.clock.now() - releasedAt).toBeLessThanOrEqual(200);
  expect(summary.waits).toBe(1);
});

test('a batch short of tokens goes once the bucket holds a full batch, not when its window closes: no token is lost past the burst', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 100, ratePerSecond: 10, burst: 10 });
  // Three tokens now, one more every 100 ms: the bucket holds ten 0.7 s from now, and stops filling there.
  await moto.ddb.send(
    new UpdateCommand({
      TableName: world.tableName,
      Key: POOL_KEY,
      UpdateExpression: 'SET tat = :tat',
      ExpressionAttributeValues: { ':tat': world.clock.now() + 700 },
    }),
  );
  for (let i = 0; i < 10; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/tokens-${i}.csv`));
  const startedAt = world.clock.now();
  const summary = await world.dispatch({ batchWindowMs: 5_000 });
  expect(world.started.map((e) => e.jobs.length)).toEqual([10]);
  expect(summary).toMatchObject({ admitted: 10, executionsStarted: 1, waits: 1 });
  const waited = world.clock.now() - startedAt;
  expect(waited).toBeGreaterThanOrEqual(700);
  expect(waited).toBeLessThan(1_000);
});

test('a batch as large as the budget can ever hold goes at once: no window is waited for room that cannot come', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 3, ratePerSecond: 100, burst: 20 });
  for (let i = 0; i < 10; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/small-${i}.csv`));
  const startedAt = world.clock.now();
  const summary = await world.dispatch({ batchWindowMs: 5_000 });
  expect(world.started.map((e) => e.jobs.length)).toEqual([3]);
  expect(summary).toMatchObject({ admitted: 3, waits: 0, stoppedBecause: 'no-budget' });
  expect(world.clock.now() - startedAt).toBeLessThan(1_000);
});

test('a StartExecution Step Functions refused gives back its leases and leaves the messages queued', async () => {
  const world = await intakeWorld(moto, roomy);
  for (let i = 0; i < 3; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/fail-${i}.csv`));
  world.failStartsWith('ThrottlingException');

  const summary = await world.dispatch();
  expect(summary).toMatchObject({ admitted: 0, stoppedBecause: 'start-failed' });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(0);
  expect(world.sqs.counts(world.queueUrl).total).toBe(3);

  // Once Step Functions answers again, the same messages start their jobs.
  world.failStartsWith(undefined);
  await world.advance(20_000);
  const retry = await world.dispatch();
  expect(retry.admitted).toBe(3);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);
});

test('a StartExecution that failed without saying whether it started leaves the batch admitted until Step Functions can tell', async () => {
  const world = await intakeWorld(moto, roomy);
  for (let i = 0; i < 3; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/unsure-${i}.csv`));
  world.failStartsWith('ServiceUnavailable');

  expect(await world.dispatch()).toMatchObject({ admitted: 0, stoppedBecause: 'start-failed' });
  // DescribeExecution does not show it (yet): the leases stay, the messages come back later.
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(3);
  expect(world.sqs.counts(world.queueUrl)).toMatchObject({ total: 3, visible: 0 });

  // Within the batch's start grace, later runs leave it alone (what was sent may still land, or not show yet): its
  // messages wait, held for its leases.
  world.failStartsWith(undefined);
  await world.advance(20_000);
  expect(await world.dispatch()).toMatchObject({ reclaimed: 0, admitted: 0, deferred: 3 });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(3);
  // Past it, the next run gives the batch back; the messages run.
  await world.advance(VISIBILITY_PASSED_MS);
  expect(await world.dispatch()).toMatchObject({ reclaimed: 1, admitted: 3, executionsStarted: 1 });
  expect(world.started).toHaveLength(1);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);
});

test('a batch whose dispatcher died before StartExecution is given back by the next run; its message waits meanwhile, then runs', async () => {
  const world = await intakeWorld(moto, roomy);
  for (let i = 0; i < 2; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/orphan-${i}.csv`));
  world.crashAfterNext('TransactWriteCommand');
  await expect(world.dispatch()).rejects.toMatchObject({ name: 'FunctionCrashed' });
  expect(world.started).toHaveLength(0);
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(2);

  // Its messages come back after the visibility timeout; a run before the reclaim must not delete them.
  await world.advance(VISIBILITY_PASSED_MS);
  const next = await world.dispatch();
  expect(next).toMatchObject({ reclaimed: 1, admitted: 2, executionsStarted: 1 });
  expect(world.started[0].jobs.map((j) => j.round)).toEqual([0, 0]);
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(2);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);
});

test('a redelivered copy of a job an unstarted batch holds waits, held, until the batch is given back; then one copy runs', async () => {
  const world = await intakeWorld(moto, roomy);
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/held.csv'));
  world.crashAfterNext('TransactWriteCommand');
  await expect(world.dispatch()).rejects.toMatchObject({ name: 'FunctionCrashed' });
  // A duplicate of the event arrives at once. Within the batch's start grace the next run leaves the batch alone and
  // the copy waits, held for its lease: not dropped, not run.
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/held.csv'));
  expect(await world.dispatch()).toMatchObject({ reclaimed: 0, admitted: 0, deferred: 1, duplicates: 0 });
  expect(world.started).toHaveLength(0);
  // Past the grace the crashed run's own receive is back too: the batch is given back first, one copy runs.
  await world.advance(VISIBILITY_PASSED_MS);
  expect(await world.dispatch()).toMatchObject({ reclaimed: 1, admitted: 1, duplicates: 1 });
  expect(world.started).toHaveLength(1);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);
});

test('the started-batches cache keeps only the newest names', () => {
  const started = new StartedBatches(2);
  for (const name of ['a', 'b', 'c']) started.add(name);
  started.add('b'); // seen again: newest
  started.add('d');
  expect(['a', 'b', 'c', 'd'].filter((name) => started.has(name))).toEqual(['b', 'd']);
});

test('launches are shaped by the token bucket: never more than burst + rate × elapsed', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 100, ratePerSecond: 2, burst: 3 });
  for (let i = 0; i < 20; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/rate-${i}.csv`));
  const startedAt = world.clock.seconds();
  const summary = await world.dispatch({ maxRunMs: 5_000 });
  const elapsed = world.clock.seconds() - startedAt;
  expect(summary.admitted).toBeGreaterThanOrEqual(3 + 2 * 4);
  expect(summary.admitted).toBeLessThanOrEqual(3 + 2 * Math.ceil(elapsed));
});

test('the effective budget is what the account leaves: the dispatcher admits no more than the capacity reader measured free', async () => {
  const world = await intakeWorld(moto, roomy);
  await measuredAccount(world.tableName, { freeVcpu: 3, readAt: world.clock.now(), classes: {} });
  for (let i = 0; i < 6; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/account-${i}.csv`));
  const summary = await world.dispatch();
  expect(summary).toMatchObject({ admitted: 3, stoppedBecause: 'account-full' });
});
