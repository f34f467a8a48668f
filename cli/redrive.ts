/**
 * `sluice redrive`: failed jobs and dead letters back into the pipeline. A failed job's next round goes to the intake
 * queue, naming the failure it redrives, and the row is marked (functions/ledger.ts redriveJob); the job stays failed
 * until that message is admitted. A dead letter is sent to the intake queue as it was (body and sluice's
 * attributes), then deleted. Poison (a dead letter with the dispatcher's `reason`) stays unless asked for: it would
 * only come back. Run twice, the second finds each job marked and no dead letter it would move; the ledger, not the
 * command, decides what runs, so a message sent twice starts one job.
 */
import { ReceiveMessageCommand, SendMessageBatchCommand, type BatchResultErrorEntry, type Message } from '@aws-sdk/client-sqs';
import type { EnvironmentConfig } from '../environments';
import { readLedgerRows, redriveJob, type JobStatus, type LedgerRow } from '../functions/ledger';
import { changeVisibilityInBatches, deleteInBatches, MESSAGE_ATTRIBUTES, sluiceAttributesOf } from '../functions/queue-batches';
import { JANITOR_PERIOD_MINUTES } from '../environments/function-settings';
import { peekDeadLetters, queryFailedJobs } from './failures';
import type { Progress } from './progress';
import { CliError, EXIT, intakeQueueUrls, queueDepths, queueUrl, stageNames, type StageClients } from './stage';

interface RedriveRequest {
  /** Every job failed since this time (epoch ms), or none. */
  readonly failedSince?: number;
  /** With failedSince: only this error. */
  readonly error?: string;
  readonly jobIds: readonly string[];
  readonly deadLetters: boolean;
  /** With deadLetters: poison too (after its cause — scope, format — was fixed). */
  readonly includePoison?: boolean;
  readonly dryRun: boolean;
}

interface RedriveSummary {
  readonly dryRun: boolean;
  /** Jobs put back (or, in a dry run, that would be). */
  readonly redriven: string[];
  /** Jobs left alone, and why. */
  readonly skipped: Array<{ jobId: string; status: JobStatus | 'unknown'; reason: string }>;
  /** Dead letters sent back to the intake queue, per queue (in a dry run: how many would be). */
  readonly deadLetters: Record<string, number>;
  /** Poison left in a dead-letter queue, per queue (without includePoison). */
  readonly poisonLeft: Record<string, number>;
}

export function checkRequest(request: RedriveRequest): void {
  if (request.failedSince === undefined && request.jobIds.length === 0 && !request.deadLetters) {
    throw new CliError('say what to redrive: --failed (jobs failed since --since), --job <id>…, or --dlq', EXIT.usage);
  }
  for (const id of request.jobIds)
    if (!/^[0-9a-f]{32}$/.test(id)) throw new CliError(`--job takes job ids (32 hex digits; sluice find shows them), not "${id}"`, EXIT.usage);
}

/** Why a job asked for is left alone; undefined when it goes back. `named`: by --job, not found by --failed. */
export function skipReason(row: LedgerRow | undefined, named: boolean): string | undefined {
  if (!row) return 'no such job in the ledger';
  const leaseHeld = row.lease
    ? `its lease is still held (batch ${row.lease.execution}); the janitor gives it back within ${JANITOR_PERIOD_MINUTES} minutes`
    : undefined;
  if (row.status === 'failed') return leaseHeld;
  // Re-sent: an interrupted redrive may have left it queued without a message.
  if (row.status === 'queued' && named) return leaseHeld;
  return `${row.status}: only failed jobs are redriven`;
}

async function redriveJobs(
  clients: StageClients,
  config: EnvironmentConfig,
  failedIds: readonly string[],
  namedIds: readonly string[],
  dryRun: boolean,
  progress: Progress,
  now: number,
) {
  const names = stageNames(config);
  const queueOf = intakeQueueUrls(clients, config);
  const unique = [...new Set([...failedIds, ...namedIds])];
  const rows = await readLedgerRows(clients.ddb, names.stateTable, unique);
  const redriven: string[] = [];
  const skipped: RedriveSummary['skipped'] = [];
  let done = 0;
  for (const jobId of unique) {
    const row = rows.get(jobId);
    let reason = skipReason(row, namedIds.includes(jobId));
    if (reason === undefined && !dryRun) {
      const target = { tableName: names.stateTable, queueUrl: await queueOf(row!.objectKey) };
      const result = await redriveJob({ ddb: clients.ddb, sqs: clients.sqs }, target, row!, now);
      if (!result.sent) reason = result.reason;
    }
    if (reason === undefined) redriven.push(jobId);
    else skipped.push({ jobId, status: row?.status ?? 'unknown', reason });
    progress.update(++done, unique.length, 'jobs');
  }
  return { redriven, skipped };
}

/**
 * Moves a dead-letter queue's messages to the intake queue, ten at a time (sent, then deleted), at most as many as
 * it held when the move began: what the dispatcher dead-letters again meanwhile is not taken round in a loop.
 * Poison stays (hidden while the move runs, visible again after) unless `includePoison`.
 */
