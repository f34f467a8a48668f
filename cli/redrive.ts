/**
 * `sluice redrive`: failed jobs and dead letters back into the pipeline. A failed job goes from failed to queued on
 * its row (conditionally: of two redrives, one wins) and its next round to the intake queue; a dead letter is sent
 * to the intake queue as it was, then deleted. Run twice, the second finds nothing failed and an empty DLQ: the
 * ledger, not the command, decides what runs, so a message sent twice starts one job.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand, type Message } from '@aws-sdk/client-sqs';
import type { EnvironmentConfig } from '../environments';
import { readLedgerRows, redriveFailedJob, type JobStatus } from '../functions/ledger';
import { queryFailedJobs } from './failures';
import type { Progress } from './progress';
import { CliError, EXIT, queueDepths, queueUrl, stageNames, type StageClients } from './stage';

export interface RedriveRequest {
  /** Every job failed since this time (epoch ms), or none. */
  readonly failedSince?: number;
  /** With failedSince: only this error. */
  readonly error?: string;
  readonly jobIds: readonly string[];
  readonly deadLetters: boolean;
  readonly dryRun: boolean;
}

export interface RedriveSummary {
  readonly dryRun: boolean;
  /** Jobs put back (or, in a dry run, that would be). */
  readonly redriven: string[];
  /** Jobs left alone: only failed jobs are redriven. */
  readonly skipped: Array<{ jobId: string; status: JobStatus | 'unknown' }>;
  /** Dead letters sent back to the intake queue, per queue (in a dry run: how many are there). */
  readonly deadLetters: Record<string, number>;
}

export function checkRequest(request: RedriveRequest): void {
  if (request.failedSince === undefined && request.jobIds.length === 0 && !request.deadLetters) {
    throw new CliError('say what to redrive: --failed (jobs failed since --since), --job <id>…, or --dlq', EXIT.usage);
  }
  for (const id of request.jobIds)
    if (!/^[0-9a-f]{32}$/.test(id)) throw new CliError(`--job takes job ids (32 hex digits; sluice find shows them), not "${id}"`, EXIT.usage);
}

async function redriveJobs(clients: StageClients, config: EnvironmentConfig, jobIds: readonly string[], dryRun: boolean, progress: Progress, now: number) {
  const names = stageNames(config);
  const target = { tableName: names.stateTable, queueUrl: await queueUrl(clients, config, names.intakeQueue) };
  const rows = await readLedgerRows(clients.ddb, names.stateTable, jobIds);
  const redriven: string[] = [];
  const skipped: RedriveSummary['skipped'] = [];
  const unique = [...new Set(jobIds)];
  let done = 0;
  for (const jobId of unique) {
    const row = rows.get(jobId);
    const put = row?.status === 'failed' && (dryRun || (await redriveFailedJob({ ddb: clients.ddb, sqs: clients.sqs }, target, row, now)));
    if (put) redriven.push(jobId);
    else skipped.push({ jobId, status: row?.status ?? 'unknown' });
    progress.update(++done, unique.length, 'jobs');
  }
  return { redriven, skipped };
}

/** Moves every message of a dead-letter queue to the intake queue, ten at a time: sent first, then deleted. */
async function moveDeadLetters(clients: StageClients, fromUrl: string, toUrl: string, progress: Progress): Promise<number> {
  const total = (await queueDepths(clients, fromUrl)).waiting;
  let moved = 0;
  for (;;) {
    const { Messages = [] } = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: fromUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60, WaitTimeSeconds: 1 }),
    );
    if (Messages.length === 0) return moved;
    const entries = (Messages as Message[]).map((m, i) => ({ Id: String(i), MessageBody: m.Body! }));
    const sent = await clients.sqs.send(new SendMessageBatchCommand({ QueueUrl: toUrl, Entries: entries }));
    const sentIds = new Set((sent.Successful ?? []).map((s) => s.Id));
    // Only what reached the intake queue leaves the DLQ; the rest is visible again within a minute.
    const deletable = Messages.filter((_, i) => sentIds.has(String(i)));
    if (deletable.length > 0) {
      await clients.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: fromUrl, Entries: deletable.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
      );
    }
    if ((sent.Failed ?? []).length > 0)
      throw new CliError(`the intake queue refused ${sent.Failed!.length} message(s): ${sent.Failed![0].Code} ${sent.Failed![0].Message ?? ''}`, EXIT.failed);
    moved += deletable.length;
    progress.update(moved, Math.max(total, moved), 'dead letters');
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
  const wanted = [...failed, ...request.jobIds];
  const jobs = wanted.length > 0 ? await redriveJobs(clients, config, wanted, request.dryRun, progress, now) : { redriven: [], skipped: [] };
  const deadLetters: Record<string, number> = {};
  if (request.deadLetters) {
    const intake = await queueUrl(clients, config, names.intakeQueue);
    for (const name of [names.intakeDeadLetterQueue, names.ruleDeadLetterQueue]) {
      const url = await queueUrl(clients, config, name);
      deadLetters[name] = request.dryRun ? (await queueDepths(clients, url)).waiting : await moveDeadLetters(clients, url, intake, progress);
    }
  }
  progress.end();
  return { dryRun: request.dryRun, ...jobs, deadLetters };
}

export function formatRedrive(summary: RedriveSummary): string {
  const verb = summary.dryRun ? 'would redrive' : 'redriven';
  const lines = summary.redriven.map((id) => `${verb}  ${id}`);
  for (const { jobId, status } of summary.skipped) lines.push(`skipped  ${jobId} (${status}: only failed jobs are redriven)`);
  for (const [queue, count] of Object.entries(summary.deadLetters))
    lines.push(`${summary.dryRun ? 'would move' : 'moved'}  ${count} message${count === 1 ? '' : 's'} from ${queue} to the intake queue`);
  const moved = Object.values(summary.deadLetters).reduce((a, b) => a + b, 0);
  lines.push(
    `${summary.dryRun ? 'dry run: nothing changed; ' : ''}${summary.redriven.length} job(s) ${verb}, ${summary.skipped.length} skipped, ${moved} dead letter(s) ${summary.dryRun ? 'to move' : 'moved'}`,
  );
  return lines.join('\n');
}
