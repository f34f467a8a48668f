/**
 * Break 2 of explorer/reverted-fixes.md (E1): a counter repair that took an admission committed during the janitor's
 * sweep for drift would "repair" it away, and the dispatcher it then woke would admit past the budget. Here the dispatcher
 * admits a batch just before each of the sweep's calls in turn: whatever the point, the counters keep agreeing with
 * the leases, and nothing is admitted past the budget after the sweep's wake-up.
 */
import { inUseVcpu, readPool } from '../../functions/limiter';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { intakeWorld, objectCreated } from '../support/intake-world';
import { beforeEachCall, leasedVcpu } from './support';

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

test('an admission before any call of a janitor sweep is never repaired away, and the budget holds after it', async () => {
  const points = await beforeEachCall(async (k) => {
    const world = await intakeWorld(moto, { budgetVcpu: 4, ratePerSecond: 19, burst: 20 });
    for (const key of ['a1', 'a2']) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/${key}.csv`));
    expect((await world.dispatch()).admitted).toBe(2);

    let injected = false;
    world.beforeCall(k, async () => {
      injected = true;
      for (const key of ['b1', 'b2']) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/${key}.csv`));
      expect((await world.dispatchNow()).admitted).toBe(2);
    });
    const sweep = await world.janitor();
    if (!injected) return false;

    // Every lease is held by a running execution; the counters say exactly that, whatever the sweep measured.
    expect(await leasedVcpu(moto, world.tableName)).toBe(4);
    expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(4);
    expect(sweep.repaired).toBe(false);
    // Its wake-up (if any) finds the pool full.
    for (const key of ['c1', 'c2']) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/${key}.csv`));
    expect((await world.dispatch({}, {})).admitted).toBe(0);
    expect(await leasedVcpu(moto, world.tableName)).toBe(4);
    return true;
  });
  expect(points).toBeGreaterThanOrEqual(5); // POOL, the records, the running executions, the shards, the leases
});
