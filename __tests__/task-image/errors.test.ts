import { S3ServiceException } from '@aws-sdk/client-s3';
import { BadInputError, classifyFailure, StopRequestedError } from '../../task-image/src/errors';

function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, message: `${name} from S3`, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

test.each([
  ['NoSuchKey', 404, 'bad-input'],
  ['NoSuchVersion', 404, 'bad-input'],
  ['InvalidArgument', 400, 'bad-input'],
  ['AccessDenied', 403, 'bad-input'],
  ['InvalidObjectState', 403, 'bad-input'],
  ['SlowDown', 503, 'transient'],
  ['InternalError', 500, 'transient'],
  ['ServiceUnavailable', 503, 'transient'],
  ['RequestTimeout', 400, 'transient'],
  ['ExpiredToken', 400, 'transient'],
  ['ThrottlingException', 400, 'transient'],
])('S3 %s (%i) is %s', (name, status, kind) => {
  expect(classifyFailure(s3Error(name, status), false)).toEqual({ kind, reason: `${name}: ${name} from S3` });
});

test('network errors and unknown errors are transient: a retry may succeed', () => {
  const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  expect(classifyFailure(reset, false)).toEqual({ kind: 'transient', reason: 'Error (ECONNRESET): socket hang up' });
  expect(classifyFailure('a thrown string', false).kind).toBe('transient');
});

test('a processor says bad input with BadInputError', () => {
  expect(classifyFailure(new BadInputError('not a PNG'), false)).toEqual({ kind: 'bad-input', reason: 'not a PNG' });
});

test('once a stop was requested, any error is a stop (retryable), not bad input', () => {
  expect(classifyFailure(new StopRequestedError(), false).kind).toBe('stopped');
  expect(classifyFailure(s3Error('NoSuchKey', 404), true).kind).toBe('stopped');
});
