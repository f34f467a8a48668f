/**
 * The dispatcher: the only admitter. It takes from the intake queue only as many messages as the pool
 * can admit right now (free vCPU budget and launch tokens), so a message waiting for capacity is never
 * received, costs nothing and never counts toward the DLQ's maxReceiveCount. It admits a batch with one
 * conditional write, starts one execution for it, and loops while budget, tokens and messages remain.
 * Short of launch tokens it sleeps until the next one (under a second); short of budget it stops: every
 * lease release wakes it again (the state machine invokes it), and a schedule does every minute, so
 * waiting work costs nothing — no polling, no state transitions. It runs one at a time (reserved
 * concurrency 1); a wake-up that arrives while it runs is retried by Lambda a second or so later.
 */
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dispatcherSettingsFromEnv, type DispatcherSettings } from './environment';
import { executionArnOf, executionNameFor, parseIntakeMessage, type Job, type JobInput } from './jobs';
import { markRunningCommand, recordFirstSight } from './ledger';
import { admissionCommand, planAdmission, readPool, releaseCommand, tryAdmit, tryUpdate, type DocumentClient, type PoolState } from './pool';
import { jsonLog, systemClock, type Clock, type Log } from './runtime';

export interface Sender {
  send(command: any): Promise<any>;
}

export interface DispatcherDeps {
  readonly sqs: Sender;
  readonly sfn: Sender;
  readonly ddb: DocumentClient;
  readonly clock: Clock;
  readonly settings: DispatcherSettings;
  readonly log?: Log;
}

export interface DispatcherRunSummary {
  admitted: number;
  executionsStarted: number;
  poison: number;
  duplicates: number;
  /** Messages handed back because a lease for their job was already held. */
  deferred: number;
  /** Sleeps until the next launch token while work waited. */
  waits: number;
  stoppedBecause: 'queue-empty' | 'no-budget' | 'time-limit' | 'start-failed' | 'contention';
}

/** A message whose job already holds a lease is hidden this long; the janitor settles the lease meanwhile. */
const HELD_LEASE_RETRY_SECONDS = 300;
/** After a failed StartExecution the batch's messages come back this soon (the receive counts). */
const START_FAILURE_RETRY_SECONDS = 15;
const ADMISSION_TRIES = 3;

interface Received {
  readonly job: Job;
  readonly message: Message;
}

export async function runDispatcher(deps: DispatcherDeps): Promise<DispatcherRunSummary> {
  const { sqs, ddb, clock, settings } = deps;
  const log = deps.log ?? (() => undefined);
  const started = clock.now();
  const summary: DispatcherRunSummary = { admitted: 0, executionsStarted: 0, poison: 0, duplicates: 0, deferred: 0, waits: 0, stoppedBecause: 'queue-empty' };

  // The pool as this run's last admission left it: planning from it saves a read. Releases since then only
  // make room, and each release wakes the dispatcher again, so a plan from it is never too generous.
  let admittedPool: PoolState | undefined;
  for (;;) {
    if (clock.now() - started >= settings.maxRunMs) {
      summary.stoppedBecause = 'time-limit';
      break;
    }
    const pool = admittedPool ?? (await readPool(ddb, settings.tableName, { leases: false }));
    admittedPool = undefined;
    const plan = planAdmission(pool, clock.now(), settings.taskVcpu, settings.jobsPerExecution);
    if (plan.count === 0) {
      if (plan.limitedBy === 'budget') {
        summary.stoppedBecause = 'no-budget'; // the next release wakes it
        break;
      }
      if ((await visibleBacklog(sqs, settings.queueUrl)) === 0) break;
      summary.waits++;
      await clock.sleep(Math.max(1, Math.ceil(plan.nextTokenAt - clock.now())));
      continue;
    }
    const gathered = await gather(deps, plan.count, summary, log);
    if (gathered.receivedAny === false) break;
    if (gathered.jobs.length === 0) continue;
    const { outcome, pool: after } = await admitAndStart(deps, pool, gathered.jobs, summary, log);
    if (outcome !== 'ok') {
      summary.stoppedBecause = outcome;
      break;
    }
    admittedPool = after;
  }
  log({ event: 'dispatcherDone', ...summary, ms: clock.now() - started });
  return summary;
}

async function visibleBacklog(sqs: Sender, queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
}

/** Receives up to `wanted` admissible jobs; poison goes to the DLQ, known jobs are dropped. */
async function gather(deps: DispatcherDeps, wanted: number, summary: DispatcherRunSummary, log: Log) {
  const { sqs, ddb, clock, settings } = deps;
  const jobs: Received[] = [];
  const seen = new Set<string>();
  let receivedAny = false;
  while (jobs.length < wanted) {
    const { Messages = [] } = (await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: settings.queueUrl,
        MaxNumberOfMessages: Math.min(10, wanted - jobs.length),
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    )) as { Messages?: Message[] };
    if (Messages.length === 0) break;
    receivedAny = true;
    const toDelete: Message[] = [];
    const duplicate = (job: Job, message: Message) => {
      log({ event: 'duplicate', jobId: job.jobId, key: job.key });
      summary.duplicates++;
      toDelete.push(message);
    };
    const fresh: Received[] = [];
    for (const message of Messages) {
      const parsed = parseIntakeMessage(message.Body, settings);
      if (parsed.kind === 'poison') {
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: settings.deadLetterQueueUrl,
            MessageBody: message.Body ?? '',
            MessageAttributes: {
              reason: { DataType: 'String', StringValue: parsed.reason },
              sourceMessageId: { DataType: 'String', StringValue: message.MessageId ?? 'unknown' },
            },
          }),
        );
        log({ event: 'poison', messageId: message.MessageId, reason: parsed.reason });
        summary.poison++;
        toDelete.push(message);
        continue;
      }
      const { job } = parsed;
      if (seen.has(job.jobId)) {
        duplicate(job, message);
        continue;
      }
      seen.add(job.jobId);
      fresh.push({ job, message });
    }
    // One ledger write per job, all at once: each is its own item, and the order does not matter.
    const firstSights = await Promise.all(fresh.map(({ job }) => recordFirstSight(ddb, settings.tableName, job, clock.now())));
    fresh.forEach((received, i) => (firstSights[i] ? jobs.push(received) : duplicate(received.job, received.message)));
    await deleteMessages(sqs, settings.queueUrl, toDelete);
    if (Messages.length < Math.min(10, wanted)) break;
  }
  return { jobs, receivedAny };
}

