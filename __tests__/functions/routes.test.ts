import { GetCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { ledgerKey, releaseLease } from '../../functions/ledger';
import { POOL_KEY, readPool, releasedShardKeys } from '../../functions/limiter';
import { intakeQueueFor, nextRoute, ownByRoute, routeOfKey, type RouteDemand, type RouteSettings } from '../../functions/routes';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { intakeWorld, objectCreated } from '../support/intake-world';
import { INTAKE_VISIBILITY_TIMEOUT_SECONDS } from '../../environments/function-settings';

const route = (name: string, fields: Partial<RouteSettings> = {}): RouteSettings => ({
  name,
  queueUrl: `https://sqs.eu-west-1.amazonaws.com/111111111111/intake-${name}`,
  inputPrefix: `incoming/${name}/`,
  share: 1,
  priority: 0,
  taskVcpu: 1,
  ...fields,
});
const demand = (r: RouteSettings, backlog: number, inUseVcpu: number): RouteDemand => ({ route: r, backlog, inUseVcpu });

describe("whose turn it is: a route's priority, share and cap", () => {
  const a = route('a', { share: 3 });
  const b = route('b', { share: 1 });

  test('both backlogged and idle: the larger share goes first, up to its part of the budget', () => {
    expect(nextRoute([demand(a, 100, 0), demand(b, 100, 0)], 100)).toEqual({ route: a, backlog: 100, tasks: 75 });
  });

  test('the route furthest below its share goes next, up to its target', () => {
    expect(nextRoute([demand(a, 100, 40), demand(b, 100, 0)], 100)).toEqual({ route: a, backlog: 100, tasks: 35 });
    expect(nextRoute([demand(a, 100, 75), demand(b, 100, 0)], 100)).toEqual({ route: b, backlog: 100, tasks: 25 });
    // No more than the stage has room for: 4 of the 5 that would bring it to its share.
    expect(nextRoute([demand(a, 100, 70), demand(b, 100, 26)], 100)).toEqual({ route: a, backlog: 100, tasks: 4 });
  });

  test('a route with no backlog lends its share: the other may take the whole budget', () => {
    expect(nextRoute([demand(a, 0, 0), demand(b, 100, 30)], 100)).toEqual({ route: b, backlog: 100, tasks: 70 });
  });

  test("a lender's running tasks still count: the borrower's part is what they leave", () => {
    expect(nextRoute([demand(a, 0, 60), demand(b, 100, 10)], 100)).toEqual({ route: b, backlog: 100, tasks: 30 });
  });

  test('a trickle behind a burst gets the next slot: its share, not its place in line', () => {
    const burst = route('burst', { share: 9 });
    const trickle = route('trickle', { share: 1 });
    expect(nextRoute([demand(burst, 10_000, 99), demand(trickle, 1, 0)], 100)).toMatchObject({ route: trickle, tasks: 1 });
  });

  test('a higher priority class with backlog goes first, whatever the shares', () => {
    const urgent = route('urgent', { share: 1, priority: 5 });
    expect(nextRoute([demand(a, 100, 0), demand(urgent, 3, 50)], 100)).toEqual({ route: urgent, backlog: 3, tasks: 50 });
  });

  test('a route at its cap waits, and the others take the room; below its cap, it takes no more than the cap allows', () => {
    const capped = route('capped', { share: 10, maxVcpu: 20 });
    expect(nextRoute([demand(capped, 100, 20), demand(b, 100, 0)], 100)).toEqual({ route: b, backlog: 100, tasks: 80 });
    expect(nextRoute([demand(capped, 100, 18), demand(b, 100, 0)], 100)).toEqual({ route: capped, backlog: 100, tasks: 2 });
    expect(nextRoute([demand(capped, 100, 20)], 100)).toBeUndefined();
  });

  test("a cap counts in tasks of the route's size: 2-vCPU tasks under a cap of 5 are two", () => {
    expect(nextRoute([demand(route('c', { maxVcpu: 5, taskVcpu: 2 }), 10, 0)], 100)).toMatchObject({ tasks: 2 });
  });

  test("a route's unused reserve is never lent: the others take what is left beside it, and it takes its own at once", () => {
    const trickle = route('trickle', { share: 1, reservedVcpu: 5 });
    const burst = route('burst', { share: 9 });
    // The trickle is idle: the burst fills the budget but for the 5 kept for it.
    expect(nextRoute([demand(burst, 10_000, 0), demand(trickle, 0, 0)], 100)).toMatchObject({ route: burst, tasks: 95 });
    // Full but for the reserve: the burst's turn waits for room (its tasks end), the reserve stays kept.
    expect(nextRoute([demand(burst, 10_000, 95), demand(trickle, 0, 0)], 100)).toMatchObject({ route: burst, tasks: 0 });
    // Its upload arrives: it starts at once, in its reserve.
    expect(nextRoute([demand(burst, 10_000, 95), demand(trickle, 1, 0)], 100)).toMatchObject({ route: trickle, tasks: 5 });
    // Using its reserve, it keeps nothing back; above it, it competes by its share like any route.
    expect(nextRoute([demand(burst, 10_000, 90), demand(trickle, 0, 5)], 100)).toMatchObject({ route: burst, tasks: 5 });
  });

  test("a higher class does not take a lower route's unused reserve either", () => {
    const urgent = route('urgent', { priority: 1 });
    const kept = route('kept', { reservedVcpu: 10 });
    expect(nextRoute([demand(urgent, 50, 85), demand(kept, 0, 0)], 100)).toMatchObject({ route: urgent, tasks: 5 });
  });

  test('nothing to take: no route has backlog', () => {
    expect(nextRoute([demand(a, 0, 0), demand(b, 0, 5)], 100)).toBeUndefined();
  });

  test('a route over its share (it borrowed while the other was idle) still leaves one task to the one below', () => {
    expect(nextRoute([demand(a, 100, 10), demand(b, 100, 80)], 100)).toEqual({ route: a, backlog: 100, tasks: 10 });
  });
});

describe('routes of different task sizes share by vCPU', () => {
  const small = route('small', { taskVcpu: 1 });
  const large = route('large', { taskVcpu: 4 });

  test('equal shares are equal vCPU: 50 one-vCPU tasks, then 12 four-vCPU tasks in the 50 left (a 13th would not fit)', () => {
    expect(nextRoute([demand(small, 1_000, 0), demand(large, 1_000, 0)], 100)).toMatchObject({ route: small, tasks: 50 });
    expect(nextRoute([demand(small, 1_000, 50), demand(large, 1_000, 0)], 100)).toMatchObject({ route: large, tasks: 12 });
    expect(nextRoute([demand(small, 1_000, 50), demand(large, 1_000, 48)], 100)).toMatchObject({ route: small, tasks: 1 });
  });

  test('the route furthest below its share keeps its turn while the stage has no room for its task yet: small tasks do not take the room as it frees', () => {
    // 2 vCPU free: room for two small tasks, not for one large; the large route is 4 below its share, the small 3 above.
    expect(nextRoute([demand(small, 1_000, 8), demand(large, 1_000, 0)], 10)).toEqual({ route: large, backlog: 1_000, tasks: 0 });
    // Less than a task below its share, it does not keep the room: what is free goes where it fits.
    expect(nextRoute([demand(small, 1_000, 4), demand(large, 1_000, 4)], 10)).toMatchObject({ route: small, tasks: 1 });
  });

  test('a task larger than the stage may hold now (the account shrank it) does not hold up the others', () => {
    expect(nextRoute([demand(small, 1_000, 0), demand(large, 1_000, 0)], 3)).toMatchObject({ route: small, tasks: 3 });
    expect(nextRoute([demand(large, 1_000, 0)], 3)).toBeUndefined();
  });

  test("another route's unused reserve keeps a large task out; the large route still keeps its turn, and the small ones do not take the room it waits for", () => {
    const kept = route('kept', { taskVcpu: 1, reservedVcpu: 4 });
    // 6 free, 4 of them kept: the large route (furthest below its share) waits for room outside the reserve.
    expect(nextRoute([demand(small, 1_000, 4), demand(large, 1_000, 0), demand(kept, 0, 0)], 10)).toEqual({ route: large, backlog: 1_000, tasks: 0 });
    // Once the small route's tasks end, it fits beside the reserve.
    expect(nextRoute([demand(small, 1_000, 2), demand(large, 1_000, 0), demand(kept, 0, 0)], 10)).toMatchObject({ route: large, tasks: 1 });
    // The kept route's upload starts at once in its own reserve, whoever waits.
    expect(nextRoute([demand(small, 1_000, 4), demand(large, 1_000, 0), demand(kept, 1, 0)], 10)).toMatchObject({ route: kept, tasks: 4 });
  });

  test('a route whose share is less than one of its tasks still gets one while it holds nothing', () => {
    // Budget 6 shared 1:1: the large route's share (3) is under its 4-vCPU task.
    expect(nextRoute([demand(small, 1_000, 3), demand(large, 1_000, 0)], 6)).toEqual({ route: large, backlog: 1_000, tasks: 0 });
    expect(nextRoute([demand(small, 1_000, 2), demand(large, 1_000, 0)], 6)).toMatchObject({ route: large, tasks: 1 });
    // Holding it, it is over its share: the small route takes what is free.
    expect(nextRoute([demand(small, 1_000, 1), demand(large, 1_000, 4)], 6)).toMatchObject({ route: small, tasks: 1 });
  });

  test('what a route no longer configured still holds counts: it is outside every class, and no reserve is lent for it', () => {
    const kept = route('kept', { taskVcpu: 1, reservedVcpu: 4 });
    // 4 of the budget's 10 still held under a removed route: 6 free, 4 kept, 2 for the small route.
    expect(nextRoute([demand(small, 1_000, 0), demand(kept, 0, 0)], 10, 4)).toMatchObject({ route: small, tasks: 2 });
  });
});

test("a key's route is the one whose prefix and suffix take it; a key no route takes goes back to the stage's queue", () => {
  const csv = route('csv', { inputSuffix: '.csv' });
  const routes = [csv, route('b')];
  expect(routeOfKey(routes, 'incoming/csv/x.csv')).toBe(csv);
  expect(routeOfKey(routes, 'incoming/csv/x.json')).toBeUndefined();
  expect(intakeQueueFor({ queueUrl: 'stage-queue', routes }, 'incoming/b/y')).toBe(routes[1].queueUrl);
  expect(intakeQueueFor({ queueUrl: 'stage-queue', routes }, 'incoming/gone/y')).toBe('stage-queue');
  expect(intakeQueueFor({ queueUrl: 'stage-queue' }, 'incoming/b/y')).toBe('stage-queue');
});

describe('a stage with routes, on DynamoDB (moto)', () => {
  let moto: MotoDynamo;
  beforeAll(async () => {
    moto = await startMotoDynamo();
  });
  afterAll(() => moto.close());

  /** A world whose stage has the given routes, each with its own queue (redriven to the stage's one DLQ). */
  async function routedWorld(budgetVcpu: number, routes: Array<Omit<RouteSettings, 'queueUrl' | 'inputPrefix' | 'taskVcpu'> & { taskVcpu?: number }>) {
    const world = await intakeWorld(moto, { budgetVcpu, ratePerSecond: 100, burst: 100 });
    const settings = routes.map((r) => ({
      taskVcpu: 1,
      ...r,
      inputPrefix: `incoming/${r.name}/`,
      queueUrl: world.sqs.createQueue({
        name: `intake-${r.name}`,
        visibilityTimeoutSeconds: INTAKE_VISIBILITY_TIMEOUT_SECONDS,
        redrive: { deadLetterQueueName: 'intake-dlq', maxReceiveCount: 3 },
      }),
    }));
    const upload = (name: string, n: number) => {
      const queue = settings.find((r) => r.name === name)!.queueUrl;
      for (let i = 0; i < n; i++) world.sqs.sendMessage(queue, objectCreated(`incoming/${name}/${i}.csv`));
    };
    const held = async () => ownByRoute(await readPool(moto.ddb, world.tableName));
    /** An update of POOL behind the dispatcher's back (an operator, another writer, an account reading). */
    const updatePool = (update: Omit<UpdateCommandInput, 'TableName' | 'Key'>) =>
      moto.ddb.send(new UpdateCommand({ TableName: world.tableName, Key: POOL_KEY, ...update }));
    return { world, routes: settings, upload, held, updatePool, dispatch: () => world.dispatch({ routes: settings }) };
  }

  test("each route's jobs come from its own queue, carry their route, and count on its counters until released", async () => {
    const { world, routes, upload, held, dispatch } = await routedWorld(100, [
      { name: 'a', share: 1, priority: 0 },
      { name: 'b', share: 1, priority: 0 },
    ]);
    upload('a', 2);
    upload('b', 3);
    await dispatch();
    expect(await held()).toEqual({ a: 2, b: 3 });
    const jobs = world.started.flatMap((s) => s.jobs);
    for (const job of jobs) {
      const own = routes.find((r) => job.key.startsWith(r.inputPrefix))!;
      expect(job).toMatchObject({ route: own.name, intakeQueueUrl: own.queueUrl });
      expect((await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(job.jobId) }))).Item?.lease.route).toBe(own.name);
    }
    // A batch holds one route's jobs.
    for (const s of world.started) expect(new Set(s.jobs.map((j) => j.route)).size).toBe(1);
    const first = jobs.find((j) => j.route === 'b')!;
    const row = (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(first.jobId) }))).Item!;
    await releaseLease(moto.ddb, world.tableName, { jobId: first.jobId, lease: row.lease, outcome: { status: 'unchanged' } }, world.clock);
    expect(await held()).toEqual({ a: 2, b: 2 });
  });

  test('shares of a budget both routes want: 3:1 of 8 vCPU is 6 and 2', async () => {
    const { upload, held, dispatch } = await routedWorld(8, [
      { name: 'a', share: 3, priority: 0 },
      { name: 'b', share: 1, priority: 0 },
    ]);
    upload('a', 20);
    upload('b', 20);
    expect(await dispatch()).toMatchObject({ admitted: 8, stoppedBecause: 'no-budget' });
    expect(await held()).toEqual({ a: 6, b: 2 });
  });

  test("routes of different task sizes: each job leases its route's task, runs its route's task definition, and the vCPU is shared by share", async () => {
    const large = 'arn:aws:ecs:eu-west-1:111111111111:task-definition/sluice-dev-worker-large:2';
    const { world, upload, held, dispatch } = await routedWorld(10, [
      { name: 'small', share: 1, priority: 0 },
      { name: 'large', share: 1, priority: 0, taskVcpu: 4, taskDefinitionArn: large },
    ]);
    upload('small', 20);
    upload('large', 20);
    // 5 small, then 1 large (a second would not fit), then the vCPU left goes to a small one.
    expect(await dispatch()).toMatchObject({ admitted: 7, stoppedBecause: 'no-budget' });
    expect(await held()).toEqual({ small: 6, large: 4 });
    const jobs = world.started.flatMap((s) => s.jobs);
    expect(jobs.filter((j) => j.route === 'large')).toEqual([expect.objectContaining({ vcpu: 4, taskDefinitionArn: large })]);
    for (const job of jobs.filter((j) => j.route === 'small')) expect(job.vcpu).toBe(1);
    const row = (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(jobs.find((j) => j.route === 'large')!.jobId) }))).Item!;
    expect(row.lease).toMatchObject({ route: 'large', vcpu: 4 });
  });

  test('a large task no capacity class has room for is passed over while smaller ones fit: the stage does not stall', async () => {
    const { world, routes, upload, held, updatePool } = await routedWorld(20, [
      { name: 'large', share: 3, priority: 0, taskVcpu: 4 },
      { name: 'small', share: 1, priority: 0 },
    ]);
    // The account as last measured: 3 vCPU free in each class, 6 in all; no class holds a 4-vCPU task.
    const classes = { FARGATE: { quotaVcpu: 100, usedVcpu: 97, othersVcpu: 97 }, FARGATE_SPOT: { quotaVcpu: 100, usedVcpu: 97, othersVcpu: 97 } };
    await updatePool({
      UpdateExpression: 'SET #account = :account',
      ExpressionAttributeNames: { '#account': 'account' },
      ExpressionAttributeValues: { ':account': { freeVcpu: 6, readAt: world.clock.now(), classes } },
    });
    upload('large', 5);
    upload('small', 20);
    await world.dispatch({ routes, capacityWeights: { FARGATE: 1, FARGATE_SPOT: 1 } });
    expect(await held()).toEqual({ small: 6 });
  });

  test("what a route removed by the last deploy still holds counts against the room: another route's reserve is not lent for it", async () => {
    const { world, routes, upload, held, updatePool } = await routedWorld(10, [
      { name: 'small', share: 1, priority: 0 },
      { name: 'kept', share: 1, priority: 0, reservedVcpu: 4 },
    ]);
    await updatePool({
      UpdateExpression: 'ADD admittedVcpu :four, #gone :four',
      ExpressionAttributeNames: { '#gone': 'admittedVcpu@route:gone' },
      ExpressionAttributeValues: { ':four': 4 },
    });
    upload('small', 20);
    await world.dispatch({ routes });
    // 10 − 4 still running − 4 kept for 'kept'.
    expect((await held()).small).toBe(2);
  });

  test.each<[string, number, Array<{ name: string; share: number; priority: number; taskVcpu?: number; reservedVcpu?: number }>]>([
    [
      'beside an idle reserve',
      10,
      [
        { name: 'small', share: 1, priority: 0 },
        { name: 'large', share: 1, priority: 0, taskVcpu: 4 },
        { name: 'kept', share: 1, priority: 0, reservedVcpu: 4 },
      ],
    ],
    [
      'with a share below one of its tasks (budget 6, 1:1)',
      6,
      [
        { name: 'small', share: 1, priority: 0 },
        { name: 'large', share: 1, priority: 0, taskVcpu: 4 },
      ],
    ],
  ])('a large-task route %s starts, though small tasks could take each vCPU as it frees', async (_what, budget, shape) => {
    const { world, routes, upload, held } = await routedWorld(budget, shape);
    upload('small', 200);
    upload('large', 10);
    await world.dispatch({ routes });
    const released = new Set<string>();
    for (let round = 0; round < 10 && !(await held()).large; round++) {
      // The oldest running small job ends; its release wakes the dispatcher.
      const job = world.started.flatMap((s) => s.jobs).find((j) => j.route === 'small' && !released.has(j.jobId))!;
      released.add(job.jobId);
      const row = (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(job.jobId) }))).Item!;
      await releaseLease(moto.ddb, world.tableName, { jobId: job.jobId, lease: row.lease, outcome: { status: 'unchanged' } }, world.clock);
      await world.advance(1000);
      await world.dispatch({ routes }, { releasedAt: world.clock.now() });
    }
    expect((await held()).large).toBe(4);
  });

  test('a capped route never holds more than its cap; its waiting messages are never received, and the others use the rest', async () => {
    const { world, routes, upload, held, dispatch } = await routedWorld(10, [
      { name: 'capped', share: 5, priority: 0, maxVcpu: 3 },
      { name: 'b', share: 1, priority: 0 },
    ]);
    upload('capped', 8);
    expect(await dispatch()).toMatchObject({ admitted: 3, stoppedBecause: 'routes-held' });
    expect(world.sqs.messages(routes[0].queueUrl).map((m) => m.receiveCount)).toEqual([0, 0, 0, 0, 0]);
    upload('b', 20);
    await dispatch();
    expect(await held()).toEqual({ capped: 3, b: 7 });
  });

  test('a higher priority route is admitted first, before a lower one with more backlog', async () => {
    const { upload, held, dispatch } = await routedWorld(4, [
      { name: 'bulk', share: 9, priority: 0 },
      { name: 'urgent', share: 1, priority: 1 },
    ]);
    upload('bulk', 50);
    upload('urgent', 3);
    await dispatch();
    expect(await held()).toEqual({ urgent: 3, bulk: 1 });
  });

  test("the route's cap holds in the admission's own condition: a plan on a stale read of the route's use is refused", async () => {
    const { world, upload, held, dispatch, updatePool } = await routedWorld(100, [{ name: 'capped', share: 1, priority: 0, maxVcpu: 2 }]);
    upload('capped', 2);
    // Between the plan's read and the admission, 1 vCPU of the route is counted admitted (a second admitter, which must not exist).
    world.beforeNext('TransactWriteCommand', () =>
      updatePool({
        UpdateExpression: 'ADD #route :one',
        ExpressionAttributeNames: { '#route': 'admittedVcpu@route:capped' },
        ExpressionAttributeValues: { ':one': 1 },
      }),
    );
    await dispatch();
    // The first try (two jobs) was refused; read again, the route had room for one.
    expect(world.started.map((s) => s.jobs.length)).toEqual([1]);
    expect((await held()).capped).toBe(2);
  });

  test('a cap an operator set at run time stands in for the configured one, and one set between a plan and its admission refuses it', async () => {
    const { world, upload, held, dispatch, updatePool } = await routedWorld(100, [
      { name: 'capped', share: 1, priority: 0, maxVcpu: 5 },
      { name: 'b', share: 1, priority: 0 },
    ]);
    const setCap = (cap: number | undefined) =>
      updatePool({
        UpdateExpression: cap === undefined ? 'REMOVE #cap' : 'SET #cap = :cap',
        ExpressionAttributeNames: { '#cap': 'maxVcpu@route:capped' },
        ...(cap === undefined ? {} : { ExpressionAttributeValues: { ':cap': cap } }),
      });
    upload('capped', 10);
    await setCap(2);
    expect(await dispatch()).toMatchObject({ admitted: 2, stoppedBecause: 'routes-held' });
    // Lowered again between the plan's read (cap 3) and the admission: the admission planned on 3 is refused; read again, it fits none.
    await setCap(3);
    world.beforeNext('TransactWriteCommand', () => setCap(2));
    await dispatch();
    expect((await held()).capped).toBe(2);
    // Back to the configured cap.
    await setCap(undefined);
    await dispatch();
    expect((await held()).capped).toBe(5);
  });

  test("the janitor puts a job back on its route's queue, and repairs a route's drifted counter", async () => {
    const { world, routes, upload, dispatch } = await routedWorld(100, [
      { name: 'a', share: 1, priority: 0 },
      { name: 'b', share: 1, priority: 0 },
    ]);
    upload('b', 1);
    await dispatch();
    const [execution] = world.started;
    execution.status = 'FAILED';
    await world.advance(1000);
    // A route's released counter 1.5 vCPU short (a lost write): the totals agree with the leases, the route's do not.
    await moto.ddb.send(
      new UpdateCommand({
        TableName: world.tableName,
        Key: releasedShardKeys()[5],
        UpdateExpression: 'ADD #route :drift',
        ExpressionAttributeNames: { '#route': 'releasedVcpu@route:a' },
        ExpressionAttributeValues: { ':drift': -1.5 },
      }),
    );
    await world.janitor({ routes });
    expect(world.sqs.counts(routes[1].queueUrl).total).toBe(1);
    expect(world.sqs.counts(routes[0].queueUrl).total).toBe(0);
    expect(world.logs).toContainEqual(expect.objectContaining({ event: 'counterRepaired', partDriftVcpu: { 'admittedVcpu@route:a': 1.5 } }));
    const pool = await readPool(moto.ddb, world.tableName);
    expect(pool.releasedByRoute.a).toBe(0);
    expect(ownByRoute(pool)).toEqual({ a: 0, b: 0 });
  });

  test("a job found in another route's queue (sent there by a previous version during a deploy) is sent on to its own, not dead-lettered", async () => {
    const { world, routes, dispatch, held } = await routedWorld(100, [
      { name: 'a', share: 1, priority: 0 },
      { name: 'b', share: 1, priority: 0 },
    ]);
    world.sqs.sendMessage(routes[0].queueUrl, objectCreated('incoming/b/lost.csv'));
    await dispatch();
    expect(world.sqs.counts(world.deadLetterQueueUrl).total).toBe(0);
    expect(world.logs).toContainEqual(expect.objectContaining({ event: 'forwardedToRoute', key: 'incoming/b/lost.csv', from: 'a', to: 'b' }));
    // Forwarded, then taken from b's queue in the same run (or the next).
    if (world.started.length === 0) await dispatch();
    expect(world.started.flatMap((e) => e.jobs).map((j) => [j.key, j.route])).toEqual([['incoming/b/lost.csv', 'b']]);
    expect(await held()).toEqual({ b: 1 });
  });

  test("a lease from before the stage had routes counts toward its key's route once the janitor has swept: the cap holds", async () => {
    const { world, routes, upload, held, dispatch } = await routedWorld(100, [{ name: 'capped', share: 1, priority: 0, maxVcpu: 2 }]);
    // Admitted by the previous version: no route on its lease, none counted.
    world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/capped/old.csv'));
    await world.dispatch({ inputPrefix: 'incoming/' });
    expect(world.started[0].jobs[0]).not.toHaveProperty('route');
    await world.janitor({ routes });
    expect(await held()).toEqual({ capped: 1 });
    upload('capped', 5);
    await dispatch();
    expect(await held()).toEqual({ capped: 2 });
    expect(world.started.flatMap((e) => e.jobs)).toHaveLength(2);
  });

  test('a stage without routes writes no route counters and no route on its jobs', async () => {
    const world = await intakeWorld(moto, { budgetVcpu: 10, ratePerSecond: 100, burst: 100 });
    world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/plain.csv'));
    await world.dispatch();
    expect(world.started[0].jobs[0]).not.toHaveProperty('route');
    expect(world.started[0].jobs[0]).not.toHaveProperty('intakeQueueUrl');
    const pool = (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: POOL_KEY }))).Item!;
    expect(Object.keys(pool).filter((k) => k.includes('@route:'))).toEqual([]);
  });
});
