import { intakeQueueName, routeQueueName } from '../../environments/names';
import type { TwinEvent } from '../../twin/engines/recorder';
import { broken } from '../../twin/bench';
import { computeReport } from '../../twin/report';
import { parseScenario } from '../../twin/scenario';
import { simulate } from '../../twin/simulate';
import { readStage } from '../../twin/synthesized-stage';
import { rulesForSource, ruleTakesKey } from '../../twin/wiring';
import { stageWithOverrides, World, type Design } from '../../twin/world';
import { synthesizeStageJson } from '../../synth/stage';

const fixed = (seconds: number) => ({ kind: 'fixed' as const, seconds });

/** Two routes of prod, a (share 3) and b (share 1), one workload each. */
const routed = {
  seed: 5,
  workloads: [
    { route: 'a', objects: { burst: 3 }, task: { duration: fixed(300), startupSeconds: 0 } },
    { route: 'b', objects: { steady: { count: 2, ratePerSecond: 0.5 } }, task: { duration: fixed(60) }, rates: { badInput: 1 } },
  ],
  task: { vcpu: 1, startupSeconds: 30 },
  overrides: {
    routes: [
      { name: 'a', prefix: 'incoming/', share: 3, priority: 0 },
      { name: 'b', prefix: 'incoming-b/', share: 1, priority: 1, maxVcpu: 10 },
    ],
  },
};

/** The problems parseScenario names, one `path: message` a line. */
function problemsOf(input: unknown): string[] {
  try {
    parseScenario(input);
  } catch (error) {
    return (error as Error).message.split('\n').slice(1);
  }
  return [];
}

describe('scenario: routes and workloads', () => {
  it('accepts routes with a workload each; without workloads the top-level objects and task are as before', () => {
    const scenario = parseScenario(routed);
    expect(scenario.workloads).toHaveLength(2);
    expect(parseScenario({ objects: { burst: 1 } }).task.duration).toEqual(fixed(300));
  });

  it.each([
    ['objects and workloads', { ...routed, objects: { burst: 1 } }, 'workloads: give either objects (one stream) or workloads (one per route), not both'],
    ['neither', { seed: 1 }, 'objects: is required: give objects, or workloads (one per route)'],
    [
      'a top-level duration with workloads',
      { ...routed, task: { duration: fixed(60) } },
      'task.duration: must be unset with workloads: each workload gives its own task.duration',
    ],
    [
      'top-level objects on a routed stage',
      { objects: { burst: 1 }, overrides: routed.overrides },
      'objects: must be workloads when overrides.routes is set: each workload names the route its objects go to',
    ],
    [
      'a workload on no route of the stage',
      { ...routed, workloads: [routed.workloads[0], { ...routed.workloads[1], route: 'c' }] },
      "workloads.1.route: must be one of overrides.routes ('a', 'b'), got 'c'",
    ],
    [
      'a workload without a duration',
      { ...routed, workloads: [{ ...routed.workloads[0], task: {} }] },
      expect.stringMatching(/^ {2}- workloads\.0\.task\.duration: /),
    ],
    [
      "a workload setting one of the account's rates",
      { ...routed, workloads: [{ ...routed.workloads[0], rates: { capacityError: 0.1 } }] },
      expect.stringMatching(/^ {2}- workloads\.0\.rates: .*capacityError/),
    ],
    ['an unknown workload field', { ...routed, workloads: [{ ...routed.workloads[0], name: 'x' }] }, expect.stringMatching(/^ {2}- workloads\.0: .*name/)],
    [
      "a route in the stage schema's words",
      { ...routed, overrides: { routes: [{ name: 'a', inputPrefix: 'incoming/a/', share: 1, priority: 0 }] } },
      expect.stringMatching(/^ {2}- overrides\.routes\.0: .*inputPrefix/),
    ],
  ])('refuses %s, naming the path', (_case, input, problem) => {
    expect(problemsOf(input)).toContainEqual(typeof problem === 'string' ? `  - ${problem}` : problem);
  });

  it("builds the stage's routes from overrides.routes, validated by the stage schema", () => {
    const stage = stageWithOverrides('prod', parseScenario(routed));
    expect(stage.routes).toEqual([
      { name: 'a', inputPrefix: 'incoming/', share: 3, priority: 0 },
      { name: 'b', inputPrefix: 'incoming-b/', share: 1, priority: 1, maxVcpu: 10 },
    ]);
    const inResults = { ...routed, overrides: { routes: [routed.overrides.routes[0], { ...routed.overrides.routes[1], prefix: 'results/b/' }] } };
    expect(() => stageWithOverrides('prod', parseScenario(inResults))).toThrow(/routes\.1\.inputPrefix \(route 'b'\): must not overlap bucket\.resultsPrefix/);
  });

  it("gives a route its own task size, checked as the stage schema checks a route's task", () => {
    const withTask = (task: { cpu: number; memoryMiB: number }) => ({
      ...routed,
      overrides: { routes: [{ ...routed.overrides.routes[0], task }, routed.overrides.routes[1]] },
    });
    expect(stageWithOverrides('prod', parseScenario(withTask({ cpu: 4096, memoryMiB: 8192 }))).routes?.[0]).toMatchObject({
      name: 'a',
      task: { cpu: 4096, memoryMiB: 8192 },
    });
    expect(() => stageWithOverrides('prod', parseScenario(withTask({ cpu: 4096, memoryMiB: 1024 })))).toThrow(/routes\.0\.task\.memoryMiB/);
  });
});

