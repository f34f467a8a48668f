/**
 * SQS's batch calls on received messages, for any number of messages: SQS takes at most ten entries per call, so
 * these send ten at a time. Each entry's Id is the message's place in its call ("0"–"9"): a failed entry's Id names
 * a message of the call it came back from.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  SendMessageBatchCommand,
  type BatchResultErrorEntry,
  type Message,
} from '@aws-sdk/client-sqs';
import { REDRIVE_OF, RETURNED_BY } from './jobs';
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
    const { Failed = [] } = await sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }),
    );
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

/**
 * Text SQS accepts in a message body or attribute: it refuses the whole request for one character outside
 * #x9 | #xA | #xD | #x20–#xD7FF | #xE000–#xFFFD | #x10000–#x10FFFF (SendMessage). Such characters (a key can hold
 * them) become U+FFFD, so a poison message's reason never keeps it from the DLQ.
 */
export function sqsText(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
  return text.replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '\ufffd');
}

/** The message attributes sluice reads (a receive names them: SQS returns only those asked for). */
export const MESSAGE_ATTRIBUTES = [RETURNED_BY, REDRIVE_OF] as const;

/**
 * Puts received messages back for later without counting a receive against them: each is sent again as a new message
 * (its body and sluice's attributes, visible after `delaySeconds`), then the received one is deleted. SQS counts
 * every receive toward the DLQ's maxReceiveCount; a message only deferred (held for a lease, back for room) must
 * never reach the DLQ that way. A crash between the send and the delete leaves a copy: harmless, the ledger admits a
 * job once. A message the send refused stays as it is and comes back when its visibility timeout ends.
 */
export async function deferInBatches(sqs: AwsClient, queueUrl: string, messages: readonly Message[], delaySeconds: number): Promise<void> {
  for (const chunk of chunks(messages, SQS_BATCH_LIMIT)) {
    const { Successful = [] } = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((m, i) => ({
          Id: String(i),
          MessageBody: m.Body ?? '',
          DelaySeconds: delaySeconds,
          ...sluiceAttributesOf(m),
        })),
      }),
    );
    const sent = new Set(Successful.map((e) => e.Id));
    await deleteInBatches(
      sqs,
      queueUrl,
      chunk.filter((_, i) => sent.has(String(i))),
    );
  }
}

/** A received message's sluice attributes, as a send takes them (none: nothing to add). */
export function sluiceAttributesOf(message: Message): { MessageAttributes?: Record<string, { DataType: string; StringValue: string }> } {
  const kept = Object.entries(message.MessageAttributes ?? {}).filter(
    ([name, value]) => (MESSAGE_ATTRIBUTES as readonly string[]).includes(name) && value.StringValue !== undefined,
  );
  return kept.length > 0
    ? { MessageAttributes: Object.fromEntries(kept.map(([name, value]) => [name, { DataType: 'String', StringValue: value.StringValue! }])) }
    : {};
}
