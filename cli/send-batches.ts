/**
 * Messages to a queue at a bounded rate, ten per SendMessageBatch. An entry SQS refuses for a passing reason is sent
 * again with backoff; an entry is counted sent only once SQS said so, and one that never gets through stops the run.
 */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { chunks, type Clock } from '../functions/runtime';
import { CliError, EXIT } from './stage';

/** One message; `id` is unique among those sent together (SQS's batch entry id: letters, digits, - and _). */
export interface Outgoing {
  readonly id: string;
  readonly body: string;
}

/** SendMessageBatch's most entries per call. */
export const BATCH_SIZE = 10;
/** Sends of one batch before its refused entries stop the run: with the backoff, about half a minute of trying. */
export const SEND_ATTEMPTS = 6;
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8_000;

/** Spaces sends so that, on average, no more than `perSecond` messages go out a second (one batch may go at once). */
export function pacer(perSecond: number, clock: Clock): (messages: number) => Promise<void> {
  let nextAt = Number.NEGATIVE_INFINITY;
  return async (messages) => {
    const now = clock.now();
    const startAt = Math.max(now, nextAt);
    nextAt = startAt + (messages * 1000) / perSecond;
    if (startAt > now) await clock.sleep(startAt - now);
  };
}

/** Backoff before the n-th resend (0-based): doubling from half a second, at most 8 s. */
export function backoffMs(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt);
}

/** Sends up to ten messages; resolves when SQS has taken each, throws if one is refused for good. */
export async function sendBatch(sqs: SQSClient, queueUrl: string, batch: readonly Outgoing[], clock: Clock): Promise<void> {
  if (batch.length > BATCH_SIZE) throw new Error(`a batch holds at most ${BATCH_SIZE} messages, not ${batch.length}`);
  let pending = batch;
  for (let attempt = 0; pending.length > 0; attempt++) {
    const result = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending.map((m) => ({ Id: m.id, MessageBody: m.body })) }));
    const taken = new Set((result.Successful ?? []).map((entry) => entry.Id));
    // An entry in neither list was not taken either.
    pending = pending.filter((m) => !taken.has(m.id));
    if (pending.length === 0) return;
    const failed = result.Failed ?? [];
    const forGood = failed.find((entry) => entry.SenderFault);
    if (forGood || attempt + 1 >= SEND_ATTEMPTS) {
      const reason = forGood ?? failed[0];
      throw new CliError(
        `the intake queue refused ${pending.length} message(s)${forGood ? '' : ` after ${SEND_ATTEMPTS} attempts`}: ${reason?.Code ?? 'no answer for them'} ${reason?.Message ?? ''}`.trim(),
        EXIT.failed,
      );
    }
    await clock.sleep(backoffMs(attempt));
  }
}

/** Sends the messages in batches of ten, paced; returns how many were sent (all of them, or it throws). */
export async function sendPaced(
  sqs: SQSClient,
  queueUrl: string,
  messages: readonly Outgoing[],
  pace: (messages: number) => Promise<void>,
  clock: Clock,
  onSent: (count: number) => void = () => undefined,
): Promise<number> {
  for (const batch of chunks(messages, BATCH_SIZE)) {
    await pace(batch.length);
    await sendBatch(sqs, queueUrl, batch, clock);
    onSent(batch.length);
  }
  return messages.length;
}