describe('objects per workload', () => {
  const scenario = parseScenario(routed);
  const world = new World(scenario, stageWithOverrides('prod', scenario));

  it("puts each workload's objects under its route's prefix, with its arrivals, durations and rates", () => {
    expect(world.objects.map((o) => [o.route, o.key, o.arriveAt, o.durationSeconds, o.badInput])).toEqual([
      ['a', 'incoming/object-000000.csv', 0, 300, false],
      ['a', 'incoming/object-000001.csv', 0, 300, false],
      ['a', 'incoming/object-000002.csv', 0, 300, false],
      ['b', 'incoming-b/object-000003.csv', 0, 60, true],
      ['b', 'incoming-b/object-000004.csv', 2, 60, true],
    ]);
  });

  it('on a stage without routes, names each stream and puts it in its own folder of the input area; top-level objects stay where they were', () => {
    const streams = parseScenario({ ...routed, overrides: {} });
    expect(new World(streams, stageWithOverrides('prod', streams)).objects.map((o) => o.key)).toContain('incoming/b/object-000004.csv');
    const plain = parseScenario({ objects: { burst: 1 } });
    expect(new World(plain, stageWithOverrides('prod', plain)).objects).toMatchObject([{ key: 'incoming/object-000000.csv', route: undefined }]);
  });

  it('top-level objects on a stage with routes belong to the route their key does', () => {
    const plain = parseScenario({ objects: { burst: 1 } });
    expect(new World(plain, stageWithOverrides('stg', plain)).objects).toMatchObject([{ key: 'incoming/object-000000.csv', route: 'default' }]);
  });

  it('every event that names a job carries its route', async () => {
    const idle: Design = { name: 'naive', jobIdOf: (o) => o.key, setup: async (w) => ({ upload: (o) => w.jobFailed(o.key, 'idle') }) };
    const run = await new World(scenario, stageWithOverrides('prod', scenario)).run(idle);
    const named = run.events.filter((e) => e.jobId);
    expect(named.map((e) => [e.type, e.route])).toContainEqual(['arrive', 'b']);
    expect(named.every((e) => e.route === (e.jobId!.startsWith('incoming-b/') ? 'b' : 'a'))).toBe(true);
    expect(run.events.find((e) => e.type === 'start')?.routes).toEqual([
      { name: 'a', share: 3, priority: 0 },
      { name: 'b', share: 1, priority: 1, maxVcpu: 10 },
    ]);
  });

  it("sends each upload to its route's rule: a routed stage has one per route, each to its route's queue (the stage's own for the route at its prefix)", () => {
    const uploadQueues = (routes: typeof routed.overrides.routes) => {
      const stage = stageWithOverrides(
        'prod',
        parseScenario({ ...routed, workloads: [{ ...routed.workloads[0], route: routes[0].name }], overrides: { routes } }),
      );
      const rules = rulesForSource(readStage(synthesizeStageJson(stage)).rules, 'aws.s3');
      const queueOf = (key: string) => rules.filter((r) => ruleTakesKey(r, key)).flatMap((r) => r.targets.filter((t) => t.kind === 'queue'));
      return { stage, queueOf };
    };
    for (const routes of [routed.overrides.routes, [{ ...routed.overrides.routes[0], name: 'main' }, routed.overrides.routes[1]]]) {
      const { stage, queueOf } = uploadQueues(routes);
      // Whatever its name, the route at the stage's prefix keeps the stage's own queue; the others have their own.
      expect(queueOf('incoming/x.csv')).toEqual([{ kind: 'queue', queueName: intakeQueueName(stage.namePrefix) }]);
      expect(queueOf('incoming-b/x.csv')).toEqual([{ kind: 'queue', queueName: routeQueueName(stage, 'b') }]);
      expect(routeQueueName(stage, 'b')).toBe(`${stage.namePrefix}-intake-b`);
      expect(queueOf('elsewhere/x.csv')).toEqual([]);
    }
  });
});

