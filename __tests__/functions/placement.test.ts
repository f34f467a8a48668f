import { planAdmission, type PoolState } from '../../functions/limiter';
import { byClassOf, CLASS_SHORT_MS, ownByClass, placeBatch, roomiestClassSlots, shortAtOf } from '../../functions/placement';

const readings = (onDemandOthers: number, spotOthers: number, quota = 120) => ({
  FARGATE: { quotaVcpu: quota, othersVcpu: onDemandOthers },
  FARGATE_SPOT: { quotaVcpu: quota, othersVcpu: spotOthers },
});

describe('placing a batch in a capacity class', () => {
  test('with room everywhere the weights decide: the class furthest below its share of the stage’s use', () => {
    const weights = { FARGATE: 1, FARGATE_SPOT: 3 };
    expect(placeBatch({ weights, own: {}, readings: readings(0, 0), taskVcpu: 1, count: 10 }).capacityClass).toBe('FARGATE_SPOT');
    // Spot already holds 30 of the stage's 30: On-Demand is a quarter below its share.
    expect(placeBatch({ weights, own: { FARGATE_SPOT: 30 }, readings: readings(0, 0), taskVcpu: 1, count: 10 })).toEqual({
      capacityClass: 'FARGATE',
      count: 10,
    });
    // Without a reading every class counts as roomy.
    expect(placeBatch({ weights, own: { FARGATE_SPOT: 30 }, readings: undefined, taskVcpu: 1, count: 10 }).capacityClass).toBe('FARGATE');
  });

  test('a class others have filled is passed over, whatever the weights', () => {
    // On-Demand is where the weights point, but others hold 115 of its 120.
    expect(placeBatch({ weights: { FARGATE: 1, FARGATE_SPOT: 1 }, own: { FARGATE_SPOT: 50 }, readings: readings(115, 0), taskVcpu: 1, count: 10 })).toEqual({
      capacityClass: 'FARGATE_SPOT',
      count: 10,
    });
  });

  test('the stage’s own use counts against the class’s room', () => {
    // Spot: 120 − 0 others − 115 own leaves 5; On-Demand: 120 − 112 leaves 8. Neither takes 10: the roomier takes 8.
    expect(placeBatch({ weights: { FARGATE: 1, FARGATE_SPOT: 1 }, own: { FARGATE_SPOT: 115 }, readings: readings(112, 0), taskVcpu: 1, count: 10 })).toEqual({
      capacityClass: 'FARGATE',
      count: 8,
    });
  });

  test('a class of weight 0 is never used, even with room', () => {
    expect(placeBatch({ weights: { FARGATE: 0, FARGATE_SPOT: 1 }, own: {}, readings: readings(0, 118), taskVcpu: 1, count: 10 })).toEqual({
      capacityClass: 'FARGATE_SPOT',
      count: 2,
    });
  });

  test('fractional tasks fit by whole tasks', () => {
    expect(
      placeBatch({ weights: { FARGATE_SPOT: 1 }, own: {}, readings: { FARGATE_SPOT: { quotaVcpu: 6, othersVcpu: 4.5 } }, taskVcpu: 0.5, count: 10 }),
    ).toEqual({
      capacityClass: 'FARGATE_SPOT',
      count: 3,
    });
  });

  test('own use per class is admitted − released, from the counters’ attributes', () => {
    const admittedByClass = byClassOf({ 'admittedVcpu@FARGATE': 12, 'admittedVcpu@FARGATE_SPOT': 40, admittedVcpu: 52 }, 'admittedVcpu@');
    expect(admittedByClass).toEqual({ FARGATE: 12, FARGATE_SPOT: 40 });
    expect(ownByClass({ admittedByClass, releasedByClass: { FARGATE_SPOT: 15 } })).toEqual({ FARGATE: 12, FARGATE_SPOT: 25 });
  });
});

