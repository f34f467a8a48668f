/**
 * The metrics only the functions know, in CloudWatch Embedded Metric Format: the run's summary log line carries an
 * `_aws` block, and CloudWatch Logs turns its numbers into metrics — no PutMetricData call, no extra latency, and the
 * line stays the structured log it was. One table (EVENT_METRICS) names them for the functions and the dashboard.
 */

export const METRICS_NAMESPACE = 'Sluice';

/**
 * The stage's own namespace, `Sluice/<prefix>`, for the metrics that cannot carry a dimension to tell stages apart:
 * a metric filter cannot add a constant one, and the worker's start-up has none.
 */
export function stageMetricsNamespace(namePrefix: string): string {
  return `${METRICS_NAMESPACE}/${namePrefix}`;
}
/** Each function's metrics carry its name: unique per account and Region, and what the dashboard knows at synth. */
export const METRICS_DIMENSION = 'FunctionName';

import type { DispatcherRunSummary, JanitorRunSummary } from './log-events';

type Event = Record<string, unknown>;
/** A metric: where its value comes from in the event, and its unit. */
interface MetricSource {
  readonly value: (event: Event) => number | undefined;
  readonly unit: 'Count' | 'None';
}

const field = (name: string, unit: MetricSource['unit'] = 'Count'): MetricSource => ({
  value: (event) => (typeof event[name] === 'number' ? (event[name] as number) : undefined),
  unit,
});
/** Fields of the summaries, checked by the compiler: a renamed field cannot leave its metric silently empty. */
const dispatcherField = (name: keyof DispatcherRunSummary & string) => field(name);
const janitorField = (name: keyof JanitorRunSummary & string, unit?: MetricSource['unit']) => field(name, unit);
const stoppedBecause = (reason: DispatcherRunSummary['stoppedBecause']): MetricSource => ({
  value: (event) => (event.stoppedBecause === reason ? 1 : 0),
  unit: 'Count',
});

/** Per summary event: the metrics it carries, by metric name. */
export const EVENT_METRICS = {
  dispatcherDone: {
    JobsAdmitted: dispatcherField('admitted'),
    ExecutionsStarted: dispatcherField('executionsStarted'),
    PoisonMessages: dispatcherField('poison'),
    DuplicateDeliveries: dispatcherField('duplicates'),
    /** Messages handed back because their job still held a lease. */
    HeldLeaseDeferrals: dispatcherField('deferred'),
    /** Sleeps for a launch token or a fuller batch. */
    TokenWaits: dispatcherField('waits'),
    /** Runs that stopped with work waiting because the budget, or the account, was full. */
    StoppedByBudget: stoppedBecause('no-budget'),
    StoppedByAccount: stoppedBecause('account-full'),
    UnstartedBatchesReclaimed: dispatcherField('reclaimed'),
  },
  janitorDone: {
    /** Leases held for executions that had ended or never started, given back. */
    LeasesReclaimed: janitorField('released'),
    /** Of those, the ones the sweep found: nothing told the janitor, so they held capacity for up to a period. */
    LeasesFoundBySweep: janitorField('sweptLeases'),
    JobsRequeued: janitorField('requeued'),
    JobsFailedByJanitor: janitorField('failed'),
    /** Outcomes of settled batches: up to a janitor period after the jobs ended. */
    JobsSucceeded: janitorField('jobsSucceeded'),
    JobsFailed: janitorField('jobsFailed'),
    CounterDriftVcpu: janitorField('drift', 'None'),
  },
  capacityRead: {
    AccountFreeVcpu: field('freeVcpu', 'None'),
    ConfiguredBudgetVcpu: field('budgetVcpu', 'None'),
    EffectiveBudgetVcpu: field('effectiveVcpu', 'None'),
    InUseVcpu: field('inUseVcpu', 'None'),
  },
  /** One line per route, each minute, on a stage with routes: its own dimension, `Route`. */
  routeUse: {
    RouteInUseVcpu: field('inUseVcpu', 'None'),
  },
} satisfies Record<string, Record<string, MetricSource>>;

/** The dimension a route's metrics carry: the route's name. */
export const ROUTE_DIMENSION = 'Route';

/** Dimensions an event's metrics carry besides the function's name, each from a field of the event. */
const EVENT_DIMENSIONS: Partial<Record<keyof typeof EVENT_METRICS, Record<string, string>>> = { routeUse: { [ROUTE_DIMENSION]: 'route' } };

export type MetricName = { [E in keyof typeof EVENT_METRICS]: keyof (typeof EVENT_METRICS)[E] }[keyof typeof EVENT_METRICS];

/** The event, with its metrics in Embedded Metric Format when it is a summary that has some; otherwise as it is. */
export function withMetrics(event: Event, functionName: string | undefined, timestamp: number): Event {
  const sources = functionName ? (EVENT_METRICS as Record<string, Record<string, MetricSource>>)[String(event.event)] : undefined;
  if (!sources) return event;
  const values: Record<string, number> = {};
  const metrics: Array<{ Name: string; Unit: string }> = [];
  for (const [name, source] of Object.entries(sources)) {
    const value = source.value(event);
    if (value === undefined || !Number.isFinite(value)) continue; // e.g. drift that could not be measured
    values[name] = value;
    metrics.push({ Name: name, Unit: source.unit });
  }
  const extra = Object.entries(EVENT_DIMENSIONS[String(event.event) as keyof typeof EVENT_METRICS] ?? {}).map(([name, from]) => [name, String(event[from])]);
  return {
    ...event,
    ...values,
    ...Object.fromEntries(extra),
    [METRICS_DIMENSION]: functionName,
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [{ Namespace: METRICS_NAMESPACE, Dimensions: [[METRICS_DIMENSION, ...extra.map(([name]) => name)]], Metrics: metrics }],
    },
  };
}
