import { GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { admitBatch } from '../../functions/admission';
import { readBatchRecord, scanBatchRecords } from '../../functions/batches';
import { configurePool } from '../../functions/configure-pool';
import { jobIdOf, type Job } from '../../functions/jobs';
import { isRetryableCancellation } from '../../functions/dynamo-errors';
import { ledgerKey, releaseLease } from '../../functions/ledger';
import {
  batchReleaseShards,
  configureCommand,
  effectiveBudget,
  inUseVcpu,
  planAdmission,
  POOL_KEY,
  readPool,
  RELEASE_SHARDS,
  releasedShardKey,
  releasedShardKeys,
  tokensAvailable,
  tokensReadyAt,
  type PoolState,
  ACCOUNT_READING_MAX_AGE_MS,
  HOLD_EXPIRES_MS,
} from '../../functions/limiter';
import { INLINE_MAP_MAX_CONCURRENCY } from '../../environments/fargate';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { clockAt } from '../support/clocks';

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

const STATE_MACHINE = 'arn:aws:states:eu-west-1:111111111111:stateMachine:sluice-test-jobs';

function job(i: number): Job {
  const key = `incoming/limiter-${i}.csv`;
  return { jobId: jobIdOf('bucket', key, `v${i}`, ''), bucket: 'bucket', key, versionId: `v${i}`, sequencer: '', round: 0, failedRuns: 0 };
}

async function newPool(budgetVcpu: number, ratePerSecond: number, burst: number) {
  const tables = await moto.createTables();
  await moto.ddb.send(new UpdateCommand(configureCommand(tables.tableName, { budgetVcpu, ratePerSecond, burst }, 0)));
  return { ...tables, stateMachineArn: STATE_MACHINE };
}

const base: PoolState = {
  budgetVcpu: 100,
  ratePerSecond: 10,
  burst: 5,
  admittedVcpu: 0,
  admittedByRoute: {},
  routeCaps: {},
  releasedByRoute: {},
  admittedByClass: {},
  batchesAdmitted: 0,
  releasedVcpu: 0,
  releasedByClass: {},
  classShortAt: {},
  tat: 0,
};

describe('the token bucket (GCRA) and the plan, as pure arithmetic', () => {
  test('a full bucket holds `burst` tokens and refills at `rate`', () => {
    expect(tokensAvailable(base, 1_000)).toBe(5);
    const spent = { ...base, tat: 1_000 + 5 * 100 }; // five spent at t=1000
    expect(tokensAvailable(spent, 1_000)).toBe(0);
    expect(tokensAvailable(spent, 1_099)).toBe(0);
    expect(tokensAvailable(spent, 1_100)).toBe(1);
    expect(tokensAvailable(spent, 1_350)).toBe(3);
    expect(tokensAvailable(spent, 9_000)).toBe(5);
  });

  test('the bucket holds n tokens from the moment tokensReadyAt says, not a millisecond before', () => {
    const spent = { ...base, tat: 1_000 + 5 * 100 }; // five spent at t=1000: one more every 100 ms
    for (const n of [1, 3, 5]) {
      const at = tokensReadyAt(spent, n, 1_000);
      expect(at).toBe(1_000 + n * 100);
      expect(tokensAvailable(spent, at)).toBe(n);
      expect(tokensAvailable(spent, at - 1)).toBe(n - 1);
    }
    // Tokens already there are ready now; a full bucket has every one of them.
    expect(tokensReadyAt(spent, 2, 1_250)).toBe(1_250);
    expect(tokensReadyAt(base, 5, 1_000)).toBe(1_000);
  });

  test('in use is admitted − released; a plan says what limits it and when the next token comes', () => {
    expect(inUseVcpu({ admittedVcpu: 130, releasedVcpu: 31 })).toBe(99);
    expect(planAdmission({ ...base, admittedVcpu: 130, releasedVcpu: 31 }, 1_000, 1, 10)).toMatchObject({ count: 1, limitedBy: 'budget' });
    expect(planAdmission({ ...base, tat: 1_500 }, 1_000, 1, 3)).toMatchObject({ count: 0, limitedBy: 'tokens', nextTokenAt: 1_100 });
    expect(planAdmission(base, 1_000, 1, 3)).toMatchObject({ count: 3, limitedBy: 'demand' });
    expect(planAdmission({ ...base, budgetVcpu: 0 }, 1_000, 1, 3)).toMatchObject({ count: 0, limitedBy: 'budget' });
  });

  test('the account decides when it has less to give than the budget', () => {
    const account = (freeVcpu: number) => ({ freeVcpu, readAt: 1, classes: {} });
    expect(effectiveBudget({ ...base, account: account(70) }, 1_000)).toEqual({ vcpu: 70, limitedBy: 'account' });
    expect(effectiveBudget({ ...base, account: account(500) }, 1_000)).toEqual({ vcpu: 100, limitedBy: 'budget' });
    const full = { ...base, admittedVcpu: 70, account: account(70), burst: 50 };
    expect(planAdmission(full, 1_000, 1, 10)).toMatchObject({ count: 0, limitedBy: 'account', effectiveVcpu: 70 });
  });

  test('after a vCPU-limit error nothing new is admitted until the account is measured again', () => {
    const at = Date.parse('2026-12-01T10:00:00.000Z');
    const held = { ...base, admittedVcpu: 40, burst: 50, capacityLimitAt: '2026-12-01T10:00:00.000Z' };
    expect(effectiveBudget(held, at + 1_000)).toEqual({ vcpu: 40, limitedBy: 'account' });
    expect(planAdmission(held, at + 1_000, 1, 10)).toMatchObject({ count: 0, limitedBy: 'account' });
  });

  test('a hold the capacity reader has not lifted, and a reading it has not renewed, stop counting after 5 minutes', () => {
    const at = Date.parse('2026-12-01T10:00:00.000Z');
    const held = { ...base, admittedVcpu: 40, burst: 50, capacityLimitAt: '2026-12-01T10:00:00.000Z' };
    expect(effectiveBudget(held, at + HOLD_EXPIRES_MS - 1)).toEqual({ vcpu: 40, limitedBy: 'account' });
    expect(effectiveBudget(held, at + HOLD_EXPIRES_MS)).toEqual({ vcpu: 100, limitedBy: 'budget' });
    const measured = { ...base, account: { freeVcpu: 70, readAt: at, classes: {} } };
    expect(effectiveBudget(measured, at + ACCOUNT_READING_MAX_AGE_MS - 1)).toEqual({ vcpu: 70, limitedBy: 'account' });
    expect(effectiveBudget(measured, at + ACCOUNT_READING_MAX_AGE_MS)).toEqual({ vcpu: 100, limitedBy: 'budget' });
  });

  test('a transaction cancelled for a conflict or a throttled partition is worth another try; one whose condition failed is not', () => {
    const cancelled = (...codes: string[]) =>
      Object.assign(new Error('cancelled'), { name: 'TransactionCanceledException', CancellationReasons: codes.map((Code) => ({ Code })) });
    expect(isRetryableCancellation(cancelled('TransactionConflict', 'None'))).toBe(true);
    expect(isRetryableCancellation(cancelled('None', 'ThrottlingError'))).toBe(true);
    expect(isRetryableCancellation(cancelled('ProvisionedThroughputExceeded'))).toBe(true);
    expect(isRetryableCancellation(cancelled('TransactionConflict', 'ConditionalCheckFailed'))).toBe(false);
    expect(isRetryableCancellation(cancelled('ValidationError'))).toBe(false);
    expect(isRetryableCancellation(new Error('not a cancellation'))).toBe(false);
  });

  test('jobs admitted one after the other release to different shards, whatever the batch size and task vCPU', () => {
    for (const [taskVcpu, batchSize] of [
      [1, 10],
      [0.25, 40],
      [4, 7],
      [0.5, 1],
    ]) {
      let pool = { admittedVcpu: 3 * taskVcpu }; // a pool that has admitted before
      const shards: string[] = [];
      while (shards.length < RELEASE_SHARDS) {
        const jobs = Math.min(batchSize, RELEASE_SHARDS - shards.length);
        pool = { admittedVcpu: pool.admittedVcpu + jobs * taskVcpu };
        shards.push(...batchReleaseShards(pool, taskVcpu, jobs));
      }
      expect(new Set(shards).size).toBe(RELEASE_SHARDS);
      const summed = new Set(releasedShardKeys().map((k) => k.pk));
      expect(shards.every((s) => summed.has(s))).toBe(true);
    }
    // The largest batch the schema allows never shares a shard.
    expect(RELEASE_SHARDS).toBeGreaterThanOrEqual(INLINE_MAP_MAX_CONCURRENCY);
    const largest = batchReleaseShards({ admittedVcpu: 1000 }, 1, INLINE_MAP_MAX_CONCURRENCY);
    expect(new Set(largest).size).toBe(INLINE_MAP_MAX_CONCURRENCY);
  });

  test('a job always releases to the same one of the shards', () => {
    const shards = new Set(Array.from({ length: 500 }, (_, i) => releasedShardKey(job(i).jobId).pk));
    expect(shards.size).toBe(RELEASE_SHARDS);
    expect(releasedShardKey(job(1).jobId)).toEqual(releasedShardKey(job(1).jobId));
  });
});

describe('admission against moto (TransactWriteItems)', () => {
  test('60 concurrent single-job admissions admit exactly what fits the budget, weighted by vCPU', async () => {
    const target = await newPool(15, 19, 100_000);
    const sizes = Array.from({ length: 60 }, (_, i) => [0.25, 0.5, 1, 2][i % 4]);
    // Every racer re-reads and retries when its premise changed, until the pool says there is no room for it;
    // it backs off with jitter between tries, as a client of a contended item should. (One dispatcher admits at a
    // time; racers stand for overlapping ones. Each admission is conditioned on the pool's batch count, so of racers
    // planned on one read one goes through and the rest read again: n racers cost ~n²/2 tries.)
    const outcomes = await Promise.all(
      sizes.map(async (vcpu, i) => {
        for (let attempt = 0; attempt < 400; attempt++) {
          if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * Math.min(attempt, 20)));
          const pool = await readPool(moto.ddb, target.tableName);
          if (planAdmission(pool, 1_000, vcpu, 1).count === 0) return false;
          const result = await admitBatch(moto.ddb, target, { pool, jobs: [job(i)], batch: `batch-${i}`, taskVcpu: vcpu, leaseMs: 60_000, now: 1_000 });
          if (result.kind === 'admitted') return true;
          if (result.kind === 'refused') throw new Error('no job is admitted twice here');
        }
        throw new Error(`racer ${i} never got an answer`);
      }),
    );
    const pool = await readPool(moto.ddb, target.tableName);
    const admittedVcpu = sizes.filter((_, i) => outcomes[i]).reduce((a, b) => a + b, 0);
    expect(pool.admittedVcpu).toBe(admittedVcpu);
    expect(inUseVcpu(pool)).toBeLessThanOrEqual(15);
    expect(pool.batchesAdmitted).toBe(outcomes.filter(Boolean).length);
    // Filled to the brim: no job that was refused would have fit (the smallest is 0.25 vCPU).
    expect(15 - admittedVcpu).toBeLessThan(0.25);
    // Each admitted job holds its lease on its row, and its batch has a record (one scan each: moto answers
    // requests one at a time, and 400 reads would take longer than the race).
    const { Items: rows = [] } = await moto.ddb.send(new ScanCommand({ TableName: target.tableName }));
    const leased = new Set(rows.filter((row) => row.lease).map((row) => row.pk));
    const recorded = new Set((await scanBatchRecords(moto.ddb, target.batchesTableName)).map((record) => record.execution));
    for (const [i, admitted] of outcomes.entries()) {
      expect(leased.has(ledgerKey(job(i).jobId).pk)).toBe(admitted);
      expect(recorded.has(`batch-${i}`)).toBe(admitted);
    }
  }, 180_000);

  test('a stale read cannot overshoot: the premise, not the reader, decides', async () => {
    const target = await newPool(2, 19, 100);
    const stale = await readPool(moto.ddb, target.tableName);
    expect(
      await admitBatch(moto.ddb, target, { pool: stale, jobs: [job(1), job(2)], batch: 'batch-a', taskVcpu: 1, leaseMs: 60_000, now: 1_000 }),
    ).toMatchObject({ kind: 'admitted' });
    // Planned on the same read, a second batch would overshoot: its premise (admitted = 0) no longer holds.
    expect(await admitBatch(moto.ddb, target, { pool: stale, jobs: [job(3)], batch: 'batch-b', taskVcpu: 1, leaseMs: 60_000, now: 1_000 })).toEqual({
      kind: 'stale',
    });
    expect(inUseVcpu(await readPool(moto.ddb, target.tableName))).toBe(2);
  });

  test('the token bucket never lets more than its rate through', async () => {
    const target = await newPool(1000, 5, 5); // 5 tokens, refilling 5 per second
    let admitted = 0;
    for (let t = 0; t <= 2_000; t += 50) {
      const pool = await readPool(moto.ddb, target.tableName);
      const n = planAdmission(pool, 10_000 + t, 1, 10).count;
      if (n === 0) continue;
      const jobs = Array.from({ length: n }, (_, k) => job(10_000 + admitted + k));
      const result = await admitBatch(moto.ddb, target, { pool, jobs, batch: `tb-${t}`, taskVcpu: 1, leaseMs: 60_000, now: 10_000 + t });
      expect(result.kind).toBe('admitted');
      admitted += n;
    }
    // A full bucket of 5, then 5 a second for 2 seconds.
    expect(admitted).toBe(5 + 10);
  });

  test('a job that holds a lease refuses the whole batch, named, with its row; nothing of the batch is written', async () => {
    const target = await newPool(10, 19, 100);
    const pool = await readPool(moto.ddb, target.tableName);
    const first = await admitBatch(moto.ddb, target, { pool, jobs: [job(1)], batch: 'batch-1', taskVcpu: 1, leaseMs: 60_000, now: 1_000 });
    expect(first.kind).toBe('admitted');
    const after = await readPool(moto.ddb, target.tableName);
    const second = await admitBatch(moto.ddb, target, {
      pool: after,
      jobs: [job(2), job(1), job(3)],
      batch: 'batch-2',
      taskVcpu: 1,
      leaseMs: 60_000,
      now: 2_000,
    });
    expect(second).toEqual({
      kind: 'refused',
      refused: [{ index: 1, row: expect.objectContaining({ status: 'running', lease: expect.objectContaining({ execution: 'batch-1' }) }) }],
    });
    expect((await readPool(moto.ddb, target.tableName)).admittedVcpu).toBe(1);
    expect(await readBatchRecord(moto.ddb, target.batchesTableName, 'batch-2')).toBeUndefined();
    const { Item } = await moto.ddb.send(new GetCommand({ TableName: target.tableName, Key: ledgerKey(job(2).jobId) }));
    expect(Item).toBeUndefined();
  });

  test('a job with a result is not admitted again (a redelivered event starts nothing)', async () => {
    const target = await newPool(10, 19, 100);
    const pool = await readPool(moto.ddb, target.tableName);
    const admitted = await admitBatch(moto.ddb, target, { pool, jobs: [job(1)], batch: 'batch-1', taskVcpu: 1, leaseMs: 60_000, now: 1_000 });
    if (admitted.kind !== 'admitted') throw new Error('expected the first admission');
    await moto.ddb.send(
      new UpdateCommand({
        TableName: target.tableName,
        Key: ledgerKey(job(1).jobId),
        UpdateExpression: 'SET #s = :s REMOVE #l',
        ExpressionAttributeNames: { '#s': 'status', '#l': 'lease' },
        ExpressionAttributeValues: { ':s': 'succeeded' },
      }),
    );
    const again = await admitBatch(moto.ddb, target, {
      pool: await readPool(moto.ddb, target.tableName),
      jobs: [{ ...job(1), round: 0 }],
      batch: 'batch-again',
      taskVcpu: 1,
      leaseMs: 60_000,
      now: 2_000,
    });
    expect(again).toMatchObject({ kind: 'refused', refused: [{ index: 0, row: expect.objectContaining({ status: 'succeeded' }) }] });
  });
});

