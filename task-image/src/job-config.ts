import type { TaskObject } from './batch-record';
import { BadInputError } from './errors';

/** What one object's job is, read from the container environment (or, in a packed task, from the batch record). */
export interface JobConfig {
  bucket: string;
  key: string;
  /** Absent: read the current version. */
  versionId: string | undefined;
  jobId: string;
  resultsPrefix: string;
  /** `<RESULTS_PREFIX><KEY>.json` */
  resultKey: string;
  /**
   * Epoch ms at which the worker stops itself (exit 75, retryable): the task's own timeout, and never later than
   * its RunTask state's timeout, so no task outlives the state (and the lease) it runs under. Undefined: no limit.
   */
  deadlineMs: number | undefined;
  /** When its RunTask state was entered (epoch ms), if the state said: its start-up counts from there. */
  stateEnteredAtMs: number | undefined;
}

/** What a packed task is asked to do: the objects of its task index on its batch's record, one after another. */
export interface PackedTaskConfig {
  batchesTableName: string;
  /** The batch's execution name: the batch record's key. */
  batch: string;
  taskIndex: number;
  /** The task's first object's job id: its task-level log lines and its start-up metric carry it. */
  leadJobId: string;
  resultsPrefix: string;
  /** For the whole task, as JobConfig's. */
  deadlineMs: number | undefined;
  stateEnteredAtMs: number | undefined;
}

/** The worker stops this long before its RunTask state would time out: the stop and the release must land first. */
export const STATE_TIMEOUT_MARGIN_MS = 60_000;

export function resultKeyOf(resultsPrefix: string, key: string): string {
  return `${resultsPrefix}${key}.json`;
}

// Job ids travel in S3 metadata headers, so they must be header-safe ASCII.
const JOB_ID_PATTERN = /^[\x21-\x7e]{1,256}$/;
const MAX_KEY_BYTES = 1024;

const WHOLE_SECONDS = /^[1-9]\d{0,8}$/;
const TASK_INDEX_PATTERN = /^(0|[1-9]\d{0,8})$/;

/** A packed task is started with its batch's name instead of an object. */
export function isPackedEnvironment(env: NodeJS.ProcessEnv): boolean {
  return env.BATCH !== undefined;
}

/** Validates the job environment; every problem is reported at once, as bad input. */
export function readJobConfig(env: NodeJS.ProcessEnv, now = Date.now()): JobConfig {
  const problems: string[] = [];
  const required = requiredReader(env, problems);
  const bucket = required('BUCKET');
  const key = required('KEY');
  const jobId = required('JOB_ID');
  const resultsPrefix = required('RESULTS_PREFIX');
  // Container overrides may pass an empty string for "no version".
  const versionId = env.VERSION_ID ? env.VERSION_ID : undefined;
  if (jobId) problems.push(...jobIdProblems(jobId, 'JOB_ID'));
  if (key) problems.push(...keyProblems(key, resultsPrefix, 'KEY'));
  const timing = taskTiming(env, now, problems);
  if (problems.length > 0) throw new BadInputError(`invalid job environment: ${problems.join('; ')}`);
  return { bucket, key, versionId, jobId, resultsPrefix, resultKey: resultKeyOf(resultsPrefix, key), ...timing };
}

/** Validates a packed task's environment; every problem is reported at once, as bad input (a deploy's mistake). */
export function readPackedTaskConfig(env: NodeJS.ProcessEnv, now = Date.now()): PackedTaskConfig {
  const problems: string[] = [];
  const required = requiredReader(env, problems);
  const batchesTableName = required('BATCHES_TABLE_NAME');
  const batch = required('BATCH');
  const taskIndex = required('TASK_INDEX');
  const leadJobId = required('JOB_ID');
  const resultsPrefix = required('RESULTS_PREFIX');
  if (taskIndex && !TASK_INDEX_PATTERN.test(taskIndex)) problems.push(`TASK_INDEX must be a whole number (got ${JSON.stringify(taskIndex)})`);
  if (leadJobId) problems.push(...jobIdProblems(leadJobId, 'JOB_ID'));
  const timing = taskTiming(env, now, problems);
  if (problems.length > 0) throw new BadInputError(`invalid packed task environment: ${problems.join('; ')}`);
  return { batchesTableName, batch, taskIndex: Number(taskIndex), leadJobId, resultsPrefix, ...timing };
}

