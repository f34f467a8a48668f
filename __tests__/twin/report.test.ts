import { LeakWatch } from '../../twin/leaks';
import { renderChart } from '../../twin/chart';
import { computeReport, launchTerm } from '../../twin/report';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_STARTUP, loadScenario, parseScenario } from '../../twin/scenario';
import { stageWithOverrides } from '../../twin/world';
import type { TwinEvent } from '../../twin/engines/recorder';

const e = (t: number, type: string, fields: Record<string, unknown> = {}): TwinEvent => ({ t, type, ...fields });

describe('report from events', () => {
  const events: TwinEvent[] = [
    e(0, 'start', { design: 'x', stage: 'dev', seed: 1, budgetVcpu: 2, launchRatePerSecond: 1, launchBurst: 3, accountVcpuQuota: 6 }),
    e(0, 'arrive', { jobId: 'a' }),
    e(0, 'arrive', { jobId: 'b' }),
    e(0, 'arrive', { jobId: 'c' }),
    e(0, 'arrive', { jobId: 'p' }),
    e(0, 'admit', { jobId: 'a' }),
    e(0, 'runTask', { jobId: 'a' }),
    e(0, 'taskStart', { jobId: 'a', taskArn: 't1', vcpu: 1 }),
    e(0, 'runTask', { jobId: 'b' }),
    e(0, 'throttle', { jobId: 'b', source: 'ecsApi' }),
    e(1, 'runTask', { jobId: 'b' }),
    e(1, 'taskStart', { jobId: 'b', taskArn: 't2', vcpu: 1 }),
    e(1, 'dlq', { jobId: 'p', reason: 'poison' }),
    e(100, 'taskStop', { jobId: 'a', taskArn: 't1', vcpu: 1, exitCode: 0 }),
    e(100, 'release', { jobId: 'a' }),
    e(100, 'jobDone', { jobId: 'a', status: 'succeeded', error: null }),
    e(101.5, 'taskStart', { jobId: 'c', taskArn: 't3', vcpu: 1 }),
    e(101, 'taskStop', { jobId: 'b', taskArn: 't2', vcpu: 1, exitCode: 65 }),
    e(101, 'jobDone', { jobId: 'b', status: 'failed', error: 'States.TaskFailed (exit 65)' }),
    e(102, 'execEnd', { transitions: 7 }),
    e(102, 'lambda', { billedMs: 2000, memoryMB: 512 }),
    e(102, 'meter', { ddbWrites: 3, ddbReads: 1, ddbWriteUnits: 17, ddbReadUnits: 4, sqsRequests: 5 }),
  ];
  const report = computeReport(events);

  it('accounts for every object: succeeded, failed, DLQ and lost (arrived, never finished)', () => {
    expect(report).toMatchObject({ objects: 4, succeeded: 1, failed: 1, dlq: 1, lost: 1, failureReasons: { 'States.TaskFailed (exit 65)': 1 } });
  });

  it('computes peak vCPU, the lower bound with its formula, and the makespan ratio', () => {
    expect(report.peakVcpu).toBe(2);
    // Σ task vCPU-seconds = 100 + 100 (t3 never stopped, not counted) → /2 = 100 s; (3 ran − burst 3) / 1 per s + shortest task 100 s = 100 s.
    expect(report.lowerBoundSeconds).toBe(100);
    expect(report.lowerBoundFormula).toContain('200 / 2 = 100 s');
    expect(report.makespanSeconds).toBe(101);
    expect(report.makespanRatio).toBe(1.01);
  });

  it('counts throttles, transitions, Lambda GB-seconds, requests, and the admission latency', () => {
    expect(report.throttles).toMatchObject({ total: 1, bySource: { ecsApi: 1 } });
    expect(report.runTaskCalls).toBe(3);
    expect(report.stateTransitions).toBe(7);
    expect(report.lambdaGbSeconds).toBe(1);
    expect(report.dynamodbRequests).toEqual({ reads: 1, writes: 3 });
    // DynamoDB is billed by capacity units, not requests: 17 write units × $0.625/M + 4 read units × $0.125/M, per 4 objects.
    expect(report.dynamodbCapacityUnits).toEqual({ read: 4, write: 17 });
    expect(report.orchestrationCostPer1k.dynamodb).toBeCloseTo(((17 * 0.625 + 4 * 0.125) / 1e6) * 250, 4);
    expect(report.admissionLatencySeconds).toEqual({ median: 1.5, p99: 1.5, samples: 1 });
  });

  it('has no launch rate when no more tasks started than the bucket holds at once', () => {
    expect(report.launchesPerSecond).toBeNull();
  });
});

