import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { configurePool } from '../../functions/configure-pool';
import {
  admissionCommand,
  configureCommand,
  POOL_KEY,
  planAdmission,
  readPool,
  releaseCommand,
  tokensAvailable,
  tryUpdate,
  type PoolState,
} from '../../functions/pool';
import { poolItemLoad } from '../../functions/pool-item';
import { startDynalite, type LocalDynamo } from '../support/dynalite';

let dynamo: LocalDynamo;
beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(() => dynamo.close());

async function newPool(budgetVcpu: number, ratePerSecond: number, burst: number) {
  const table = await dynamo.createTable();
  await dynamo.ddb.send(new UpdateCommand(configureCommand(table, { budgetVcpu, ratePerSecond, burst }, 0)));
  return table;
}

/** One admission attempt as a racing dispatcher would make it: read, plan, one conditional write. */
async function tryAdmit(table: string, jobId: string, vcpu: number, now: number, leaseMs = 60_000): Promise<boolean> {
  const pool = await readPool(dynamo.ddb, table);
  if (planAdmission(pool, now, vcpu, 1).count === 0) return false;
  return tryUpdate(dynamo.ddb, admissionCommand(table, pool, now, [{ jobId, vcpu }], `exec-${jobId}`, leaseMs));
}

describe('the token bucket (GCRA) as pure arithmetic', () => {
  const base: PoolState = { budgetVcpu: 100, inUseVcpu: 0, ratePerSecond: 10, burst: 5, tat: 0, leases: {} };
  test('a full bucket holds `burst` tokens and refills at `rate`', () => {
    expect(tokensAvailable(base, 1_000)).toBe(5);
    const spent = { ...base, tat: 1_000 + 5 * 100 }; // five spent at t=1000
    expect(tokensAvailable(spent, 1_000)).toBe(0);
    expect(tokensAvailable(spent, 1_099)).toBe(0);
    expect(tokensAvailable(spent, 1_100)).toBe(1);
    expect(tokensAvailable(spent, 1_350)).toBe(3);
    expect(tokensAvailable(spent, 9_000)).toBe(5);
  });
  test('a plan says what limits it and when the next token comes', () => {
    expect(planAdmission({ ...base, inUseVcpu: 99 }, 1_000, 1, 10)).toMatchObject({ count: 1, limitedBy: 'budget' });
    const drained = { ...base, tat: 1_500 };
    expect(planAdmission(drained, 1_000, 1, 3)).toEqual({ count: 0, limitedBy: 'tokens', nextTokenAt: 1_100 });
    expect(planAdmission(base, 1_000, 1, 3)).toMatchObject({ count: 3, limitedBy: 'demand' });
    expect(planAdmission({ ...base, budgetVcpu: 0 }, 1_000, 1, 3)).toMatchObject({ count: 0, limitedBy: 'budget' });
  });
});

