/** The worker's metric: seconds from its RunTask state's start to the worker running (placement, image pull, start). */
export const TASK_STARTUP_METRIC = 'TaskStartupSeconds';
/** On a stage with routes the metric is also kept per route, under this dimension (the route's name). */
export const TASK_STARTUP_ROUTE_DIMENSION = 'Route';

/**
 * The task's start-up as a CloudWatch metric, in the embedded metric format: one JSON line on stdout, which
 * CloudWatch Logs turns into a datapoint of `TASK_STARTUP_METRIC` in `namespace` (raw values, so p50 and p99 can be
 * asked for). From the RunTask state's start to now, the worker running: placement, the image pull, the container's
 * and the runtime's start. With a route, the datapoint counts for the stage and for the route. Undefined without a
 * namespace or a state start to count from, or with a clock that runs behind the state's (a negative start-up is no
 * measurement).
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export function startupMetricLine(input: {
  namespace: string | undefined;
  stateEnteredAtMs: number | undefined;
  now: number;
  jobId: string;
  route?: string;
}): string | undefined {
  const { namespace, stateEnteredAtMs, now, jobId, route } = input;
  if (!namespace || stateEnteredAtMs === undefined || now < stateEnteredAtMs) return undefined;
  const dimensions = route ? [[], [TASK_STARTUP_ROUTE_DIMENSION]] : [[]];
  return JSON.stringify({
    _aws: { Timestamp: now, CloudWatchMetrics: [{ Namespace: namespace, Dimensions: dimensions, Metrics: [{ Name: TASK_STARTUP_METRIC, Unit: 'Seconds' }] }] },
    ...(route ? { [TASK_STARTUP_ROUTE_DIMENSION]: route } : {}),
    [TASK_STARTUP_METRIC]: Math.round(now - stateEnteredAtMs) / 1000,
    time: new Date(now).toISOString(),
    event: 'task-startup',
    jobId,
  });
}
