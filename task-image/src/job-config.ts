import { BadInputError } from './errors';

/** What one task is asked to do, read from the container environment. */
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

/** The worker stops this long before its RunTask state would time out: the stop and the release must land first. */
export const STATE_TIMEOUT_MARGIN_MS = 60_000;

export function resultKeyOf(resultsPrefix: string, key: string): string {
  return `${resultsPrefix}${key}.json`;
}

// Job ids travel in S3 metadata headers, so they must be header-safe ASCII.
const JOB_ID_PATTERN = /^[\x21-\x7e]{1,256}$/;
const MAX_KEY_BYTES = 1024;

const WHOLE_SECONDS = /^[1-9]\d{0,8}$/;

/** Validates the job environment; every problem is reported at once, as bad input. */
export function readJobConfig(env: NodeJS.ProcessEnv, now = Date.now()): JobConfig {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') problems.push(`${name} is required`);
    return value ?? '';
  };
  const bucket = required('BUCKET');
  const key = required('KEY');
  const jobId = required('JOB_ID');
  const resultsPrefix = required('RESULTS_PREFIX');
  // Container overrides may pass an empty string for "no version".
  const versionId = env.VERSION_ID ? env.VERSION_ID : undefined;

  if (jobId && !JOB_ID_PATTERN.test(jobId)) {
    problems.push('JOB_ID must be 1-256 printable ASCII characters without spaces');
  }
  if (key && Buffer.byteLength(key) > MAX_KEY_BYTES) {
    problems.push(`KEY is longer than S3's ${MAX_KEY_BYTES} bytes`);
  }
  if (key && resultsPrefix && key.startsWith(resultsPrefix)) {
    // Processing a result would write a result of a result, and so on.
    problems.push(`KEY "${key}" is under RESULTS_PREFIX "${resultsPrefix}": refusing to process a result`);
  }
  const resultKey = resultKeyOf(resultsPrefix, key);
  if (key && resultsPrefix && Buffer.byteLength(resultKey) > MAX_KEY_BYTES) {
    problems.push(`result key "${resultKey}" would exceed S3's ${MAX_KEY_BYTES} bytes`);
  }
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
  if (stateTimeout !== undefined && enteredAt !== undefined && !Number.isNaN(enteredAt)) {
    deadlines.push(enteredAt + stateTimeout * 1000 - STATE_TIMEOUT_MARGIN_MS);
  }
  if (problems.length > 0) throw new BadInputError(`invalid job environment: ${problems.join('; ')}`);
  const deadlineMs = deadlines.length > 0 ? Math.min(...deadlines) : undefined;
  const stateEnteredAtMs = enteredAt !== undefined && !Number.isNaN(enteredAt) ? enteredAt : undefined;
  return { bucket, key, versionId, jobId, resultsPrefix, resultKey, deadlineMs, stateEnteredAtMs };
}
