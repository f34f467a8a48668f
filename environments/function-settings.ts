/**
 * The stage's functions' settings that more than one construct, or `sluice`, reads: defined once here, free of cdktf,
 * so the CLI loads no constructs and no construct restates another's setting (a timeout and what must outlast it).
 */
import type { ConfigurePoolSettings } from '../functions/environment';
import { vcpuOf } from './fargate';
import { objectsPerTaskOf, routeVcpuOf, type EnvironmentConfig } from './schema';

/**
 * Rounds one job may end without a result before it is failed: executions that died under it (the janitor), or packed
 * tasks that stopped on it (the finisher).
 */
export const MAX_EXECUTION_ATTEMPTS = 3;

/** How often the janitor sweeps. */
export const JANITOR_PERIOD_MINUTES = 5;

/** What the pool's settings are checked against: the stage's task size, batch size and quota (the function's and `sluice resize`'s). */
export function configurePoolSettingsOf(config: EnvironmentConfig, tableName: string): ConfigurePoolSettings {
  return {
    tableName,
    // With routes, the smallest task any route runs: the most tasks a budget holds at once (the sweep's bound).
    taskVcpu: config.routes ? Math.min(...config.routes.map((route) => routeVcpuOf(config.task, route))) : vcpuOf(config.task.cpu),
    jobsPerExecution: config.capacity.jobsPerExecution,
    accountVcpuQuota: config.capacity.accountVcpuQuota,
    // The most objects a task runs: a lease each, which a janitor sweep reads.
    objectsPerTask: Math.max(...(config.routes ?? [undefined]).map((route) => objectsPerTaskOf(config, route))),
  };
}

/** A dispatcher run stops admitting after this long; its Lambda timeout leaves room to finish the batch. */
export const DISPATCHER_MAX_RUN_SECONDS = 240;
export const DISPATCHER_TIMEOUT_SECONDS = 300;

/**
 * A batch whose execution does not exist is given back (by the janitor, or the next dispatcher run) only once the run
 * that admitted it can no longer start it: that run's Lambda timeout has passed since the admission (its SDK retries
 * StartExecution until then), and a margin for the last call it sent to land and show (DescribeExecution is
 * eventually consistent). Shorter, a late StartExecution starts an execution whose leases were already given back.
 */
export const START_GRACE_SECONDS = DISPATCHER_TIMEOUT_SECONDS + 30;

/**
 * How long a message a dispatcher run received stays invisible: past that run's Lambda timeout, so it never comes
 * back while the run that holds it may still admit, start or delete it (the same run would otherwise meet it again).
 * A run that dies holding messages leaves them invisible that long before another run takes them.
 */
export const INTAKE_VISIBILITY_TIMEOUT_SECONDS = DISPATCHER_TIMEOUT_SECONDS + 30;
