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
}

// Job ids travel in S3 metadata headers, so they must be header-safe ASCII.
const JOB_ID_PATTERN = /^[\x21-\x7e]{1,256}$/;
const MAX_KEY_BYTES = 1024;

/** Validates the job environment; every problem is reported at once, as bad input. */
export function readJobConfig(env: NodeJS.ProcessEnv): JobConfig {
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
  const resultKey = `${resultsPrefix}${key}.json`;
  if (key && resultsPrefix && Buffer.byteLength(resultKey) > MAX_KEY_BYTES) {
    problems.push(`result key "${resultKey}" would exceed S3's ${MAX_KEY_BYTES} bytes`);
  }
  if (problems.length > 0) throw new BadInputError(`invalid job environment: ${problems.join('; ')}`);
  return { bucket, key, versionId, jobId, resultsPrefix, resultKey };
}