async function moveDeadLetters(
  clients: StageClients,
  fromUrl: string,
  queueOf: (key: string | undefined) => Promise<string>,
  includePoison: boolean,
  dryRun: boolean,
  progress: Progress,
) {
  const total = (await queueDepths(clients, fromUrl)).waiting;
  if (dryRun) {
    // Looked at, not taken: every message is visible again at once.
    const sample = await peekDeadLetters(clients, fromUrl, Math.max(total, 1));
    const poison = includePoison ? 0 : sample.filter((m) => m.MessageAttributes?.reason).length;
    return { moved: Math.max(total, sample.length) - poison, poison };
  }
  let moved = 0;
  let poison = 0;
  const left: Message[] = [];
  while (moved + poison < total) {
    const { Messages = [] } = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: fromUrl,
        MaxNumberOfMessages: Math.min(10, total - moved - poison),
        VisibilityTimeout: 60,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['reason', ...MESSAGE_ATTRIBUTES],
      }),
    );
    if (Messages.length === 0) break;
    const movable = (Messages as Message[]).filter((m) => includePoison || !m.MessageAttributes?.reason);
    left.push(...(Messages as Message[]).filter((m) => !movable.includes(m)));
    poison += Messages.length - movable.length;
    if (movable.length === 0) continue;
    const sent = await sendToIntakes(clients, movable, queueOf);
    // Only what reached the intake queue leaves the DLQ; the rest is visible again within a minute.
    const deletable = movable.filter((_, i) => sent.sentIds.has(String(i)));
    // One receive's worth (ten at most): one delete call, so `notDeleted` is all of them that failed.
    const notDeleted = await deleteInBatches(clients.sqs, fromUrl, deletable);
    if (notDeleted.length > 0) {
      throw new CliError(
        `${notDeleted.length} message(s) were sent to the intake queue but not deleted from the DLQ (${notDeleted[0].Code}); they come back in a minute: run redrive --dlq again`,
        EXIT.failed,
      );
    }
    if (sent.failed.length > 0)
      throw new CliError(`the intake queue refused ${sent.failed.length} message(s): ${sent.failed[0].Code} ${sent.failed[0].Message ?? ''}`, EXIT.failed);
    moved += deletable.length;
    progress.update(moved + poison, total, 'dead letters');
  }
  // The poison left behind is visible again at once (hidden only while the move ran, so it was counted once).
  await changeVisibilityInBatches(clients.sqs, fromUrl, left, 0);
  return { moved, poison };
}

/** Sends dead letters each to its job's intake queue (its route's); answers which (by index) were sent and what was refused. */
async function sendToIntakes(clients: StageClients, messages: readonly Message[], queueOf: (key: string | undefined) => Promise<string>) {
  const byQueue = new Map<string, number[]>();
  for (const [i, m] of messages.entries()) {
    const url = await queueOf(keyOfMessage(m.Body));
    byQueue.set(url, [...(byQueue.get(url) ?? []), i]);
  }
  const sentIds = new Set<string>();
  const failed: BatchResultErrorEntry[] = [];
  for (const [url, indexes] of byQueue) {
    const sent = await clients.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: indexes.map((i) => ({ Id: String(i), MessageBody: messages[i].Body!, ...sluiceAttributesOf(messages[i]) })),
      }),
    );
    for (const e of sent.Successful ?? []) sentIds.add(e.Id!);
    failed.push(...(sent.Failed ?? []));
  }
  return { sentIds, failed };
}

/** The object key an intake message is for (an upload's event, or a job sent back); undefined for what is neither. */
function keyOfMessage(body: string | undefined): string | undefined {
  try {
    const parsed = JSON.parse(body ?? '') as { detail?: { object?: { key?: unknown } }; key?: unknown };
    const key = parsed.detail?.object?.key ?? parsed.key;
    return typeof key === 'string' ? key : undefined;
  } catch {
    return undefined;
  }
}

export async function redrive(
  clients: StageClients,
  config: EnvironmentConfig,
  request: RedriveRequest,
  progress: Progress,
  now: number,
): Promise<RedriveSummary> {
  checkRequest(request);
  const names = stageNames(config);
  const failed = request.failedSince === undefined ? [] : (await queryFailedJobs(clients, config, request.failedSince, now, request.error)).map((j) => j.jobId);
  const jobs =
    failed.length + request.jobIds.length > 0
      ? await redriveJobs(clients, config, failed, request.jobIds, request.dryRun, progress, now)
      : { redriven: [], skipped: [] };
  const deadLetters: Record<string, number> = {};
  const poisonLeft: Record<string, number> = {};
  if (request.deadLetters) {
    const queueOf = intakeQueueUrls(clients, config);
    // The stage's own intake queue first: a stage not deployed here says so by it.
    await queueOf(undefined);
    for (const name of [names.intakeDeadLetterQueue, names.ruleDeadLetterQueue]) {
      const url = await queueUrl(clients, config, name);
      const { moved, poison } = await moveDeadLetters(clients, url, queueOf, request.includePoison === true, request.dryRun, progress);
      deadLetters[name] = moved;
      if (poison > 0) poisonLeft[name] = poison;
    }
  }
  progress.end();
  return { dryRun: request.dryRun, ...jobs, deadLetters, poisonLeft };
}

export function formatRedrive(summary: RedriveSummary): string {
  const verb = summary.dryRun ? 'would redrive' : 'redriven';
  const lines = summary.redriven.map((id) => `${verb}  ${id}`);
  for (const { jobId, reason } of summary.skipped) lines.push(`skipped  ${jobId} (${reason})`);
  for (const [queue, count] of Object.entries(summary.deadLetters))
    lines.push(`${summary.dryRun ? 'would move' : 'moved'}  ${count} message${count === 1 ? '' : 's'} from ${queue} to the intake queue`);
  for (const [queue, count] of Object.entries(summary.poisonLeft))
    lines.push(
      `left  ${count} poison message${count === 1 ? '' : 's'} in ${queue} (they would come back; --include-poison moves them once their cause is fixed)`,
    );
  const moved = Object.values(summary.deadLetters).reduce((a, b) => a + b, 0);
  lines.push(
    `${summary.dryRun ? 'dry run: nothing changed; ' : ''}${summary.redriven.length} job(s) ${verb}, ${summary.skipped.length} skipped, ${moved} dead letter(s) ${summary.dryRun ? 'to move' : 'moved'}`,
  );
  return lines.join('\n');
}
