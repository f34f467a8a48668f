/** The worker's metric: seconds from its RunTask state's start to the worker running (placement, image pull, start). */
export const TASK_STARTUP_METRIC = 'TaskStartupSeconds';

/**
 * The task's start-up as a CloudWatch metric, in the embedded metric format: one JSON line on stdout, which
 * CloudWatch Logs turns into a datapoint of `TASK_STARTUP_METRIC` in `namespace` (raw values, so p50 and p99 can be
 * asked for). From the RunTask state's start to now, the worker running: placement, the image pull, the container's
 * and the runtime's start. Undefined without a namespace or a state start to count from, or with a clock that runs
 * behind the state's (a negative start-up is no measurement).
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export function startupMetricLine(input: {
  namespace: string | undefined;
  stateEnteredAtMs: number | undefined;
  now: number;
  jobId: string;
}): string | undefined {
  const { namespace, stateEnteredAtMs, now, jobId } = input;
  if (!namespace || stateEnteredAtMs === undefined || now < stateEnteredAtMs) return undefined;
  return JSON.stringify({
    _aws: { Timestamp: now, CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [[]], Metrics: [{ Name: TASK_STARTUP_METRIC, Unit: 'Seconds' }] }] },
    [TASK_STARTUP_METRIC]: Math.round(now - stateEnteredAtMs) / 1000,
    time: new Date(now).toISOString(),
    event: 'task-startup',
    jobId,
  });
}