describe('report: the launch rate and the budget together', () => {
  it('bounds a launch by the bucket and, with every slot taken, by the end of the task that slot held', () => {
    // One launch a second from a bucket of one, two slots, tasks of 10 s: launches at 0, 1, then 10 and 11 (each
    // waits for a slot), the last task ends at 21 — more than the rate alone (3 + 10 s) or the work (40 / 2 s) says.
    const start = e(0, 'start', { design: 'sluice', stage: 'prod', seed: 1, budgetVcpu: 2, launchRatePerSecond: 1, launchBurst: 1, accountVcpuQuota: 4 });
    const job = (id: string, from: number) => [
      e(from, 'taskStart', { jobId: id, taskArn: `t-${id}`, vcpu: 1 }),
      e(from + 10, 'taskStop', { jobId: id, taskArn: `t-${id}`, vcpu: 1, exitCode: 0 }),
      e(from + 10, 'jobDone', { jobId: id, status: 'succeeded' }),
    ];
    const events = [start, ...['a', 'b', 'c', 'd'].map((jobId) => e(0, 'arrive', { jobId })), ...job('a', 0), ...job('b', 1), ...job('c', 10), ...job('d', 11)];
    const report = computeReport(events.sort((x, y) => x.t - y.t));
    expect(report.lowerBoundSeconds).toBe(21);
    expect(report.makespanRatio).toBe(1);
    expect(report.lowerBoundFormula).toContain('at most 2 tasks at once');
  });

  it('is the bucket alone while the slots outnumber the launches the first task outlasts', () => {
    expect(launchTerm({ n: 100, burst: 20, rate: 10, hold: 30, slots: 400 })).toEqual({
      seconds: 38,
      text: '(N − burst) / launch rate + shortest task (start-up + run) = (100 − 20) / 10 + 30 = 38 s',
    });
    expect(launchTerm({ n: 100, burst: 20, rate: 10, hold: 30, slots: Infinity }).seconds).toBe(38);
    // 50 slots: launch 51 waits for the first task's end at 30 s, and each later one 30 s after the one 50 before it.
    expect(launchTerm({ n: 100, burst: 20, rate: 10, hold: 30, slots: 50 }).seconds).toBeCloseTo(3 + 30 + 30, 6);
  });
});

describe('report: launches per second while jobs waited', () => {
  const start = e(0, 'start', { design: 'sluice', stage: 'prod', seed: 1, budgetVcpu: 10, launchRatePerSecond: 2, launchBurst: 2, accountVcpuQuota: 10 });
  const arrivals = ['j0', 'j1', 'j2', 'j3', 'j4', 'j5', 'poison'].map((jobId) => e(0, 'arrive', { jobId }));
  const taskStart = (t: number, jobId: string, taskArn = `t-${jobId}`) => e(t, 'taskStart', { jobId, taskArn, vcpu: 1 });

  it('counts the starts past the burst, up to the last that left jobs waiting, over their window', () => {
    const report = computeReport([
      start,
      ...arrivals,
      taskStart(0, 'j0'),
      taskStart(0, 'j1'),
      e(0.2, 'dlq', { jobId: 'poison', reason: 'poison' }),
      taskStart(0.5, 'j2'),
      taskStart(1, 'j3'),
      taskStart(1.5, 'j4'),
      // Nothing waits behind the last job's start, nor behind a retry long after: neither is the limiter's pace.
      taskStart(4, 'j5'),
      taskStart(50, 'j3', 't-j3-retry'),
    ]);
    // j0 … j4 while jobs waited: (5 − burst 2) / 1.5 s = 2 per second, the bucket's rate.
    expect(report.launchesPerSecond).toBe(2);
  });

  it('shows a limiter that launches slower than its rate', () => {
    const report = computeReport([start, ...arrivals, taskStart(0, 'j0'), taskStart(0, 'j1'), taskStart(1, 'j2'), taskStart(2, 'j3'), taskStart(3, 'j4')]);
    expect(report.launchesPerSecond).toBe(1);
  });
});