describe('a class short of Fargate capacity', () => {
  const weights = { FARGATE: 1, FARGATE_SPOT: 3 };
  const now = 1_000_000;

  test('is passed over for a while, though the weights point at it and the quota has room', () => {
    // Spot returned tasks for lack of capacity a minute ago: its own use is 0, so by the weights it would take every batch.
    const view = { weights, own: {}, readings: readings(0, 0), taskVcpu: 1, shortAt: { FARGATE_SPOT: now - 60_000 }, now };
    expect(placeBatch({ ...view, count: 10 })).toEqual({ capacityClass: 'FARGATE', count: 10 });
    // Long enough ago, it is tried again.
    expect(placeBatch({ ...view, now: now + CLASS_SHORT_MS, count: 10 }).capacityClass).toBe('FARGATE_SPOT');
  });

  test('when every class was short, the weights decide as before', () => {
    const shortAt = { FARGATE: now - 1_000, FARGATE_SPOT: now - 1_000 };
    expect(placeBatch({ weights, own: {}, readings: readings(0, 0), taskVcpu: 1, shortAt, now, count: 10 }).capacityClass).toBe('FARGATE_SPOT');
  });

  test('a batch is no fuller than the roomiest usable class can take', () => {
    // On-Demand has room for 30, Spot for 120 but is short: one batch takes at most 30.
    const view = { weights, own: {}, readings: readings(90, 0), taskVcpu: 1, shortAt: { FARGATE_SPOT: now }, now };
    expect(roomiestClassSlots(view)).toBe(30);
    expect(roomiestClassSlots({ ...view, shortAt: {} })).toBe(120);
  });

  test('the latest shortage per class, read off the release counters', () => {
    expect(
      shortAtOf([
        { 'capacityShortAt@FARGATE_SPOT': '2026-12-07T10:00:00.000Z' },
        { 'capacityShortAt@FARGATE_SPOT': '2026-12-07T10:05:00.000Z', releasedVcpu: 3 },
        { releasedVcpu: 1 },
      ]),
    ).toEqual({ FARGATE_SPOT: Date.parse('2026-12-07T10:05:00.000Z') });
  });
});

describe('the admission plan with placement', () => {
  const pool: PoolState = {
    budgetVcpu: 100,
    ratePerSecond: 10,
    burst: 40,
    admittedByRoute: {},
    routeCaps: {},
    releasedByRoute: {},
    admittedVcpu: 60,
    admittedByClass: { FARGATE: 30, FARGATE_SPOT: 30 },
    batchesAdmitted: 3,
    releasedVcpu: 0,
    releasedByClass: {},
    classShortAt: {},
    tat: 0,
    account: {
      freeVcpu: 150,
      readAt: 1_000,
      classes: { FARGATE: { quotaVcpu: 120, usedVcpu: 120, othersVcpu: 90 }, FARGATE_SPOT: { quotaVcpu: 120, usedVcpu: 30, othersVcpu: 0 } },
    },
  };

  test('the effective budget is min(budget, what the classes leave in all); the batch goes where the room is', () => {
    // On-Demand is full (90 others + the stage's 30); Spot has 90 left. The budget leaves 40.
    const plan = planAdmission(pool, 2_000, 1, 40, { FARGATE: 1, FARGATE_SPOT: 1 });
    expect(plan).toMatchObject({ count: 40, capacityClass: 'FARGATE_SPOT', effectiveVcpu: 100 });
  });

  test('a batch larger than any class’s room shrinks to the roomiest, and says the account limits it', () => {
    const tight = {
      ...pool,
      account: { ...pool.account!, classes: { ...pool.account!.classes, FARGATE_SPOT: { quotaVcpu: 120, usedVcpu: 30, othersVcpu: 75 } } },
    };
    const plan = planAdmission(tight, 2_000, 1, 40, { FARGATE: 1, FARGATE_SPOT: 1 });
    expect(plan).toMatchObject({ count: 15, capacityClass: 'FARGATE_SPOT', limitedBy: 'account' });
  });

  test('the plan says how full one batch can be: the roomiest class’s room, not the budget’s', () => {
    const split = {
      ...pool,
      admittedVcpu: 0,
      admittedByClass: {},
      account: {
        ...pool.account!,
        classes: { FARGATE: { quotaVcpu: 120, usedVcpu: 90, othersVcpu: 90 }, FARGATE_SPOT: { quotaVcpu: 120, usedVcpu: 95, othersVcpu: 95 } },
      },
    };
    expect(planAdmission(split, 2_000, 1, 40, { FARGATE: 1, FARGATE_SPOT: 1 })).toMatchObject({ count: 30, batchRoom: 30, capacityClass: 'FARGATE' });
  });

  test('without weights the plan places nothing (the budget and tokens alone)', () => {
    expect(planAdmission(pool, 2_000, 1, 40).capacityClass).toBeUndefined();
  });
});
