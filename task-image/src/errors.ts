/** The job cannot succeed as given (missing object or version, invalid environment): not retryable. */
export class BadInputError extends Error {
  override readonly name = 'BadInputError';
}

/** A stop was requested (SIGTERM, or the task's own deadline): the work was abandoned and nothing was written. */
export class StopRequestedError extends Error {
  override readonly name = 'StopRequestedError';
  constructor(why = 'stop requested (SIGTERM)') {
    super(`${why}: work abandoned, nothing written`);
  }
}

export type FailureKind = 'bad-input' | 'transient' | 'stopped';

export interface ClassifiedFailure {
  kind: FailureKind;
  reason: string;
}

interface AwsLikeError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

// S3 answers these for a request that will fail the same way every time.
const PERMANENT_S3_ERRORS = new Set([
  'NoSuchKey',
  'NoSuchVersion',
  'NoSuchBucket',
  'NotFound',
  'InvalidArgument',
  'InvalidObjectState',
  'AccessDenied',
  'InvalidBucketName',
  'KeyTooLongError',
]);

// Client-side (4xx) codes that still go away by themselves: retry them.
const TRANSIENT_S3_ERRORS = new Set([
  'RequestTimeout',
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequests',
  'RequestTimeTooSkewed',
  'ExpiredToken',
  'TokenRefreshRequired',
  'OperationAborted',
]);

/** Sorts any error into bad input (65), transient (75) or a requested stop (75). */
export function classifyFailure(error: unknown, stopRequested: boolean): ClassifiedFailure {
  if (error instanceof StopRequestedError) return { kind: 'stopped', reason: error.message };
  if (stopRequested) return { kind: 'stopped', reason: new StopRequestedError().message };
  if (error instanceof BadInputError) return { kind: 'bad-input', reason: error.message };
  const aws = (typeof error === 'object' && error !== null ? error : {}) as AwsLikeError;
  const name = aws.name ?? 'Error';
  const status = aws.$metadata?.httpStatusCode;
  const message = aws.message || name;
  if (TRANSIENT_S3_ERRORS.has(name) || /throttl/i.test(name)) {
    return { kind: 'transient', reason: `${name}: ${message}` };
  }
  if (PERMANENT_S3_ERRORS.has(name) || status === 404) {
    return { kind: 'bad-input', reason: `${name}: ${message}` };
  }
  // 5xx, network resets, timeouts, truncated streams and anything unknown: worth another attempt,
  // and the state machine's MaxAttempts bounds the cost of being wrong.
  return { kind: 'transient', reason: `${name}${aws.code ? ` (${aws.code})` : ''}: ${message}` };
}
