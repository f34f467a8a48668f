import { routeTimeoutOf, type EnvironmentConfig } from '../../environments';

/** Time Fargate may take to provision and pull before the container runs (beyond the task's own timeout). */
const PROVISIONING_ALLOWANCE_SECONDS = 900;
/** Ledger and lease writes, wake-up and slack around one job. */
const BOOKKEEPING_SECONDS = 300;

type RetryPolicy = EnvironmentConfig['retry']['ecsApi'];

/** The delays before each retry: interval·rate^i, capped at MaxDelaySeconds (no jitter: the worst case). */
export function retryDelaysSeconds(policy: RetryPolicy): number[] {
  return Array.from({ length: policy.maxAttempts }, (_, i) => Math.min(policy.maxDelaySeconds, Math.round(policy.intervalSeconds * policy.backoffRate ** i)));
}

/** Longest RunTask state may take for a task of this timeout, waiting for the task included. */
export function runTaskTimeoutSeconds(task: Pick<EnvironmentConfig['task'], 'timeoutSeconds'>): number {
  return task.timeoutSeconds + PROVISIONING_ALLOWANCE_SECONDS;
}

/** The longest timeout of the stage's tasks: the stage's, or a route's own. */
function longestTaskTimeoutSeconds(config: EnvironmentConfig): number {
  return Math.max(config.task.timeoutSeconds, ...(config.routes ?? []).map((route) => routeTimeoutOf(config.task, route)));
}

/**
 * How long the RunTask state waits, whatever the job's route: for the longest task. Each task stops itself at its own
 * timeout (its task definition's JOB_TIMEOUT_SECONDS); this is the backstop for a task that never starts or never stops.
 */
export function runTaskStateTimeoutSeconds(config: EnvironmentConfig): number {
  return runTaskTimeoutSeconds({ timeoutSeconds: longestTaskTimeoutSeconds(config) });
}

/**
 * How long a job's lease lives: its every attempt at its longest, with every API retry and every pause
 * between attempts. The state machine times out at the same bound, so no execution outlives its leases.
 */
export function leaseSeconds(config: EnvironmentConfig): number {
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const attempts = config.retry.taskFailed.maxAttempts + 1;
  const perAttempt = runTaskStateTimeoutSeconds(config) + sum(retryDelaysSeconds(config.retry.ecsApi));
  return attempts * perAttempt + sum(retryDelaysSeconds(config.retry.taskFailed)) + BOOKKEEPING_SECONDS;
}
