import { computeReport } from '../../twin/report';
import { loadScenario, parseScenario } from '../../twin/scenario';
import { simulate } from '../../twin/simulate';

/** A tiny scenario through each design: 8 objects at once, 60 s tasks, dev stage (budget 4 of a 6 vCPU quota). */
const scenario = parseScenario({ seed: 7, objects: { burst: 8 }, task: { duration: { kind: 'fixed', seconds: 60 } }, rates: { poison: 0 } });

describe('the twin end to end (tiny scenario)', () => {
  it('naive: no limiter, so RunTask runs into the vCPU quota and jobs fail', async () => {
    const { report, events } = await simulate({ stage: 'dev', scenario, design: 'naive' });
    expect(report.objects).toBe(8);
    expect(report.lost).toBe(0);
    expect(report.vcpuLimitErrors).toBeGreaterThan(0);
    expect(report.peakVcpu).toBeLessThanOrEqual(6);
    expect(report.failed).toBeGreaterThan(0);
    // The report is a pure function of the events: recomputing gives the same figures.
    const { wallSeconds: _wall, ...figures } = report;
    expect(computeReport(events)).toEqual(figures);
  });

  it('semaphore: holds the budget, finishes everything, and pays for waiting in transitions', async () => {
    const { report } = await simulate({ stage: 'dev', scenario, design: 'semaphore' });
    expect(report).toMatchObject({ objects: 8, succeeded: 8, failed: 0, lost: 0 });
    expect(report.peakVcpu).toBeLessThanOrEqual(4);
    // 4 executions wait ~60 s polling every 3 s: far more transitions than the 4–5 a job needs.
    expect(report.stateTransitions).toBeGreaterThan(8 * 10);
  });

  it('sluice: the synthesized pipeline holds the budget and loses nothing', async () => {
    const { report } = await simulate({ stage: 'dev', scenario, design: 'sluice' });
    expect(report).toMatchObject({ objects: 8, succeeded: 8, failed: 0, lost: 0, dlq: 0 });
    expect(report.peakVcpu).toBeLessThanOrEqual(4);
  });

  // stg and prod deploy to other accounts: the stand-in ARNs must be theirs, or the dispatcher (whose state
  // machine ARN the stack builds from the stage's account) starts nothing and the backlog ends in the DLQ.
  it.each(['stg', 'prod'])('sluice on %s: every stage runs in the twin, not only dev', async (stage) => {
    const { report } = await simulate({ stage, scenario, design: 'sluice' });
    expect(report).toMatchObject({ objects: 8, succeeded: 8, failed: 0, lost: 0, dlq: 0 });
  });

  it('sluice: start-up is drawn per task and held as task time: the bound and the makespan count it', async () => {
    const run = (startupSeconds: number | { kind: 'lognormal'; medianSeconds: number; sigma: number }) =>
      simulate({ stage: 'dev', scenario: { ...scenario, task: { ...scenario.task, startupSeconds } }, design: 'sluice' });
    const instant = await run(0);
    const fixed = await run(30);
    const drawn = await run({ kind: 'lognormal', medianSeconds: 30, sigma: 0.5 });
    expect(instant.report.startup).toEqual({ p50: 0, p99: 0, samples: 8 });
    expect(fixed.report.startup).toEqual({ p50: 30, p99: 30, samples: 8 });
    expect(new Set(drawn.events.filter((e) => e.type === 'taskStart').map((e) => e.startupSeconds)).size).toBe(8);
    // 8 tasks of 60 s on a budget of 4: two waves, each 30 s longer with start-up, and the bound with them.
    expect(fixed.report.lowerBoundSeconds - instant.report.lowerBoundSeconds).toBeCloseTo(60, 0);
    expect(fixed.report.makespanSeconds - instant.report.makespanSeconds).toBeGreaterThan(55);
    expect(fixed.report.makespanRatio).toBeLessThan(1.1);
    // Billed: 60 s + the pull's 76 % of the start-up per task, vs the 1-minute minimum at instant start.
    expect(fixed.report.fargateCostPer1k.total / instant.report.fargateCostPer1k.total).toBeCloseTo((60 + 0.76 * 30) / 60, 2);
  });

  it('sluice: start-up draws come from a stream of their own: other draws do not shift them, another seed does', async () => {
    const startups = async (seed: number, duration: (typeof scenario)['task']['duration']) => {
      const { events } = await simulate({ stage: 'dev', scenario: { ...scenario, seed, task: { ...scenario.task, duration } }, design: 'sluice' });
      return events.filter((e) => e.type === 'taskStart').map((e) => e.startupSeconds);
    };
    const fixed = await startups(7, { kind: 'fixed', seconds: 60 });
    // A uniform duration draws from the objects' stream (fixed draws nothing there): the start-ups stay the same.
    expect(await startups(7, { kind: 'uniform', minSeconds: 50, maxSeconds: 70 })).toEqual(fixed);
    expect(await startups(8, { kind: 'fixed', seconds: 60 })).not.toEqual(fixed);
  });

  it('sluice: the same seed gives the same events, noise included', async () => {
    const noisy = parseScenario({
      seed: 3,
      objects: { burst: 12 },
      task: { duration: { kind: 'uniform', minSeconds: 30, maxSeconds: 90 } },
      rates: { failure: 0.2, duplicate: 0.3, poison: 0.1 },
    });
    const first = await simulate({ stage: 'dev', scenario: noisy, design: 'sluice' });
    const second = await simulate({ stage: 'dev', scenario: noisy, design: 'sluice' });
    expect(second.events).toEqual(first.events);
    // Start-up (the default distribution) is part of what repeats.
    expect(first.report.startup.p50).toBeGreaterThan(20);
    // Not vacuous: tasks failed and were retried, and poison went to the DLQ.
    expect(first.events.filter((e) => e.type === 'taskStop' && e.exitCode === 75).length).toBeGreaterThan(0);
    expect(first.report.dlq).toBeGreaterThan(0);
  });

  it('sluice: its own parts failing loses nothing, runs nothing twice, and leaks leases only briefly, on every seed tried', async () => {
    // The faults scenario with its failures turned up; seeds are tried until one has left a batch between its
    // admission and its StartExecution (a leak the next dispatcher run gives back): every run must hold meanwhile.
    const base = loadScenario('twin/scenarios/faults.json');
    let leaked = 0;
    const fired = { dispatcherCrashes: 0, janitorCrashes: 0, dynamodbThrottles: 0 };
    for (let seed = 1; seed <= 8 && (leaked === 0 || Object.values(fired).includes(0)); seed++) {
      const scenario = {
        ...base,
        seed,
        faults: { dispatcherCrash: 0.3, janitorCrash: 0.3, startExecutionError: 0.05, startExecutionLostAnswer: 0.05, dynamodbThrottle: 0.02 },
      };
      const { report } = await simulate({ stage: 'prod', scenario, design: 'sluice' });
      expect({ ...report, seed }).toMatchObject({ seed, objects: 1000, succeeded: 1000, failed: 0, lost: 0, dlq: 0, jobsRunTwice: 0 });
      expect(report.peakVcpu).toBeLessThanOrEqual(100);
      for (const kind of Object.keys(fired) as Array<keyof typeof fired>) fired[kind] += report.injectedFaults[kind];
      // Such a batch is given back once its start grace (330 s) has passed: by the next dispatcher run, or at the
      // latest by the janitor's next sweep (every 300 s).
      expect(report.maxLeakSeconds).toBeLessThan(330 + 300 + 60);
      leaked += report.leaks;
    }
    // Not vacuous: every kind of fault fired, and a batch was left between its admission and its start.
    expect(Math.min(...Object.values(fired))).toBeGreaterThan(0);
    expect(leaked).toBeGreaterThan(0);
  }, 120_000);

  describe('sluice in a shared account: other workloads hold part of the quota', () => {
    const sharedAccount = (options: { classes: Array<'FARGATE' | 'FARGATE_SPOT'>; others: Array<{ atSeconds: number; vcpu: number }> }) =>
      parseScenario({
        seed: 2,
        objects: { burst: 40 },
        // Instant start: these tests are about sharing the quota, and their arithmetic counts run time only.
        task: { vcpu: 1, duration: { kind: 'fixed', seconds: 120 }, startupSeconds: 0 },
        quotas: { fargateVcpu: 12, fargateSpotVcpu: 12 },
        background: { onDemand: options.others, spot: options.others },
        overrides: { vcpuBudget: 10, launchRatePerSecond: 5, launchBurst: 5, capacityProviders: options.classes.map((name) => ({ name, weight: 1, base: 0 })) },
      });

    it('steady use by others: the stage fits in what is left and never meets the vCPU limit', async () => {
      const { report } = await simulate({
        stage: 'prod',
        scenario: sharedAccount({ classes: ['FARGATE'], others: [{ atSeconds: 0, vcpu: 8 }] }),
        design: 'sluice',
      });
      expect(report).toMatchObject({ objects: 40, succeeded: 40, failed: 0, lost: 0, vcpuLimitErrors: 0 });
      expect(report.peakAccountVcpu.onDemand).toBe(12);
      // What is left is 12 − 8 = 4 vCPU, used throughout: 40 tasks of 120 s take 1,200 s at least.
      expect(report.makespanSeconds).toBeLessThan(1200 * 1.05);
    });

    it('others grow between two measurements: only launches already under way meet the limit, and they come back', async () => {
      const others = [
        { atSeconds: 0, vcpu: 4 },
        { atSeconds: 300, vcpu: 9 },
      ];
      const { report } = await simulate({ stage: 'prod', scenario: sharedAccount({ classes: ['FARGATE'], others }), design: 'sluice' });
      expect(report).toMatchObject({ objects: 40, succeeded: 40, failed: 0, lost: 0 });
      expect(report.vcpuLimitErrors).toBeGreaterThan(0);
      // The first error holds the pool until the account is measured again: at most one launch burst (5) meets it.
      expect(report.vcpuLimitErrors).toBeLessThanOrEqual(5);
      expect(report.peakAccountVcpu.onDemand).toBeLessThanOrEqual(12);
    });

    // ECS places each standalone RunTask by weight on its own (nothing steers it to the class with room), so two
    // classes split the stage's tasks only roughly: the tighter class can meet its limit; those launches come back.
    it('two classes by weight: everything finishes, and neither class goes over its quota', async () => {
      const { report } = await simulate({
        stage: 'prod',
        scenario: sharedAccount({ classes: ['FARGATE', 'FARGATE_SPOT'], others: [{ atSeconds: 0, vcpu: 8 }] }),
        design: 'sluice',
      });
      expect(report).toMatchObject({ objects: 40, succeeded: 40, failed: 0, lost: 0 });
      expect(Math.max(report.peakAccountVcpu.onDemand, report.peakAccountVcpu.spot)).toBeLessThanOrEqual(12);
      // 4 free in each class: twice the room of one class, so well under the one-class 1,200 s.
      expect(report.makespanSeconds).toBeLessThan(900);
    });
  });
});