describe('report: Fargate billing and start-up', () => {
  const start = e(0, 'start', { design: 'sluice', stage: 'prod', seed: 1, budgetVcpu: 10, launchRatePerSecond: 100, launchBurst: 20, accountVcpuQuota: 120 });
  /** One job's task: RunTask at 0, the pull from pullStart, stopped at stop. */
  const oneTask = (fields: { stop: number; vcpu?: number; memoryGb?: number; provider?: string; startupSeconds?: number; pullStartSeconds?: number }) =>
    computeReport([
      start,
      e(0, 'arrive', { jobId: 'a' }),
      e(0, 'taskStart', {
        jobId: 'a',
        taskArn: 't1',
        vcpu: fields.vcpu ?? 1,
        memoryGb: fields.memoryGb ?? 0,
        provider: fields.provider ?? 'FARGATE',
        startupSeconds: fields.startupSeconds ?? 0,
        pullStartSeconds: fields.pullStartSeconds ?? 0,
      }),
      e(fields.stop, 'taskStop', { jobId: 'a', taskArn: 't1', vcpu: fields.vcpu ?? 1, exitCode: 0 }),
      e(fields.stop, 'jobDone', { jobId: 'a', status: 'succeeded' }),
      e(fields.stop, 'end', { stoppedBy: 'settled' }),
    ]);
  const perHour = (seconds: number) => seconds / 3600;

  it('bills a minute at least: a 20 s task costs what a 60 s task costs, a 61 s task more', () => {
    const short = oneTask({ stop: 20 });
    expect(short.fargateCostPer1k.vcpu).toBeCloseTo(perHour(60) * 0.04048 * 1000, 4);
    expect(oneTask({ stop: 60 }).fargateCostPer1k).toEqual(short.fargateCostPer1k);
    expect(oneTask({ stop: 61 }).fargateCostPer1k.total).toBeGreaterThan(short.fargateCostPer1k.total);
  });

  it('bills per second from the image pull, rounded up, not from RunTask', () => {
    // RunTask at 0, pull from 30 s, stop at 130.2 s: 100.2 s → 101 s billed.
    const report = oneTask({ stop: 130.2, startupSeconds: 40, pullStartSeconds: 30 });
    expect(report.fargateCostPer1k.vcpu).toBeCloseTo(perHour(101) * 0.04048 * 1000, 4);
  });

  it('bills memory by the GB-hour beside the vCPU', () => {
    const report = oneTask({ stop: 3600, vcpu: 2, memoryGb: 8 });
    expect(report.fargateCostPer1k).toMatchObject({
      vcpu: round4(2 * 0.04048 * 1000),
      memory: round4(8 * 0.004445 * 1000),
      onDemand: report.fargateCostPer1k.total,
    });
    expect(report.fargateCostPer1k.total).toBeCloseTo((2 * 0.04048 + 8 * 0.004445) * 1000, 3);
    expect(report.totalCostPer1k).toBeCloseTo(report.fargateCostPer1k.total + report.orchestrationCostPer1k.total, 4);
  });

  it('prices Spot below On-Demand, each task at its class', () => {
    const onDemand = oneTask({ stop: 3600, memoryGb: 2 });
    const spot = oneTask({ stop: 3600, memoryGb: 2, provider: 'FARGATE_SPOT' });
    expect(spot.fargateCostPer1k).toMatchObject({ onDemand: 0, spot: spot.fargateCostPer1k.total });
    expect(spot.fargateCostPer1k.total).toBeCloseTo(onDemand.fargateCostPer1k.total * 0.3, 3);
  });

  it('reports start-up p50 / p99, and counts it in the bound: a task holds its vCPU from RunTask', () => {
    const report = oneTask({ stop: 100, startupSeconds: 40, pullStartSeconds: 9.6 });
    expect(report.startup).toEqual({ p50: 40, p99: 40, samples: 1 });
    // (40 s start-up + 60 s run) × 1 vCPU; the launch-rate term's one task takes the same 100 s.
    expect(report.lowerBoundSeconds).toBe(100);
    expect(report.lowerBoundFormula).toContain('shortest task (start-up + run)');
  });
});

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