/** One object of a packed task as a job, or why it is bad input (that object's, not the task's). */
export function objectJobConfig(object: TaskObject, task: PackedTaskConfig): { config: JobConfig } | { badInput: string } {
  const problems = [...jobIdProblems(object.jobId, 'job id'), ...keyProblems(object.key, task.resultsPrefix, 'key')];
  if (problems.length > 0) return { badInput: `invalid object: ${problems.join('; ')}` };
  const { bucket, key, versionId, jobId } = object;
  const { resultsPrefix, deadlineMs, stateEnteredAtMs } = task;
  return { config: { bucket, key, versionId, jobId, resultsPrefix, resultKey: resultKeyOf(resultsPrefix, key), deadlineMs, stateEnteredAtMs } };
}

function requiredReader(env: NodeJS.ProcessEnv, problems: string[]): (name: string) => string {
  return (name) => {
    const value = env[name];
    if (value === undefined || value === '') problems.push(`${name} is required`);
    return value ?? '';
  };
}

function jobIdProblems(jobId: string, label: string): string[] {
  return JOB_ID_PATTERN.test(jobId) ? [] : [`${label} must be 1-256 printable ASCII characters without spaces`];
}

function keyProblems(key: string, resultsPrefix: string, label: string): string[] {
  const problems: string[] = [];
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) problems.push(`${label} is longer than S3's ${MAX_KEY_BYTES} bytes`);
  if (resultsPrefix && key.startsWith(resultsPrefix)) {
    // Processing a result would write a result of a result, and so on.
    problems.push(`${label} "${key}" is under RESULTS_PREFIX "${resultsPrefix}": refusing to process a result`);
  }
  const resultKey = resultKeyOf(resultsPrefix, key);
  if (resultsPrefix && Buffer.byteLength(resultKey) > MAX_KEY_BYTES) problems.push(`result key "${resultKey}" would exceed S3's ${MAX_KEY_BYTES} bytes`);
  return problems;
}

/** The task's deadline and its RunTask state's start, from JOB_TIMEOUT_SECONDS, RUN_TASK_TIMEOUT_SECONDS and STATE_ENTERED_AT. */
function taskTiming(env: NodeJS.ProcessEnv, now: number, problems: string[]): Pick<JobConfig, 'deadlineMs' | 'stateEnteredAtMs'> {
  const deadlines: number[] = [];
  const seconds = (name: string): number | undefined => {
    const value = env[name];
    if (value === undefined || value === '') return undefined;
    if (!WHOLE_SECONDS.test(value)) problems.push(`${name} must be a whole number of seconds (got ${JSON.stringify(value)})`);
    return Number(value);
  };
  const jobTimeout = seconds('JOB_TIMEOUT_SECONDS');
  if (jobTimeout !== undefined) deadlines.push(now + jobTimeout * 1000);
  const stateTimeout = seconds('RUN_TASK_TIMEOUT_SECONDS');
  const enteredAt = env.STATE_ENTERED_AT ? Date.parse(env.STATE_ENTERED_AT) : undefined;
  if (env.STATE_ENTERED_AT && Number.isNaN(enteredAt)) problems.push(`STATE_ENTERED_AT must be an ISO timestamp (got ${JSON.stringify(env.STATE_ENTERED_AT)})`);
  const stateEnteredAtMs = enteredAt !== undefined && !Number.isNaN(enteredAt) ? enteredAt : undefined;
  if (stateTimeout !== undefined && stateEnteredAtMs !== undefined) deadlines.push(stateEnteredAtMs + stateTimeout * 1000 - STATE_TIMEOUT_MARGIN_MS);
  return { deadlineMs: deadlines.length > 0 ? Math.min(...deadlines) : undefined, stateEnteredAtMs };
}
