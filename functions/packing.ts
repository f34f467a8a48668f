/**
 * Packing: a task may run several objects, one after another (`objectsPerTask`), so a short job pays Fargate's
 * start-up and its 1-minute minimum once per task rather than once per object, and a stage launches fewer tasks.
 *
 * Every object keeps its own ledger row, lease, status, attempts and error. A packed task holds one task's vCPU: the
 * lease on its first object's row (its lead) carries the task's vCPU, the others' carry 0, so the limiter's sums are
 * unchanged — what is admitted and released per task is one task's vCPU. The task's list is its batch record's jobs
 * of its task index (written in the admission's own transaction, so no task runs without its list); the worker
 * records each object's end on that record (`outcomes`), and the finisher (functions/finish-task.ts) writes each
 * object's result to its row and gives every lease back.
 */
import { MAX_JOBS_PER_ADMISSION } from './limits';
import { routesOf, type IntakeSettings, type RouteSettings } from './routes';
import { chunks } from './runtime';

/** The most objects one task may run: all of them are admitted in one transaction (functions/limits.ts). */
export const MAX_OBJECTS_PER_TASK = MAX_JOBS_PER_ADMISSION;

/** On a packed task's lead job (the Map's item): its task's index in the batch, and how many objects it runs. */
export interface Pack {
  readonly task: number;
  readonly objects: number;
}

/** The batch record's attribute where the worker records each object's end, by job id. */
export const OUTCOMES_ATTRIBUTE = 'outcomes';

/** An object's end as the worker records it: processed (or found done), or refused as bad input (final). */
export interface ObjectOutcome {
  readonly status: 'succeeded' | 'failed';
  /** Why it failed (bad input). */
  readonly reason?: string;
  readonly at: string;
}

/**
 * The worker's exit code for bad input (task-image/src/exit-codes.ts, which the functions may not import; a test holds
 * the two equal). A packed task exits with it only when its own environment is bad: a deploy's error.
 */
export const WORKER_BAD_INPUT_EXIT_CODE = 65;

/** How many tasks `objects` objects fill, `objectsPerTask` a task. */
export function tasksFor(objects: number, objectsPerTask: number): number {
  return Math.ceil(objects / Math.max(1, objectsPerTask));
}

/** The most tasks one admission may hold: `jobsPerExecution`, and no more objects than one transaction holds. */
export function tasksPerAdmission(jobsPerExecution: number, objectsPerTask: number): number {
  return Math.max(1, Math.min(jobsPerExecution, Math.floor(MAX_JOBS_PER_ADMISSION / Math.max(1, objectsPerTask))));
}

/** Jobs in their tasks, in order: each task up to `objectsPerTask` of them; a task's first job is its lead. */
export function packInto<T>(jobs: readonly T[], objectsPerTask: number): T[][] {
  return chunks(jobs, Math.max(1, objectsPerTask));
}

/** Objects a route's task runs (1: a task per object). */
export function objectsPerTaskOf(route: Pick<RouteSettings, 'objectsPerTask'>): number {
  return route.objectsPerTask ?? 1;
}

/**
 * Whether the stage's state machine runs packed tasks: some route packs (functions/routes.ts: a stage without routes
 * has one). Then every batch is admitted packed, a route of one object a task too: one state machine runs them all.
 */
export function stagePacks(settings: IntakeSettings): boolean {
  return routesOf(settings).some((route) => objectsPerTaskOf(route) > 1);
}

/** How a route's batches are cut into tasks: `objectsPerTask` each, and whether the stage's batches are packed at all. */
export interface Packing {
  readonly packed: boolean;
  readonly objectsPerTask: number;
}

export function packingOf(settings: IntakeSettings, route: Pick<RouteSettings, 'objectsPerTask'>): Packing {
  return { packed: stagePacks(settings), objectsPerTask: objectsPerTaskOf(route) };
}
