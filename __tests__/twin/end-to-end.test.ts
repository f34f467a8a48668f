import { computeReport } from '../../twin/report';
import { parseScenario } from '../../twin/scenario';
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
    // Not vacuous: tasks failed and were retried, and poison went to the DLQ.
    expect(first.events.filter((e) => e.type === 'taskStop' && e.exitCode === 75).length).toBeGreaterThan(0);
    expect(first.report.dlq).toBeGreaterThan(0);
  });
});