describe('release against moto: the lease and a released counter, one transaction', () => {
  test('gives the vCPU back once; a second release, or a release by another batch, changes nothing', async () => {
    const target = await newPool(10, 19, 100);
    const admitted = await admitBatch(moto.ddb, target, {
      pool: await readPool(moto.ddb, target.tableName),
      jobs: [job(1), job(2)],
      batch: 'batch-1',
      taskVcpu: 1,
      leaseMs: 60_000,
      now: 1_000,
    });
    if (admitted.kind !== 'admitted') throw new Error('expected an admission');
    expect(inUseVcpu(await readPool(moto.ddb, target.tableName))).toBe(2);
    expect(
      await releaseLease(moto.ddb, target.tableName, { jobId: job(1).jobId, lease: admitted.lease, outcome: { status: 'unchanged' } }, clockAt(2_000)),
    ).toBe(true);
    expect(
      await releaseLease(moto.ddb, target.tableName, { jobId: job(1).jobId, lease: admitted.lease, outcome: { status: 'unchanged' } }, clockAt(2_000)),
    ).toBe(false);
    expect(
      await releaseLease(
        moto.ddb,
        target.tableName,
        { jobId: job(2).jobId, lease: { ...admitted.lease, execution: 'another' }, outcome: { status: 'unchanged' } },
        clockAt(2_000),
      ),
    ).toBe(false);
    const pool = await readPool(moto.ddb, target.tableName);
    expect(pool).toMatchObject({ admittedVcpu: 2, releasedVcpu: 1 });
    expect(inUseVcpu(pool)).toBe(1);
  });

  test('a release that re-queues or fails the job says so on its row', async () => {
    const target = await newPool(10, 19, 100);
    const admitted = await admitBatch(moto.ddb, target, {
      pool: await readPool(moto.ddb, target.tableName),
      jobs: [job(1), job(2)],
      batch: 'batch-1',
      taskVcpu: 1,
      leaseMs: 60_000,
      now: 1_000,
    });
    if (admitted.kind !== 'admitted') throw new Error('expected an admission');
    await releaseLease(
      moto.ddb,
      target.tableName,
      { jobId: job(1).jobId, lease: admitted.lease, outcome: { status: 'queued', reason: 'aborted' } },
      clockAt(2_000),
    );
    await releaseLease(
      moto.ddb,
      target.tableName,
      { jobId: job(2).jobId, lease: admitted.lease, outcome: { status: 'failed', error: 'ExecutionFAILED', cause: 'twice' } },
      clockAt(2_000),
    );
    const row = async (j: Job) => (await moto.ddb.send(new GetCommand({ TableName: target.tableName, Key: ledgerKey(j.jobId) }))).Item!;
    expect(await row(job(1))).toMatchObject({ status: 'queued', lastError: 'aborted' });
    expect(await row(job(1))).not.toHaveProperty('lease');
    expect(await row(job(2))).toMatchObject({ status: 'failed', error: 'ExecutionFAILED', cause: 'twice' });
  });
});

