/**
 * `sluice smoke`: one canary object through the deployed stage, end to end, as a rollout's last word on a stage.
 * It uploads a small object under the input prefix's reserved `_sluice-smoke/` folder (a lifecycle rule expires it
 * and its result), follows its job with the reads `sluice find` uses until it ends, then checks what a user would:
 * the result is there and is this job's, the lease came back, and the intake dead-letter queue grew by nothing. It
 * prints each hop's time — upload → admission (through EventBridge and the queue) → RunTask → task RUNNING →
 * result written → lease released — from the ledger, the result and the execution's record of the task.
 */
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import type { EnvironmentConfig } from '../environments';
import { jobIdOf } from '../functions/jobs';
import { readLedgerRows, type LedgerRow } from '../functions/ledger';
import { SMOKE_FOLDER } from '../environments/names';
import { resultKeyOf } from '../task-image/src/job-config';
import { RESULT_METADATA } from '../task-image/src/run-job';
import { EXIT, intakeUnder, queueUrl, stageNames, type StageClients } from './stage';
import { secondsBetween, taskRecord } from './task-record';

export interface SmokeOptions {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

export interface SmokeReport {
  readonly stage: string;
  readonly object: string;
  readonly jobId: string;
  readonly outcome: 'passed' | 'failed' | 'timed-out';
  /** The task that ran the canary, and the image it ran by digest (what a promotion to the next stage checks). */
  readonly worker?: { readonly taskArn: string; readonly image?: string; readonly imageDigest?: string };
  /** Seconds per hop; undefined where the stage has not recorded the moment (or the job never got there). */
  readonly hops: ReadonlyArray<{ readonly hop: string; readonly seconds: number | undefined }>;
  readonly checks: ReadonlyArray<{ readonly check: string; readonly ok: boolean; readonly detail: string }>;
  /** The exit code the command ends with: 0 passed, 1 failed, 4 timed out. */
  readonly exitCode: number;
}

/** A small object the stage's input filter admits, whose content the default processor reads as valid. */
export function canaryObject(config: EnvironmentConfig, stamp: string): { key: string; body: string; contentType: string } {
  // The suffix of the intake the stage's input prefix belongs to (its route's, on a stage with routes).
  const suffix = intakeUnder(config, config.bucket.inputPrefix)?.inputSuffix ?? '.jsonl';
  const key = `${config.bucket.inputPrefix}${SMOKE_FOLDER}${stamp}${suffix}`;
  if (suffix.endsWith('.csv')) return { key, body: 'canary,stage\nsluice-smoke,' + config.stage + '\n', contentType: 'text/csv' };
  if (suffix.endsWith('.json')) return { key, body: `${JSON.stringify({ canary: 'sluice-smoke', stage: config.stage })}\n`, contentType: 'application/json' };
  return { key, body: `${JSON.stringify({ canary: 'sluice-smoke', stage: config.stage })}\n`, contentType: 'application/x-ndjson' };
}

async function dlqDepth(clients: StageClients, config: EnvironmentConfig): Promise<number> {
  const url = await queueUrl(clients, config, stageNames(config).intakeDeadLetterQueue);
  const { Attributes } = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
}

/** Reads the canary's ledger row until it ends or the deadline passes; the last row read (undefined: never admitted). */
async function followJob(
  clients: StageClients,
  job: { table: string; jobId: string; deadline: number },
  options: SmokeOptions,
  progress: (text: string) => void,
): Promise<LedgerRow | undefined> {
  for (;;) {
    const row = (await readLedgerRows(clients.ddb, job.table, [job.jobId])).get(job.jobId);
    if (row?.status === 'succeeded' || row?.status === 'failed' || options.now() >= job.deadline) return row;
    progress(row ? `job ${row.status}${row.lease ? ` in ${row.lease.execution}` : ''}` : 'waiting for the job to be admitted');
    await options.sleep(options.intervalMs);
  }
}

/** Whether the job's result is there and is this job's, and when it was written. */
async function resultCheck(
  clients: StageClients,
  result: { bucket: string; key: string; jobId: string },
): Promise<{ check: { check: string; ok: boolean; detail: string }; at?: number }> {
  const check = 'its result is there, and is this job’s';
  try {
    const head = await clients.s3.send(new HeadObjectCommand({ Bucket: result.bucket, Key: result.key }));
    const metadata = head.Metadata ?? {};
    const mine = metadata[RESULT_METADATA.jobId] === result.jobId && metadata[RESULT_METADATA.status] === 'succeeded';
    return { check: { check, ok: mine, detail: `s3://${result.bucket}/${result.key} ${JSON.stringify(metadata)}` }, at: head.LastModified?.getTime() };
  } catch (error) {
    return { check: { check, ok: false, detail: `s3://${result.bucket}/${result.key}: ${(error as Error).name}` } };
  }
}

/** The canary's way through, hop by hop, from the ledger row, the task's record and the result's time. */
function hopsOf(times: { uploadedAt: number; row?: LedgerRow; task?: { createdAt?: number; startedAt?: number }; resultAt?: number }) {
  const { uploadedAt, row, task, resultAt } = times;
  const admittedAt = row?.startedAt ? Date.parse(row.startedAt) : undefined;
  const releasedAt = row?.finishedAt ? Date.parse(row.finishedAt) : undefined;
  return [
    { hop: 'upload → admitted (EventBridge, the queue, the dispatcher)', seconds: secondsBetween(uploadedAt, admittedAt) },
    { hop: 'admitted → RunTask accepted', seconds: secondsBetween(admittedAt, task?.createdAt) },
    { hop: 'RunTask → task RUNNING (Fargate provisioning, image pull)', seconds: secondsBetween(task?.createdAt, task?.startedAt) },
    { hop: 'RUNNING → result written', seconds: secondsBetween(task?.startedAt, resultAt) },
    { hop: 'result → lease released', seconds: secondsBetween(resultAt, releasedAt) },
    { hop: 'upload → lease released (in all)', seconds: secondsBetween(uploadedAt, releasedAt) },
  ];
}

export async function smoke(
  clients: StageClients,
  config: EnvironmentConfig,
  options: SmokeOptions,
  progress: (text: string) => void = () => {},
): Promise<SmokeReport> {
  const names = stageNames(config);
  const dlqBefore = await dlqDepth(clients, config);
  const canary = canaryObject(config, `${new Date(options.now()).toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}`);
  const uploadedAt = options.now();
  const put = await clients.s3.send(new PutObjectCommand({ Bucket: names.bucket, Key: canary.key, Body: canary.body, ContentType: canary.contentType }));
  if (!put.VersionId) throw new Error(`s3://${names.bucket} returned no version id: sluice's buckets are versioned`);
  const jobId = jobIdOf(names.bucket, canary.key, put.VersionId, '');
  const object = `s3://${names.bucket}/${canary.key}`;
  progress(`uploaded ${object} (job ${jobId})`);

  const row = await followJob(clients, { table: names.stateTable, jobId, deadline: uploadedAt + options.timeoutMs }, options, progress);
  const ended = row?.status === 'succeeded' || row?.status === 'failed';
  const checks: Array<{ check: string; ok: boolean; detail: string }> = [];
  checks.push({
    check: 'the job succeeded',
    ok: row?.status === 'succeeded',
    detail: row ? `${row.status}${row.error ? `: ${row.error}` : ''}` : `no ledger row after ${options.timeoutMs / 1000} s`,
  });

  let resultAt: number | undefined;
  if (row?.status === 'succeeded') {
    const result = await resultCheck(clients, { bucket: names.bucket, key: resultKeyOf(config.bucket.resultsPrefix, canary.key), jobId });
    resultAt = result.at;
    checks.push(result.check);
  }
  if (ended)
    checks.push({ check: 'its lease came back', ok: row!.lease === undefined, detail: row!.lease ? `still held by ${row!.lease.execution}` : 'no lease held' });
  const dlqAfter = await dlqDepth(clients, config);
  checks.push({ check: 'the intake dead-letter queue did not grow', ok: dlqAfter <= dlqBefore, detail: `${dlqBefore} → ${dlqAfter} message(s)` });

  const task = row?.executionArn && row.taskArn ? await taskRecord(clients, row.executionArn, row.taskArn) : undefined;
  const hops = hopsOf({ uploadedAt, row, task, resultAt });
  const outcome = !ended ? 'timed-out' : checks.every((c) => c.ok) ? 'passed' : 'failed';
  return {
    stage: config.stage,
    object,
    jobId,
    outcome,
    worker: row?.taskArn ? { taskArn: row.taskArn, image: task?.image, imageDigest: task?.imageDigest } : undefined,
    hops,
    checks,
    exitCode: outcome === 'passed' ? 0 : outcome === 'timed-out' ? EXIT.timedOut : EXIT.failed,
  };
}

export function formatSmoke(report: SmokeReport): string {
  const lines = [`smoke ${report.stage}: ${report.outcome}  (${report.object}, job ${report.jobId})`, ''];
  for (const c of report.checks) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.check}: ${c.detail}`);
  if (report.worker)
    lines.push('', `  task ${report.worker.taskArn}`, `  image ${report.worker.image ?? '—'} (${report.worker.imageDigest ?? 'no digest recorded'})`);
  lines.push('');
  const width = Math.max(...report.hops.map((h) => h.hop.length));
  for (const h of report.hops) lines.push(`  ${h.hop.padEnd(width)}  ${h.seconds === undefined ? '—' : `${h.seconds.toFixed(1)} s`}`);
  return lines.join('\n');
}