describe('admission against dynalite', () => {
  test('200 concurrent admissions admit exactly what fits the budget, weighted by vCPU', async () => {
    const table = await newPool(50, 19, 100); // tokens plentiful: the budget is the limit
    const sizes = Array.from({ length: 200 }, (_, i) => [0.25, 0.5, 1, 2][i % 4]);
    // Every racer retries on a failed condition until the pool says there is no room left for it.
    const outcomes = await Promise.all(
      sizes.map(async (vcpu, i) => {
        for (let attempt = 0; attempt < 50; attempt++) {
          const pool = await readPool(dynamo.ddb, table);
          if (planAdmission(pool, 1_000, vcpu, 1).count === 0) return false;
          if (await tryUpdate(dynamo.ddb, admissionCommand(table, pool, 1_000, [{ jobId: `job-${i}`, vcpu }], `exec-${i}`, 60_000))) return true;
        }
        return false;
      }),
    );
    const pool = await readPool(dynamo.ddb, table);
    const admittedVcpu = sizes.filter((_, i) => outcomes[i]).reduce((a, b) => a + b, 0);
    expect(pool.inUseVcpu).toBe(admittedVcpu);
    expect(Object.keys(pool.leases)).toHaveLength(outcomes.filter(Boolean).length);
    expect(admittedVcpu).toBeLessThanOrEqual(50);
    // Filled to the brim: no job that was refused would have fit (smallest is 0.25 vCPU).
    expect(50 - admittedVcpu).toBeLessThan(0.25);
  });

  test('a stale read cannot overshoot: the condition, not the reader, decides', async () => {
    const table = await newPool(2, 10, 10);
    const stale = await readPool(dynamo.ddb, table); // both racers plan from the same empty pool
    const first = await tryUpdate(dynamo.ddb, admissionCommand(table, stale, 1_000, [{ jobId: 'a', vcpu: 2 }], 'exec-a', 60_000));
    const second = await tryUpdate(dynamo.ddb, admissionCommand(table, stale, 1_000, [{ jobId: 'b', vcpu: 2 }], 'exec-b', 60_000));
    expect([first, second]).toEqual([true, false]);
    expect((await readPool(dynamo.ddb, table)).inUseVcpu).toBe(2);
  });

  test('the token bucket never lets more than its rate through', async () => {
    const table = await newPool(1000, 5, 5);
    const admittedAt: number[] = [];
    // 40 jobs offered every 50 ms of (simulated) time for 10 s.
    for (let now = 0; now <= 10_000; now += 50) {
      const results = await Promise.all(Array.from({ length: 4 }, (_, i) => tryAdmit(table, `t${now}-${i}`, 0.25, now)));
      results.forEach((ok) => ok && admittedAt.push(now));
    }
    // At most burst + rate·t in any window starting from a full bucket, and the long-run rate holds.
    expect(admittedAt.length).toBeLessThanOrEqual(5 + 5 * 10);
    expect(admittedAt.length).toBeGreaterThanOrEqual(5 * 10);
    for (let start = 0; start <= 9_000; start += 50) {
      const inWindow = admittedAt.filter((t) => t >= start && t < start + 1_000).length;
      expect(inWindow).toBeLessThanOrEqual(5 + 5);
    }
    const secondHalf = admittedAt.filter((t) => t >= 5_000 && t < 10_000).length;
    expect(secondHalf).toBeLessThanOrEqual(5 * 5 + 1);
  });

  test('a lease cannot be taken twice, and releasing twice is harmless', async () => {
    const table = await newPool(10, 10, 10);
    expect(await tryAdmit(table, 'same', 1, 1_000)).toBe(true);
    expect(await tryAdmit(table, 'same', 1, 2_000)).toBe(false);
    const release = releaseCommand(table, [{ jobId: 'same', vcpu: 1, execution: 'exec-same' }], 3_000);
    expect(await tryUpdate(dynamo.ddb, release)).toBe(true);
    expect(await tryUpdate(dynamo.ddb, release)).toBe(false);
    const pool = await readPool(dynamo.ddb, table);
    expect(pool.inUseVcpu).toBe(0);
    expect(pool.leases).toEqual({});
  });

  test("a release by the wrong execution leaves another execution's lease alone", async () => {
    const table = await newPool(10, 10, 10);
    expect(await tryAdmit(table, 'job', 1, 1_000)).toBe(true);
    expect(await tryUpdate(dynamo.ddb, releaseCommand(table, [{ jobId: 'job', vcpu: 1, execution: 'someone-else' }], 2_000))).toBe(false);
    expect((await readPool(dynamo.ddb, table)).inUseVcpu).toBe(1);
  });

  test('budget 0 pauses admission; reconfiguring keeps the leases held', async () => {
    const table = await newPool(4, 10, 10);
    expect(await tryAdmit(table, 'before', 1, 1_000)).toBe(true);
    await dynamo.ddb.send(new UpdateCommand(configureCommand(table, { budgetVcpu: 0, ratePerSecond: 10, burst: 10 }, 2_000)));
    expect(await tryAdmit(table, 'paused', 1, 3_000)).toBe(false);
    const paused = await readPool(dynamo.ddb, table);
    expect(paused.leases.before).toBeDefined();
    expect(paused.inUseVcpu).toBe(1);
    // A plan made before the change cannot be used after it.
    const before = { ...paused, budgetVcpu: 4 };
    expect(await tryUpdate(dynamo.ddb, admissionCommand(table, before, 4_000, [{ jobId: 'x', vcpu: 1 }], 'exec-x', 1_000))).toBe(false);
  });

  test('a batch is admitted all or nothing in one write', async () => {
    const table = await newPool(3, 10, 10);
    const pool = await readPool(dynamo.ddb, table);
    const four = ['a', 'b', 'c', 'd'].map((jobId) => ({ jobId, vcpu: 1 }));
    expect(await tryUpdate(dynamo.ddb, admissionCommand(table, pool, 1_000, four, 'batch', 1_000))).toBe(false);
    expect(await tryUpdate(dynamo.ddb, admissionCommand(table, pool, 1_000, four.slice(0, 3), 'batch', 1_000))).toBe(true);
    expect(Object.keys((await readPool(dynamo.ddb, table)).leases).sort()).toEqual(['a', 'b', 'c']);
  });
});

