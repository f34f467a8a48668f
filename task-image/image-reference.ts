/**
 * What the ECS task definition and the state machine need to know about the worker, dependency-free
 * so the modules can import it at synth time: the container's name and the environment it reads.
 * (The image URI comes from the stage's validated `image` config, in modules/compute.ts.)
 */

export const WORKER_CONTAINER_NAME = 'worker';

/**
 * Set once in the task definition's container environment: where results go, the task's own timeout, how long its
 * RunTask state waits for it (the worker stops itself before either runs out), and the CloudWatch namespace of the
 * metric it logs (its start-up).
 */
export const WORKER_STATIC_ENV = ['RESULTS_PREFIX', 'JOB_TIMEOUT_SECONDS', 'RUN_TASK_TIMEOUT_SECONDS', 'METRICS_NAMESPACE'] as const;

/** Passed per job as container overrides (VERSION_ID may be empty: read the current version). */
export const WORKER_JOB_ENV = ['BUCKET', 'KEY', 'VERSION_ID', 'JOB_ID'] as const;

/**
 * A packed stage's task definition also sets the table of batch records: a packed task reads its list of objects there
 * and records each one's end (task-image/src/batch-record.ts).
 */
export const WORKER_PACKED_STATIC_ENV = ['BATCHES_TABLE_NAME'] as const;

/**
 * Passed per packed task instead of WORKER_JOB_ENV: its batch (the execution's name), its task's index in the batch
 * (a decimal string) and its lead's job id (for its logs). BATCH being set is what puts the worker in packed mode.
 */
export const WORKER_PACKED_TASK_ENV = ['BATCH', 'TASK_INDEX', 'JOB_ID'] as const;

/** Passed per attempt as a container override: when the RunTask state was entered (its timeout counts from there). */
export const WORKER_STATE_ENTERED_ENV = 'STATE_ENTERED_AT';

/** Passed per job on a stage with routes: the job's route, whose start-up the worker's metric also counts. */
export const WORKER_ROUTE_ENV = 'ROUTE';

/** The image platform a task architecture runs: build and push for this one, or Fargate cannot start the task. */
export function containerPlatformOf(architecture: 'X86_64' | 'ARM64'): 'linux/amd64' | 'linux/arm64' {
  return architecture === 'ARM64' ? 'linux/arm64' : 'linux/amd64';
}
