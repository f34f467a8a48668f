import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * For a packed task's batch record. The SDK's standard configuration (region, credentials, AWS_ENDPOINT_URL_DYNAMODB
 * or AWS_ENDPOINT_URL for a local engine, AWS_MAX_ATTEMPTS) applies as is. Unless AWS_MAX_ATTEMPTS says otherwise it
 * tries a little harder than the SDK's 3 attempts: a write that gives up sends the whole task round again.
 * (Wrap it in DynamoDBDocumentClient.from; destroy this one: the document client's destroy does nothing.)
 */
export function createDynamoDbClient(env: NodeJS.ProcessEnv): DynamoDBClient {
  return new DynamoDBClient({
    ...(env.AWS_MAX_ATTEMPTS ? {} : { maxAttempts: 6 }),
    // A stalled socket fails the attempt (retryable) instead of hanging until the task times out.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 10_000 },
  });
}