describe('report per route', () => {
  const e = (t: number, type: string, fields: Record<string, unknown> = {}): TwinEvent => ({ t, type, ...fields });

  it('counts each route: outcomes, wait to the first task, vCPU-seconds, peak, and the windows in which both had backlog', () => {
    const events: TwinEvent[] = [
      e(0, 'start', { budgetVcpu: 4, accountVcpuQuota: 100 }),
      ...['a1', 'a2', 'a3', 'a4'].map((jobId) => e(0, 'arrive', { jobId, route: 'a' })),
      ...['b1', 'b2'].map((jobId) => e(0, 'arrive', { jobId, route: 'b' })),
      ...['a1', 'a2', 'a3'].map((jobId, i) => e(10, 'taskStart', { jobId, route: 'a', taskArn: `t${i}`, vcpu: 1 })),
      e(20, 'taskStart', { jobId: 'b1', route: 'b', taskArn: 'tb1', vcpu: 1 }),
      ...['a1', 'a2', 'a3'].map((jobId, i) => e(1210, 'taskStop', { jobId, route: 'a', taskArn: `t${i}`, vcpu: 1, exitCode: 0 })),
      e(1210, 'jobDone', { jobId: 'a1', route: 'a', status: 'succeeded' }),
      e(1210, 'jobDone', { jobId: 'a2', route: 'a', status: 'succeeded' }),
      e(1210, 'jobDone', { jobId: 'a3', route: 'a', status: 'failed', error: 'x' }),
      e(1220, 'taskStop', { jobId: 'b1', route: 'b', taskArn: 'tb1', vcpu: 1, exitCode: 0 }),
      e(1220, 'jobDone', { jobId: 'b1', route: 'b', status: 'succeeded' }),
      e(1220, 'taskStart', { jobId: 'a4', route: 'a', taskArn: 't4', vcpu: 1 }),
      e(1220, 'taskStart', { jobId: 'b2', route: 'b', taskArn: 'tb2', vcpu: 1 }),
      e(1320, 'taskStop', { jobId: 'a4', route: 'a', taskArn: 't4', vcpu: 1, exitCode: 0 }),
      e(1320, 'jobDone', { jobId: 'a4', route: 'a', status: 'succeeded' }),
      e(1320, 'taskStop', { jobId: 'b2', route: 'b', taskArn: 'tb2', vcpu: 1, exitCode: 0 }),
      e(1320, 'jobDone', { jobId: 'b2', route: 'b', status: 'succeeded' }),
    ];
    const { routes, routeWindows } = computeReport(events);
    expect(routes.a).toMatchObject({
      objects: 4,
      succeeded: 3,
      failed: 1,
      dlq: 0,
      waitSeconds: { median: 10, p99: 1220, samples: 4 },
      vcpuSeconds: 3700,
      peakVcpu: 3,
    });
    expect(routes.b).toMatchObject({ objects: 2, succeeded: 2, waitSeconds: { median: 20, p99: 1220 }, vcpuSeconds: 1300, peakVcpu: 1 });
    // Both waited from 0 to 1220 s: the window [0, 600) counts, [600, 1200) too; [1200, 1800) does not (no backlog after 1220 s).
    expect(routeWindows).toEqual([
      { from: 0, to: 600, vcpuSeconds: { a: 1770, b: 580 } },
      { from: 600, to: 1200, vcpuSeconds: { a: 1800, b: 600 } },
    ]);
    // a's bound on what b left: 4 vCPU, less b's 1 from 20 s on, so 3,700 vCPU-s take 20 + (3,700 − 80) / 3 s.
    expect(routes.a.lowerBoundSeconds).toBeCloseTo(20 + 3620 / 3, 2);
    expect(routes.a.makespanSeconds).toBe(1320);
  });

  it("a route's cap bounds its lower bound, and a run whose route went over its cap broke a promise", () => {
    const events: TwinEvent[] = [
      e(0, 'start', { budgetVcpu: 4, accountVcpuQuota: 100, routes: [{ name: 'a', share: 1, priority: 0, maxVcpu: 1 }] }),
      e(0, 'arrive', { jobId: 'a1', route: 'a' }),
      e(0, 'arrive', { jobId: 'a2', route: 'a' }),
      e(0, 'taskStart', { jobId: 'a1', route: 'a', taskArn: 't1', vcpu: 1 }),
      e(0, 'taskStart', { jobId: 'a2', route: 'a', taskArn: 't2', vcpu: 1 }),
      e(100, 'taskStop', { jobId: 'a1', route: 'a', taskArn: 't1', vcpu: 1, exitCode: 0 }),
      e(100, 'taskStop', { jobId: 'a2', route: 'a', taskArn: 't2', vcpu: 1, exitCode: 0 }),
      e(100, 'jobDone', { jobId: 'a1', route: 'a', status: 'succeeded' }),
      e(100, 'jobDone', { jobId: 'a2', route: 'a', status: 'succeeded' }),
      e(100, 'end'),
    ];
    const report = computeReport(events);
    // 200 vCPU-s at most 1 vCPU at a time: 200 s, though the budget had room for both at once.
    expect(report.routes.a).toMatchObject({ maxVcpu: 1, peakVcpu: 2, lowerBoundSeconds: 200 });
    expect(broken(report)).toContain('route a peaked at 2 vCPU over its cap of 1');
  });

  it('a run without routes has none', () => {
    expect(computeReport([e(0, 'start'), e(0, 'arrive', { jobId: 'x' })])).toMatchObject({ routes: {}, routeWindows: [] });
  });

  it("a small routed scenario end to end: each route's objects go through its queue, and the report counts them per route", async () => {
    const scenario = parseScenario({
      seed: 2,
      workloads: [
        { route: 'default', objects: { burst: 40 }, task: { duration: fixed(60), startupSeconds: 0 } },
        { route: 'b', objects: { burst: 40 }, task: { duration: fixed(60), startupSeconds: 5 } },
      ],
      task: { vcpu: 1 },
      overrides: {
        vcpuBudget: 4,
        // The default route keeps the stage's own queue and rule; b has its own.
        routes: [
          { name: 'default', prefix: 'incoming/', share: 3, priority: 0 },
          { name: 'b', prefix: 'incoming-b/', share: 1, priority: 0 },
        ],
      },
    });
    const { report, events } = await simulate({ stage: 'prod', scenario, design: 'sluice' });
    expect(report).toMatchObject({ objects: 80, succeeded: 80, failed: 0, lost: 0, dlq: 0, stoppedBy: 'settled' });
    expect(report.peakVcpu).toBeLessThanOrEqual(4);
    expect(report.routes.default).toMatchObject({ objects: 40, succeeded: 40, peakVcpu: 3 });
    expect(report.routes.b).toMatchObject({ objects: 40, succeeded: 40 });
    // While both had backlog, default held 3 of the 4 vCPU.
    expect(report.routeWindows.length).toBeGreaterThan(0);
    for (const window of report.routeWindows) expect(window.vcpuSeconds.default / (window.vcpuSeconds.default + window.vcpuSeconds.b)).toBeCloseTo(0.75, 1);
    for (const type of ['arrive', 'admit', 'taskStart', 'taskStop', 'jobDone']) {
      expect(events.filter((x) => x.type === type).every((x) => x.route === 'default' || x.route === 'b')).toBe(true);
    }
    // Each workload's start-up: default's instant, b's 5 s.
    expect(new Set(events.filter((x) => x.type === 'taskStart').map((x) => `${x.route} ${x.startupSeconds}`))).toEqual(new Set(['default 0', 'b 5']));
    const { wallSeconds: _wall, ...figures } = report;
    expect(computeReport(events)).toEqual(figures);
  });
});