describe('report: the shared account, leaks and duplicates', () => {
  const start = (fields: Record<string, unknown> = {}) =>
    e(0, 'start', {
      design: 'sluice',
      stage: 'prod',
      seed: 1,
      budgetVcpu: 100,
      launchRatePerSecond: 1000,
      launchBurst: 20,
      accountVcpuQuota: 120,
      accountVcpuQuotas: { onDemand: 120, spot: 120 },
      classWeights: { onDemand: 1 },
      ...fields,
    });

  it('bounds the makespan by the free quota (quota − others, in the classes the stage uses), not the budget alone', () => {
    const report = computeReport([
      start(),
      e(0, 'background', { class: 'onDemand', vcpu: 50 }),
      // Spot is not the stage's class: others there change nothing.
      e(0, 'background', { class: 'spot', vcpu: 120 }),
      e(0, 'arrive', { jobId: 'a' }),
      e(0, 'arrive', { jobId: 'b' }),
      e(0, 'taskStart', { jobId: 'a', taskArn: 't1', vcpu: 70, provider: 'FARGATE' }),
      e(50, 'taskStop', { jobId: 'a', taskArn: 't1', vcpu: 70, exitCode: 0 }),
      e(50, 'jobDone', { jobId: 'a', status: 'succeeded' }),
      e(50, 'taskStart', { jobId: 'b', taskArn: 't2', vcpu: 70, provider: 'FARGATE' }),
      e(100, 'taskStop', { jobId: 'b', taskArn: 't2', vcpu: 70, exitCode: 0 }),
      e(100, 'jobDone', { jobId: 'b', status: 'succeeded' }),
      e(100, 'end', { stoppedBy: 'settled' }),
    ]);
    // 7,000 vCPU-s under min(100, 120 − 50) = 70 vCPU: 100 s (the budget alone would say 70 s).
    expect(report.lowerBoundSeconds).toBe(100);
    expect(report.lowerBoundOnBudgetSeconds).toBe(70);
    expect(report.lowerBoundFormula).toContain('/ min(budget, free quota) = 7000 / 70 = 100 s');
    expect(report.makespanRatio).toBe(1);
    expect(report.peakAccountVcpu).toEqual({ onDemand: 120, spot: 120 });
  });

  it('serves the work under the free quota as it changes over time, with others at what they wanted', () => {
    const report = computeReport([
      start(),
      e(0, 'background', { class: 'onDemand', vcpu: 20 }),
      e(0, 'arrive', { jobId: 'a' }),
      e(0, 'arrive', { jobId: 'b' }),
      e(0, 'taskStart', { jobId: 'a', taskArn: 't1', vcpu: 100, provider: 'FARGATE' }),
      // Others want 100 from t = 40 while the stage holds its 100: they keep the 20 the quota leaves them until it stops.
      e(40, 'background', { class: 'onDemand', vcpu: 20, wantedVcpu: 100 }),
      e(50, 'taskStop', { jobId: 'a', taskArn: 't1', vcpu: 100, exitCode: 0 }),
      e(50, 'background', { class: 'onDemand', vcpu: 100 }),
      e(50, 'taskStart', { jobId: 'b', taskArn: 't2', vcpu: 20, provider: 'FARGATE' }),
      e(100, 'taskStop', { jobId: 'b', taskArn: 't2', vcpu: 20, exitCode: 0 }),
      e(100, 'end', { stoppedBy: 'settled' }),
    ]);
    // The free quota follows what others want: 100 vCPU for 40 s (4,000), then 120 − 100 = 20 for the other 2,000.
    expect(report.lowerBoundSeconds).toBe(140);
    expect(report.lowerBoundFormula).toContain('served under min(budget 100, free quota) = 20–100 vCPU over time → 140 s');
    expect(report.lowerBoundOnBudgetSeconds).toBe(60);
    expect(report.peakAccountVcpu.onDemand).toBe(120);
    expect(report.peakAccountVcpu.spot).toBe(0);
  });

  it('adds the classes the stage uses: 1:1 On-Demand and Spot leave it both classes’ free quota', () => {
    const report = computeReport([
      start({ classWeights: { onDemand: 1, spot: 1 } }),
      e(0, 'background', { class: 'onDemand', vcpu: 100 }),
      e(0, 'background', { class: 'spot', vcpu: 110 }),
      e(0, 'arrive', { jobId: 'a' }),
      e(0, 'arrive', { jobId: 'b' }),
      e(0, 'taskStart', { jobId: 'a', taskArn: 't1', vcpu: 10, provider: 'FARGATE_SPOT' }),
      e(0, 'taskStart', { jobId: 'b', taskArn: 't2', vcpu: 20, provider: 'FARGATE' }),
      e(100, 'taskStop', { jobId: 'a', taskArn: 't1', vcpu: 10, exitCode: 0 }),
      e(100, 'taskStop', { jobId: 'b', taskArn: 't2', vcpu: 20, exitCode: 0 }),
      e(100, 'end', {}),
    ]);
    // 3,000 vCPU-s under (120 − 100) + (120 − 110) = 30 vCPU.
    expect(report.lowerBoundSeconds).toBe(100);
    expect(report.lowerBoundFormula).toContain('3000 / 30 = 100 s');
    expect(report.peakAccountVcpu).toEqual({ onDemand: 120, spot: 120 });
  });

  it('takes the effective budget over time from budget events (time-weighted), else the configured budget', () => {
    const base = [start(), e(0, 'arrive', { jobId: 'a' })];
    const withBudget = computeReport([
      ...base,
      e(0, 'budget', { effectiveVcpu: 100 }),
      e(10, 'budget', { effectiveVcpu: 40 }),
      e(70, 'budget', { effectiveVcpu: 100 }),
      e(100, 'end', {}),
    ]);
    // 100 for 10 s, 40 for 60 s, 100 for 30 s.
    expect(withBudget.effectiveBudget).toEqual({ min: 40, median: 40 });
    const mostlyFull = computeReport([...base, e(0, 'budget', { effectiveVcpu: 100 }), e(80, 'budget', { effectiveVcpu: 30 }), e(100, 'end', {})]);
    expect(mostlyFull.effectiveBudget).toEqual({ min: 30, median: 100 });
    expect(computeReport([...base, e(100, 'end', {})]).effectiveBudget).toEqual({ min: 100, median: 100 });
  });

  it('measures leaks per batch (an open one lasts until the end) and counts jobs run twice', () => {
    const report = computeReport([
      start(),
      ...['x', 'y', 'z'].map((jobId) => e(0, 'arrive', { jobId })),
      // x: two tasks exited 0, one after the other.
      e(0, 'taskStart', { jobId: 'x', taskArn: 'x1', vcpu: 1 }),
      e(10, 'taskStop', { jobId: 'x', taskArn: 'x1', vcpu: 1, exitCode: 0 }),
      e(20, 'taskStart', { jobId: 'x', taskArn: 'x2', vcpu: 1 }),
      e(30, 'taskStop', { jobId: 'x', taskArn: 'x2', vcpu: 1, exitCode: 0 }),
      // y: two tasks at once, one failed.
      e(0, 'taskStart', { jobId: 'y', taskArn: 'y1', vcpu: 1 }),
      e(5, 'taskStart', { jobId: 'y', taskArn: 'y2', vcpu: 1 }),
      e(20, 'taskStop', { jobId: 'y', taskArn: 'y1', vcpu: 1, exitCode: 75 }),
      e(25, 'taskStop', { jobId: 'y', taskArn: 'y2', vcpu: 1, exitCode: 0 }),
      // z: a retry that starts as the first attempt stops — once.
      e(0, 'taskStart', { jobId: 'z', taskArn: 'z1', vcpu: 1 }),
      e(10, 'taskStop', { jobId: 'z', taskArn: 'z1', vcpu: 1, exitCode: 75 }),
      e(10, 'taskStart', { jobId: 'z', taskArn: 'z2', vcpu: 1 }),
      e(20, 'taskStop', { jobId: 'z', taskArn: 'z2', vcpu: 1, exitCode: 0 }),
      e(10, 'leakStart', { batch: 'b1' }),
      e(15, 'leakStart', { batch: 'b1' }),
      e(40, 'leakEnd', { batch: 'b1' }),
      e(50, 'leakStart', { batch: 'b2' }),
      e(60, 'leak', { jobId: 'x', since: 5, releasedAt: 20 }),
      e(100, 'end', {}),
    ]);
    expect(report.jobsRunMoreThanOnce).toBe(1);
    expect(report.jobsRunTwice).toBe(2);
    expect(report.jobsWithRetries).toBe(3);
    // b1 30 s (from its first start), b2 still open at 100: 50 s, the leak event 15 s.
    expect(report.maxLeakSeconds).toBe(50);
    expect(report.leaks).toBe(3);
    expect(computeReport([start(), e(0, 'arrive', { jobId: 'a' })]).maxLeakSeconds).toBe(0);
  });

  it('counts RunTask refusals by kind, write units per object, and the injected faults', () => {
    const report = computeReport([
      start(),
      ...['a', 'b'].map((jobId) => e(0, 'arrive', { jobId })),
      e(0, 'runTask', { jobId: 'a' }),
      e(0, 'vcpuLimit', { jobId: 'a', source: 'FARGATE' }),
      e(1, 'runTask', { jobId: 'a' }),
      e(1, 'invalidParameter', { jobId: 'a' }),
      e(2, 'runTask', { jobId: 'a' }),
      e(2, 'invalidParameter', { jobId: 'a' }),
      e(3, 'runTask', { jobId: 'b' }),
      e(3, 'crash', { function: 'dispatcher', call: 3, of: 10 }),
      e(3, 'crash', { function: 'janitor', call: 1, of: 2 }),
      e(3, 'injectedFault', { fault: 'startExecutionError' }),
      e(3, 'injectedFault', { fault: 'dynamodbThrottle' }),
      e(3, 'injectedFault', { fault: 'dynamodbThrottle' }),
      e(4, 'meter', { ddbWriteUnits: 30, ddbWrites: 3 }),
    ]);
    expect(report).toMatchObject({
      runTaskCalls: 4,
      vcpuLimitErrors: 1,
      vcpuLimitShareOfRunTaskCalls: 0.25,
      invalidParameterErrors: 2,
      writeUnitsPerObject: 15,
    });
    expect(report.injectedFaults).toEqual({
      dispatcherCrashes: 1,
      janitorCrashes: 1,
      startExecutionErrors: 1,
      startExecutionLostAnswers: 0,
      dynamodbThrottles: 2,
    });
  });
});

