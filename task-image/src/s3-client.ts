import { S3Client } from '@aws-sdk/client-s3';

/**
 * The SDK's standard configuration (region, credentials, AWS_ENDPOINT_URL_S3) applies as is.
 * With a custom endpoint, S3-compatible servers need path-style addressing, and many reject the
 * SDK's default request checksums, so checksums drop to "when required" unless set explicitly.
 */
export function createS3Client(env: NodeJS.ProcessEnv): S3Client {
  const customEndpoint = Boolean(env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL);
  return new S3Client({
    forcePathStyle: customEndpoint,
    ...(customEndpoint && !env.AWS_REQUEST_CHECKSUM_CALCULATION ? { requestChecksumCalculation: 'WHEN_REQUIRED' as const } : {}),
    ...(customEndpoint && !env.AWS_RESPONSE_CHECKSUM_VALIDATION ? { responseChecksumValidation: 'WHEN_REQUIRED' as const } : {}),
    // A stalled socket fails the attempt (retryable) instead of hanging until the task times out.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
  });
}