async function admitAndStart(
  deps: DispatcherDeps,
  initialPool: PoolState,
  candidates: Received[],
  summary: DispatcherRunSummary,
  log: Log,
): Promise<{ outcome: 'ok' | 'start-failed' | 'contention'; pool?: PoolState }> {
  const { sqs, sfn, ddb, clock, settings } = deps;
  let pool = initialPool;
  let batch = candidates;
  let admitted: PoolState | undefined;
  for (let tries = 0; tries < ADMISSION_TRIES && batch.length > 0; tries++) {
    const now = clock.now();
    const plan = planAdmission(pool, now, settings.taskVcpu, batch.length);
    if (plan.count < batch.length) {
      await changeVisibility(sqs, settings.queueUrl, batch.slice(plan.count).map((r) => r.message), 0);
      batch = batch.slice(0, plan.count);
      if (batch.length === 0) break;
    }
    const name = executionNameFor(batch.map((r) => r.job));
    const requests = batch.map((r) => ({ jobId: r.job.jobId, vcpu: settings.taskVcpu }));
    admitted = await tryAdmit(ddb, pool, admissionCommand(settings.tableName, pool, now, requests, name, settings.leaseSeconds * 1000));
    if (admitted) break;
    // The premise changed (budget edited, or a lease for one of these jobs is held): re-read and retry.
    pool = await readPool(ddb, settings.tableName);
    const held = batch.filter((r) => pool.leases[r.job.jobId]);
    if (held.length > 0) {
      log({ event: 'leaseAlreadyHeld', jobIds: held.map((r) => r.job.jobId) });
      summary.deferred += held.length;
      await changeVisibility(sqs, settings.queueUrl, held.map((r) => r.message), HELD_LEASE_RETRY_SECONDS);
      batch = batch.filter((r) => !pool.leases[r.job.jobId]);
    }
  }
  if (!admitted) {
    if (batch.length > 0) await changeVisibility(sqs, settings.queueUrl, batch.map((r) => r.message), 0);
    return { outcome: batch.length > 0 ? 'contention' : 'ok' };
  }

  const jobs = batch.map((r) => r.job);
  const name = executionNameFor(jobs);
  const input: { jobs: JobInput[] } = { jobs: jobs.map((job) => ({ ...job, vcpu: settings.taskVcpu })) };
  let executionArn: string;
  try {
    const started = await sfn.send(new StartExecutionCommand({ stateMachineArn: settings.stateMachineArn, name, input: JSON.stringify(input) }));
    executionArn = started.executionArn;
  } catch (error) {
    if ((error as Error).name !== 'ExecutionAlreadyExists') {
      log({ event: 'startFailed', execution: name, error: (error as Error).name, message: (error as Error).message });
      const leases = jobs.map((job) => ({ jobId: job.jobId, vcpu: settings.taskVcpu, execution: name }));
      await tryUpdate(ddb, releaseCommand(settings.tableName, leases, clock.now()));
      await changeVisibility(sqs, settings.queueUrl, batch.map((r) => r.message), START_FAILURE_RETRY_SECONDS);
      return { outcome: 'start-failed' };
    }
    // Same name means same jobs at the same attempt: that execution already runs them.
    executionArn = executionArnOf(settings.stateMachineArn, name);
  }
  await Promise.all(jobs.map((job) => ddb.send(new UpdateCommand(markRunningCommand(settings.tableName, job, name, executionArn, clock.now())))));
  await deleteMessages(sqs, settings.queueUrl, batch.map((r) => r.message));
  summary.admitted += jobs.length;
  summary.executionsStarted++;
  log({ event: 'admitted', execution: name, jobs: jobs.length, jobIds: jobs.map((j) => j.jobId) });
  return { outcome: 'ok', pool: admitted };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function deleteMessages(sqs: Sender, queueUrl: string, messages: readonly Message[]): Promise<void> {
  for (const chunk of chunks(messages, 10)) {
    const result = await sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }),
    );
    if (result.Failed?.length) throw new Error(`could not delete ${result.Failed.length} intake message(s): ${JSON.stringify(result.Failed)}`);
  }
}

async function changeVisibility(sqs: Sender, queueUrl: string, messages: readonly Message[], seconds: number): Promise<void> {
  for (const chunk of chunks(messages, 10)) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: seconds })),
      }),
    );
  }
}

let clients: { sqs: SQSClient; sfn: SFNClient; ddb: DynamoDBDocumentClient } | undefined;

/** Lambda entry: woken by uploads, lease releases and a schedule; the event itself carries nothing needed. */
export async function handler(): Promise<DispatcherRunSummary> {
  clients ??= { sqs: new SQSClient({}), sfn: new SFNClient({}), ddb: DynamoDBDocumentClient.from(new DynamoDBClient({})) };
  return runDispatcher({ ...clients, clock: systemClock, settings: dispatcherSettingsFromEnv(), log: jsonLog('dispatcher') });
}