describe('chart', () => {
  it('draws the effective budget over time and the quota the stage can use (quota − others, over its classes)', () => {
    const events = [
      e(0, 'start', {
        design: 'sluice',
        budgetVcpu: 100,
        accountVcpuQuota: 120,
        accountVcpuQuotas: { onDemand: 120, spot: 120 },
        classWeights: { onDemand: 1, spot: 1 },
      }),
      e(0, 'background', { class: 'onDemand', vcpu: 50 }),
      e(0, 'background', { class: 'spot', vcpu: 50 }),
      e(0, 'budget', { effectiveVcpu: 100 }),
      e(500, 'budget', { effectiveVcpu: 40 }),
      e(1000, 'end', {}),
    ];
    const svg = renderChart(events, computeReport(events));
    // (120 − 50) × 2 classes; the budget steps, so it is labelled as effective.
    expect(svg).toContain('>usable quota 140<');
    expect(svg).toContain('>effective budget (100 configured)<');
    const budgetPath = /<path d="([^"]+)" fill="none" stroke="#d62728"/.exec(svg)![1];
    const ys = new Set(
      budgetPath
        .split(/[ML]/)
        .filter(Boolean)
        .map((p) => p.split(',')[1]),
    );
    expect(ys.size).toBe(2);
  });
});