describe('configure-pool', () => {
  const settings = (tableName: string) => ({ tableName, taskVcpu: 1, jobsPerExecution: 10, accountVcpuQuota: 120 });

  test('sets budget, rate and burst, and keeps the counters it finds', async () => {
    const target = await newPool(10, 19, 100);
    await admitBatch(moto.ddb, target, {
      pool: await readPool(moto.ddb, target.tableName),
      jobs: [job(1)],
      batch: 'batch-1',
      taskVcpu: 1,
      leaseMs: 60_000,
      now: 1_000,
    });
    await configurePool(moto.ddb, { settings: settings(target.tableName), input: { budgetVcpu: 0, ratePerSecond: 5, burst: 10 }, now: 2_000 });
    const { Item } = await moto.ddb.send(new GetCommand({ TableName: target.tableName, Key: POOL_KEY }));
    expect(Item).toMatchObject({ budgetVcpu: 0, ratePerSecond: 5, burst: 10, admittedVcpu: 1 });
  });

  test.each([
    [{ budgetVcpu: -1, ratePerSecond: 5, burst: 10 }, /budgetVcpu: budgetVcpu must be 0 \(paused\) or more/],
    [{ budgetVcpu: 10, ratePerSecond: 20, burst: 10 }, /ratePerSecond: ratePerSecond must stay below Fargate's 20 launches\/s/],
    [{ budgetVcpu: 200, ratePerSecond: 5, burst: 10 }, /must not exceed the stage's accountVcpuQuota \(120 vCPU\)/],
    [{ budgetVcpu: 10, ratePerSecond: 5 }, /burst: /],
    ['not an object', /input: /],
  ])('refuses %j, naming what is wrong, and changes nothing', async (input, message) => {
    const target = await newPool(10, 19, 100);
    await expect(configurePool(moto.ddb, { settings: settings(target.tableName), input, now: 2_000 })).rejects.toThrow(message);
    expect((await readPool(moto.ddb, target.tableName)).budgetVcpu).toBe(10);
  });
});
