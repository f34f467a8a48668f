/**
 * The dispatcher's receive: up to as many intake messages as the pool can admit, each parsed to its job. Poison goes
 * to the DLQ; two messages for one job in one gather are settled here, before admission.
 */
import { ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { RunContext } from './dispatcher-run';
import { parseIntakeMessage, REDRIVE_OF, RETURNED_BY, type Job } from './jobs';
import { deferInBatches, deleteInBatches, MESSAGE_ATTRIBUTES, sluiceAttributesOf, sqsText } from './queue-batches';
import { routeOfKey, type RouteSettings } from './routes';

export interface Received {
  readonly job: Job;
  readonly message: Message;
  /** The execution whose lease on the job this message replaces (a requeue says so; an upload does not). */
  readonly returnedBy?: string;
}

/**
 * A message whose job's lease is still held by whoever sent it (its release follows the send), or by a batch that
 * never started, is put back for this long; the lease is given back meanwhile (by its holder, or the janitor).
 */
export const HELD_LEASE_RETRY_SECONDS = 60;

/** Deletes intake messages from their queue; one SQS would not delete fails the run. */
export async function deleteIntakeMessages(run: RunContext, queueUrl: string, messages: readonly Message[]): Promise<void> {
  const failed = await deleteInBatches(run.sqs, queueUrl, messages);
  if (failed.length > 0) throw new Error(`could not delete ${failed.length} intake message(s): ${JSON.stringify(failed)}`);
}

/** What a gather received: the jobs to admit, and whether any message came at all. */
export interface Gathered {
  readonly jobs: Received[];
  readonly receivedAny: boolean;
}

/** Receives up to `wanted` admissible jobs from the route's queue; poison goes to the DLQ, a job met twice in the batch is dropped. */
export async function gather(run: RunContext, route: RouteSettings, wanted: number): Promise<Gathered> {
  const { sqs, settings } = run;
  const scope = { bucketName: settings.bucketName, inputPrefix: route.inputPrefix, inputSuffix: route.inputSuffix };
  const jobs: Received[] = [];
  let receivedAny = false;
  while (jobs.length < wanted) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: route.queueUrl,
        MaxNumberOfMessages: Math.min(10, wanted - jobs.length),
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        MessageAttributeNames: [...MESSAGE_ATTRIBUTES],
      }),
    );
    if (Messages.length === 0) break;
    receivedAny = true;
    const settled: Settled = { toDelete: [], toDefer: [] };
    for (const message of Messages) {
      const parsed = parseIntakeMessage(message.Body, scope);
      if (parsed.kind === 'poison' && (await forwardedToItsRoute(run, route, message))) {
        settled.toDelete.push(message);
        continue;
      }
      if (parsed.kind === 'poison') {
        await sendToDeadLetter(run, message, parsed.reason);
        settled.toDelete.push(message);
        continue;
      }
      take(run, jobs, receivedJob(parsed.job, message), settled);
    }
    await deleteIntakeMessages(run, route.queueUrl, settled.toDelete);
    await deferInBatches(sqs, route.queueUrl, settled.toDefer.splice(0), HELD_LEASE_RETRY_SECONDS);
    if (Messages.length < Math.min(10, wanted)) break;
  }
  return { jobs, receivedAny };
}

/** The messages of one receive that are settled without admission: deleted, or put back for later. */
interface Settled {
  readonly toDelete: Message[];
  readonly toDefer: Message[];
}

/**
 * A well-formed job whose key belongs to another route is not poison: a previous version sent it to the stage's queue
 * while a deploy rolled out (a state machine's return, a janitor's requeue). It is sent on to its route's queue with
 * its attributes; the caller deletes this copy. Answers whether it was.
 */
async function forwardedToItsRoute(run: RunContext, route: RouteSettings, message: Message): Promise<boolean> {
  if (!run.settings.routes) return false;
  const anyKey = parseIntakeMessage(message.Body, { bucketName: run.settings.bucketName, inputPrefix: '' });
  const owner = anyKey.kind === 'job' ? routeOfKey(run.settings.routes, anyKey.job.key) : undefined;
  if (!owner || owner.name === route.name || anyKey.kind !== 'job') return false;
  await run.sqs.send(new SendMessageCommand({ QueueUrl: owner.queueUrl, MessageBody: message.Body ?? '', ...sluiceAttributesOf(message) }));
  run.log({ event: 'forwardedToRoute', messageId: message.MessageId, key: anyKey.job.key, from: route.name, to: owner.name });
  return true;
}

async function sendToDeadLetter(run: RunContext, message: Message, reason: string): Promise<void> {
  await run.sqs.send(
    new SendMessageCommand({
      QueueUrl: run.settings.deadLetterQueueUrl,
      MessageBody: message.Body ?? '',
      MessageAttributes: {
        reason: { DataType: 'String', StringValue: sqsText(reason) },
        sourceMessageId: { DataType: 'String', StringValue: message.MessageId ?? 'unknown' },
      },
    }),
  );
  run.log({ event: 'poison', messageId: message.MessageId, reason });
  run.summary.poison++;
}

/** Adds a received job to those gathered, or settles it against the message the gather holds for its job. */
function take(run: RunContext, jobs: Received[], candidate: Received, settled: Settled): void {
  const { job, message } = candidate;
  // A message this gather already holds, delivered again (standard queues may): only its newest receipt
  // handle deletes it; it is the same message, not a duplicate.
  const held = jobs.findIndex((r) => r.message.MessageId === message.MessageId);
  if (held >= 0) {
    jobs[held] = { ...jobs[held], message };
    return;
  }
  const sameJob = jobs.findIndex((r) => r.job.jobId === job.jobId);
  if (sameJob < 0) {
    jobs.push(candidate);
    return;
  }
  // Two messages for one job in one gather. A plain copy (a duplicate upload event) or a second copy of the
  // same give-back or redrive is dropped, whichever came first: a message that gives the job back or redrives
  // it is its way to its next round and is what is kept. Two different such messages wait their turns: the
  // newcomer is deferred, and the row decides when it is back.
  const kept = jobs[sameJob];
  if (isPlain(candidate) || !isPlain(kept)) {
    if (isPlain(candidate) || sameRound(candidate, kept)) {
      run.log({ event: 'duplicate', jobId: job.jobId, key: job.key });
      run.summary.duplicates++;
      settled.toDelete.push(message);
    } else {
      run.summary.deferred++;
      settled.toDefer.push(message);
    }
    return;
  }
  run.log({ event: 'duplicate', jobId: job.jobId, key: job.key });
  run.summary.duplicates++;
  settled.toDelete.push(kept.message);
  jobs[sameJob] = candidate;
}

/** A received job with what its message says of it: a redrive's target, the execution that gave it back. */
function receivedJob(job: Job, message: Message): Received {
  const redriveOf = message.MessageAttributes?.[REDRIVE_OF]?.StringValue;
  return { job: redriveOf ? { ...job, redriveOf } : job, message, returnedBy: message.MessageAttributes?.[RETURNED_BY]?.StringValue };
}

/** A message that is only the job (an upload event, or a copy of one), neither a give-back nor a redrive. */
function isPlain(received: Received): boolean {
  return received.returnedBy === undefined && received.job.redriveOf === undefined;
}

/** Two messages that give back or redrive a job for the same reason: one is a copy of the other. */
function sameRound(a: Received, b: Received): boolean {
  return a.returnedBy === b.returnedBy && a.job.redriveOf === b.job.redriveOf;
}
