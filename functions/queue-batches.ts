/**
 * SQS's batch calls on received messages, for any number of messages: SQS takes at most ten entries per call, so
 * these send ten at a time. Each entry's Id is the message's place in its call ("0"–"9"): a failed entry's Id names
 * a message of the call it came back from.
 */
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, type BatchResultErrorEntry, type Message } from '@aws-sdk/client-sqs';
import { chunks, type AwsClient } from './runtime';

/** The most entries one SQS batch call takes. */
const SQS_BATCH_LIMIT = 10;

/**
 * Deletes `messages` by their receipt handles, ten per call. Answers the failed entries of the first call SQS
 * refused any of, and sends no call after it, so each caller decides what a refusal means (an error, or a word to
 * the user); a message not deleted comes back by itself when its visibility timeout ends. Empty: all were deleted.
 */
export async function deleteInBatches(sqs: AwsClient, queueUrl: string, messages: readonly Message[]): Promise<BatchResultErrorEntry[]> {
  for (const chunk of chunks(messages, SQS_BATCH_LIMIT)) {
    const { Failed = [] } = (await sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }),
    )) as { Failed?: BatchResultErrorEntry[] };
    if (Failed.length > 0) return Failed;
  }
  return [];
}

/**
 * Sets the visibility timeout of `messages` (0: visible again at once), ten per call. Failed entries are not looked
 * at: a message whose timeout did not change is visible again when its own timeout ends.
 */
export async function changeVisibilityInBatches(sqs: AwsClient, queueUrl: string, messages: readonly Message[], seconds: number): Promise<void> {
  for (const chunk of chunks(messages, SQS_BATCH_LIMIT)) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: seconds })),
      }),
    );
  }
}