describe('the pool item stays within what one DynamoDB item takes', () => {
  test('leases of the largest shape cost no more than LEASE_MAX_BYTES each', async () => {
    const leases = 100;
    const taskVcpu = 0.25;
    const table = await newPool(leases * taskVcpu, 19, 20);
    // The longest names the pipeline writes: 32-hex job ids, "batch10-" + 40 hex, 13-digit epoch milliseconds.
    const epoch = Date.UTC(2030, 0, 1);
    for (let batch = 0; batch < leases / 20; batch++) {
      const now = epoch + batch * 2_000;
      const pool = await readPool(dynamo.ddb, table);
      const jobs = Array.from({ length: 20 }, (_, i) => ({ jobId: (batch * 20 + i).toString(16).padStart(32, 'f'), vcpu: taskVcpu }));
      const execution = `batch10-${String(batch).padStart(40, 'e')}`;
      expect(await tryUpdate(dynamo.ddb, admissionCommand(table, pool, now, jobs, execution, 86_400_000))).toBe(true);
    }
    const full = await readPool(dynamo.ddb, table);
    expect(Object.keys(full.leases)).toHaveLength(leases);

    // One more write reports what it cost: one unit per KB of the larger of the item before and after.
    const { ConsumedCapacity } = await dynamo.ddb.send(
      new UpdateCommand({ ...configureCommand(table, { budgetVcpu: 25, ratePerSecond: 19, burst: 20 }, epoch), ReturnConsumedCapacity: 'TOTAL' }),
    );
    const estimate = poolItemLoad(leases * taskVcpu, taskVcpu, 19);
    expect(estimate.maxLeases).toBe(leases);
    expect(ConsumedCapacity?.CapacityUnits).toBeLessThanOrEqual(Math.ceil(estimate.maxItemBytes / 1024));
    // …and the estimate is not loose enough to reject pools that would work.
    expect(ConsumedCapacity?.CapacityUnits).toBeGreaterThanOrEqual(0.8 * Math.ceil(estimate.maxItemBytes / 1024));
  });
});

describe('configure-pool', () => {
  test('writes settings the pool item can hold, and refuses a budget it cannot, naming the limit', async () => {
    const table = await dynamo.createTable();
    const settings = { tableName: table, taskVcpu: 0.25 };
    await expect(configurePool(dynamo.ddb, settings, { budgetVcpu: 1000, ratePerSecond: 10, burst: 20 }, 0)).rejects.toThrow(
      /invalid pool settings: budgetVcpu: 4000 leases .* over DynamoDB's 400 KB item limit/,
    );
    await expect(configurePool(dynamo.ddb, settings, { budgetVcpu: 20, ratePerSecond: 25, burst: 20 }, 0)).rejects.toThrow(/ratePerSecond must stay below/);
    expect((await dynamo.ddb.send(new GetCommand({ TableName: table, Key: POOL_KEY }))).Item).toBeUndefined();
    await configurePool(dynamo.ddb, settings, { budgetVcpu: 20, ratePerSecond: 10, burst: 20 }, 0);
    expect(await readPool(dynamo.ddb, table)).toMatchObject({ budgetVcpu: 20, ratePerSecond: 10, burst: 20, inUseVcpu: 0 });
  });
});
