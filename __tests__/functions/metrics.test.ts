import { EVENT_METRICS, METRICS_DIMENSION, METRICS_NAMESPACE, withMetrics } from '../../functions/metrics';
import { jsonLog } from '../../functions/runtime';
import type { LogEvent } from '../../functions/log-events';

/**
 * What CloudWatch requires of an Embedded Metric Format line ("Specification: Embedded metric format"): an `_aws`
 * object with a millisecond Timestamp and CloudWatchMetrics directives; each directive a Namespace, Dimensions as
 * arrays of at most 30 root keys whose values are strings, and at most 100 Metrics, each named by a root key whose
 * value is a number, with a known Unit. Returns every problem.
 */
function emfProblems(line: string): string[] {
  const problems: string[] = [];
  const root = JSON.parse(line) as Record<string, any>;
  const aws = root._aws;
  if (!aws || typeof aws.Timestamp !== 'number') return ['_aws.Timestamp must be a number of milliseconds'];
  if (!Array.isArray(aws.CloudWatchMetrics) || aws.CloudWatchMetrics.length === 0) return ['_aws.CloudWatchMetrics must be a non-empty array'];
  for (const directive of aws.CloudWatchMetrics) {
    if (typeof directive.Namespace !== 'string' || directive.Namespace.length === 0) problems.push('Namespace must be a string');
    for (const set of directive.Dimensions ?? []) {
      if (!Array.isArray(set) || set.length > 30) problems.push('a dimension set must be an array of at most 30 keys');
      for (const key of set) if (typeof root[key] !== 'string') problems.push(`dimension ${key} must be a string at the root`);
    }
    if (!Array.isArray(directive.Metrics) || directive.Metrics.length > 100) problems.push('Metrics must be an array of at most 100');
    for (const metric of directive.Metrics ?? []) {
      if (typeof root[metric.Name] !== 'number') problems.push(`metric ${metric.Name} must be a number at the root`);
      if (!['Count', 'None', 'Seconds', 'Milliseconds'].includes(metric.Unit)) problems.push(`metric ${metric.Name} has unit ${metric.Unit}`);
    }
  }
  return problems;
}

const dispatcherDone: LogEvent = {
  event: 'dispatcherDone',
  admitted: 20,
  executionsStarted: 2,
  poison: 1,
  duplicates: 0,
  deferred: 3,
  waits: 4,
  reclaimed: 0,
  stoppedBecause: 'no-budget',
  ms: 812,
};
const janitorDone: LogEvent & { event: 'janitorDone' } = {
  event: 'janitorDone',
  batches: 3,
  settled: 3,
  released: 2,
  sweptLeases: 1,
  requeued: 2,
  failed: 0,
  jobsSucceeded: 5,
  jobsFailed: 1,
  stillRunning: 1,
  drift: null,
  repaired: false,
};
const capacityRead: LogEvent = { event: 'capacityRead', freeVcpu: 70, budgetVcpu: 100, effectiveVcpu: 70, inUseVcpu: 42, classes: {}, changed: true };

describe('the functions’ metrics, in Embedded Metric Format', () => {
  test.each([
    [
      'dispatcher',
      dispatcherDone,
      { JobsAdmitted: 20, ExecutionsStarted: 2, PoisonMessages: 1, HeldLeaseDeferrals: 3, TokenWaits: 4, StoppedByBudget: 1, StoppedByAccount: 0 },
    ],
    ['janitor', janitorDone, { LeasesReclaimed: 2, LeasesFoundBySweep: 1, JobsRequeued: 2, JobsFailedByJanitor: 0 }],
    ['capacity', capacityRead, { AccountFreeVcpu: 70, ConfiguredBudgetVcpu: 100, EffectiveBudgetVcpu: 70, InUseVcpu: 42 }],
  ])('the %s summary is a valid EMF line carrying its numbers', (_fn, event, expected) => {
    // Straight to stdout, one line: console.log would be wrapped by Lambda's JSON log format, hiding `_aws`.
    const lines: string[] = [];
    const log = jsonLog('x', 'sluice-prod-x');
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => (lines.push(String(chunk)), true));
    const consoleLog = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      log(event);
    } finally {
      stdout.mockRestore();
      consoleLog.mockRestore();
    }
    expect(consoleLog).not.toHaveBeenCalled();
    expect(lines).toHaveLength(1);
    expect(lines[0].endsWith('\n')).toBe(true);
    expect(emfProblems(lines[0])).toEqual([]);
    const root = JSON.parse(lines[0]);
    expect(root).toMatchObject({ ...event, ...expected, component: 'x', [METRICS_DIMENSION]: 'sluice-prod-x' });
    expect(root._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: METRICS_NAMESPACE, Dimensions: [[METRICS_DIMENSION]] });
    const declared = root._aws.CloudWatchMetrics[0].Metrics.map((m: { Name: string }) => m.Name);
    expect(declared).toEqual(expect.arrayContaining(Object.keys(expected)));
  });

  test('a value that could not be measured is left out, not sent as null', () => {
    const line = withMetrics(janitorDone, 'sluice-prod-janitor', 1);
    expect(line).not.toHaveProperty('CounterDriftVcpu');
    expect((line._aws as any).CloudWatchMetrics[0].Metrics.map((m: { Name: string }) => m.Name)).not.toContain('CounterDriftVcpu');
    expect(withMetrics({ ...janitorDone, drift: 0.5 }, 'f', 1)).toMatchObject({ CounterDriftVcpu: 0.5 });
  });

  test('other events, and runs outside Lambda (no function name to dimension by), are logged as they are', () => {
    expect(withMetrics({ event: 'admitted', jobs: 3 }, 'sluice-prod-dispatcher', 1)).toEqual({ event: 'admitted', jobs: 3 });
    expect(withMetrics(dispatcherDone, undefined, 1)).toEqual(dispatcherDone);
  });

  test('every metric of a summary is sent as a number', () => {
    const routeUse = { event: 'routeUse', route: 'urgent', inUseVcpu: 3 };
    const summaries: Record<string, Record<string, unknown>> = { dispatcherDone, janitorDone: { ...janitorDone, drift: 0 }, capacityRead, routeUse };
    for (const [event, metrics] of Object.entries(EVENT_METRICS)) {
      const line = withMetrics(summaries[event], 'f', 1);
      for (const name of Object.keys(metrics)) expect({ event, name, value: typeof line[name] }).toEqual({ event, name, value: 'number' });
    }
  });
});

test("a route's use is a metric of its own: the function's name and the route's as its dimensions", () => {
  const line = withMetrics({ event: 'routeUse', route: 'urgent', inUseVcpu: 3 }, 'sluice-stg-capacity', 1);
  expect(line).toMatchObject({ RouteInUseVcpu: 3, Route: 'urgent', [METRICS_DIMENSION]: 'sluice-stg-capacity' });
  expect((line._aws as any).CloudWatchMetrics).toEqual([
    { Namespace: METRICS_NAMESPACE, Dimensions: [[METRICS_DIMENSION, 'Route']], Metrics: [{ Name: 'RouteInUseVcpu', Unit: 'None' }] },
  ]);
});