describe('scenario validation', () => {
  it('reads background, invalidParameter, faults and overrides.accountVcpuQuota, with defaults', () => {
    const s = parseScenario({
      objects: { burst: 1 },
      background: {
        onDemand: [
          { atSeconds: 0, vcpu: 50 },
          { atSeconds: 600, vcpu: 80 },
        ],
      },
      rates: { invalidParameter: 0.2 },
      faults: { dispatcherCrash: 0.05 },
      overrides: { accountVcpuQuota: 4500 },
    });
    expect(s.background).toEqual({
      onDemand: [
        { atSeconds: 0, vcpu: 50 },
        { atSeconds: 600, vcpu: 80 },
      ],
      spot: [],
    });
    expect(s.rates.invalidParameter).toBe(0.2);
    expect(s.faults).toEqual({ dispatcherCrash: 0.05, janitorCrash: 0, startExecutionError: 0, startExecutionLostAnswer: 0, dynamodbThrottle: 0 });
    expect(s.overrides.accountVcpuQuota).toBe(4500);
    const plain = parseScenario({ objects: { burst: 1 } });
    expect(plain.background).toEqual({ onDemand: [], spot: [] });
    expect(plain.rates.invalidParameter).toBe(0);
    expect(plain.faults).toEqual({ dispatcherCrash: 0, janitorCrash: 0, startExecutionError: 0, startExecutionLostAnswer: 0, dynamodbThrottle: 0 });
    expect(plain.overrides.accountVcpuQuota).toBeUndefined();
  });

  it.each([
    [
      {
        background: {
          onDemand: [
            { atSeconds: 60, vcpu: 5 },
            { atSeconds: 30, vcpu: 1 },
          ],
        },
      },
      /background\.onDemand\.1\.atSeconds: must be after the previous step's atSeconds \(60\)/,
    ],
    [
      {
        background: {
          spot: [
            { atSeconds: 0, vcpu: 5 },
            { atSeconds: 0, vcpu: 1 },
          ],
        },
      },
      /background\.spot\.1\.atSeconds: must be after/,
    ],
    [{ background: { spot: [{ atSeconds: -1, vcpu: 5 }] } }, /background\.spot\.0\.atSeconds: must be ≥ 0 seconds/],
    [{ background: { onDemand: [{ atSeconds: 0, vcpu: -5 }] } }, /background\.onDemand\.0\.vcpu: must be ≥ 0 vCPU/],
    [{ background: { onDemand: [{ atSeconds: 0, vcpu: 5, class: 'x' }] } }, /background\.onDemand\.0: Unrecognized key.*class/],
    [{ background: { fargate: [] } }, /background: Unrecognized key.*fargate/],
    [{ rates: { invalidParameter: 1.5 } }, /rates\.invalidParameter: must be a probability from 0 to 1/],
    [{ faults: { dispatcherCrash: -0.1 } }, /faults\.dispatcherCrash: must be a probability/],
    [{ faults: { janitorCrashes: 0.1 } }, /faults: Unrecognized key.*janitorCrashes/],
    [{ overrides: { accountVcpuQuota: 120.5 } }, /overrides\.accountVcpuQuota: must be a whole number ≥ 1/],
  ])('refuses bad new fields with their path: %j', (fields, message) => {
    expect(() => parseScenario({ objects: { burst: 1 }, ...fields })).toThrow(message);
  });

  it('rejects unknown fields and bad values with their path', () => {
    expect(() => parseScenario({ objects: { burst: 10 }, rates: { failure: 2 }, colour: 'red' })).toThrow(
      /rates\.failure: must be a probability from 0 to 1[\s\S]*Unrecognized key.*colour|colour[\s\S]*rates\.failure/,
    );
    expect(() => parseScenario({ objects: { burst: 0 } })).toThrow(/objects: must bring at least one object/);
  });

  // The scenarios' budgets are stage configs' now, not derived from the account: each is valid where the stage's own
  // accountVcpuQuota holds its budget, and refused for exactly that elsewhere.
  it.each(readdirSync(join(__dirname, '../../twin/scenarios')))(
    'the shipped scenario %s is valid on prod, and elsewhere unless its budget is over the stage quota',
    (file) => {
      const scenario = loadScenario(join(__dirname, '../../twin/scenarios', file));
      expect(stageWithOverrides('prod', scenario).stage).toBe('prod');
      for (const stage of ['dev', 'stg']) {
        try {
          expect(stageWithOverrides(stage, scenario).stage).toBe(stage);
        } catch (error) {
          // Refused for its budget only: over the stage quota, or (stg packs a route) past the leases a sweep checks.
          const [, ...problems] = (error as Error).message.split('\n');
          expect(problems.length).toBeGreaterThan(0);
          for (const problem of problems)
            expect(problem).toMatch(/capacity\.vcpuBudget: (must not exceed capacity\.accountVcpuQuota|.* leases a janitor sweep can check)/);
        }
      }
    },
  );

  it('the stage keeps its own accountVcpuQuota: a budget above the scenario quota is accepted, one above the stage quota is not', () => {
    const above = parseScenario({ objects: { burst: 1 }, quotas: { fargateVcpu: 50 }, overrides: { vcpuBudget: 100 } });
    const prod = stageWithOverrides('prod', above);
    expect(prod.capacity).toMatchObject({ accountVcpuQuota: 400, vcpuBudget: 100 });
    expect(() => stageWithOverrides('dev', above)).toThrow(/capacity\.vcpuBudget: must not exceed capacity\.accountVcpuQuota \(6 vCPU\)/);
    const told = parseScenario({ objects: { burst: 1 }, overrides: { accountVcpuQuota: 200, vcpuBudget: 100 } });
    expect(stageWithOverrides('dev', told).capacity).toMatchObject({ accountVcpuQuota: 200, vcpuBudget: 100 });
  });

  it('overrides go through the stage schema: a pool too large for a janitor sweep is refused', () => {
    const huge = parseScenario({ objects: { burst: 1 }, task: { vcpu: 0.25 }, overrides: { accountVcpuQuota: 10000, vcpuBudget: 6000 } });
    expect(() => stageWithOverrides('dev', huge)).toThrow(/capacity\.vcpuBudget: 6000 vCPU of 0\.25-vCPU tasks is 24000 concurrent tasks/);
  });

  it('takes start-up as seconds or a lognormal, defaulting to a lognormal of median 35 s', () => {
    expect(parseScenario({ objects: { burst: 1 } }).task.startupSeconds).toEqual({ kind: 'lognormal', medianSeconds: 35, sigma: 0.3 });
    expect(parseScenario({ objects: { burst: 1 }, task: { vcpu: 1 } }).task.startupSeconds).toEqual(DEFAULT_STARTUP);
    expect(parseScenario({ objects: { burst: 1 }, task: { startupSeconds: 0 } }).task.startupSeconds).toBe(0);
    const drawn = { kind: 'lognormal', medianSeconds: 40, sigma: 0.5 };
    expect(parseScenario({ objects: { burst: 1 }, task: { startupSeconds: drawn } }).task.startupSeconds).toEqual(drawn);
  });

  it.each([
    [-1, /task\.startupSeconds: must be 0–600 seconds/],
    [601, /task\.startupSeconds: must be 0–600 seconds/],
    [{ kind: 'lognormal', medianSeconds: 0, sigma: 0.3 }, /task\.startupSeconds\.medianSeconds: must be above 0/],
    [{ kind: 'lognormal', medianSeconds: 35, sigma: 4 }, /task\.startupSeconds\.sigma: sigma must be 0–3/],
    [{ kind: 'lognormal', medianSeconds: 35 }, /task\.startupSeconds: must be a number of seconds \(0–600\) or \{ kind: 'lognormal'/],
    [{ kind: 'fixed', seconds: 30 }, /task\.startupSeconds: must be a number of seconds/],
    ['35', /task\.startupSeconds: must be a number of seconds/],
  ])('refuses start-up %j with its path', (startupSeconds, message) => {
    expect(() => parseScenario({ objects: { burst: 1 }, task: { startupSeconds } })).toThrow(message);
  });

  it('fills defaults: AWS quotas and buckets', () => {
    const s = parseScenario({ objects: { burst: 1 } });
    expect(s.quotas).toMatchObject({
      ecsApi: { burst: 100, refillPerSecond: 40 },
      fargateRunTaskPerSecond: 20,
      fargateLaunch: { burst: 100, refillPerSecond: 20 },
      startExecution: { burst: 1300, refillPerSecond: 300 },
    });
  });
});

describe('LeakWatch', () => {
  it('sees a lease taken for an execution that had already ended: nothing will give it back, it leaks from then', () => {
    const events: Array<{ type: string; batch: string }> = [];
    const state: Record<string, 'none' | 'running' | 'ended'> = { closed: 'ended', live: 'running' };
    const watch = new LeakWatch({ emit: (type, data) => events.push({ type, batch: data.batch }) }, (batch) => state[batch] ?? 'none');
    watch.leaseChanged('j1', 'live');
    watch.leaseChanged('j2', 'closed');
    expect(events).toEqual([{ type: 'leakStart', batch: 'closed' }]);
    expect(watch.open()).toEqual(['closed']);
    watch.leaseChanged('j2', undefined);
    expect(events).toEqual([
      { type: 'leakStart', batch: 'closed' },
      { type: 'leakEnd', batch: 'closed' },
    ]);
  });
});
