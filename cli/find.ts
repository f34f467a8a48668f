/** `sluice find`: every job for one object (each of its versions), or one job by id, from the ledger. */
import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import type { EnvironmentConfig } from '../environments';
import { jobIdOf } from '../functions/jobs';
import { readLedgerRows, type LedgerRow } from '../functions/ledger';
import { CliError, consoleUrlOfExecution, EXIT, intakeOfKey, isMissingTable, notDeployed, stageNames, type StageClients } from './stage';
import { describeTaskTimes, taskRecord } from './task-record';

type FindTarget = { readonly kind: 'job'; readonly jobId: string } | { readonly kind: 'object'; readonly bucket: string; readonly key: string };

const JOB_ID = /^[0-9a-f]{32}$/;

/** A job id (32 hex), `s3://bucket/key`, or a key in the stage's bucket. */
export function parseTarget(target: string, stageBucket: string): FindTarget {
  if (JOB_ID.test(target)) return { kind: 'job', jobId: target };
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(target);
  if (s3) return { kind: 'object', bucket: s3[1], key: s3[2] };
  if (target.startsWith('s3://')) throw new CliError(`"${target}" is not s3://<bucket>/<key>`, EXIT.usage);
  if (target.length === 0) throw new CliError('name an object key, s3://bucket/key or a job id', EXIT.usage);
  return { kind: 'object', bucket: stageBucket, key: target };
}

export interface FoundJob {
  readonly jobId: string;
  readonly versionId?: string;
  /** undefined: this version has no ledger row (not uploaded under the input prefix, or not yet seen). */
  readonly row?: LedgerRow & Record<string, unknown>;
  readonly consoleUrl?: string;
  /** Where the worker wrote its result (`<resultsPrefix><key>.json`), once the job succeeded. */
  readonly result?: string;
  /** Where its task's time went (start-up, image pull, run, class), from the execution's record; or why that is not known. */
  readonly taskTime?: string;
  /** The route its key belongs to, on a stage with routes. */
  readonly route?: string;
}

async function versionsOf(clients: StageClients, bucket: string, key: string): Promise<Array<{ versionId: string; latest: boolean }>> {
  const versions: Array<{ versionId: string; latest: boolean }> = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const page = await clients.s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    for (const v of page.Versions ?? []) if (v.Key === key && v.VersionId) versions.push({ versionId: v.VersionId, latest: v.IsLatest === true });
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
  } while (keyMarker);
  return versions;
}

export async function findJobs(clients: StageClients, config: EnvironmentConfig, target: FindTarget): Promise<FoundJob[]> {
  const names = stageNames(config);
  const candidates: Array<{ jobId: string; versionId?: string; older?: boolean }> =
    target.kind === 'job'
      ? [{ jobId: target.jobId }]
      : (await versionsOf(clients, target.bucket, target.key)).map((v) => ({
          jobId: jobIdOf(target.bucket, target.key, v.versionId, ''),
          versionId: v.versionId,
          older: !v.latest,
        }));
  if (candidates.length === 0)
    throw new CliError(`no object s3://${(target as { bucket: string }).bucket}/${(target as { key: string }).key} (no version of it exists)`, EXIT.notFound);
  let rows: Map<string, LedgerRow>;
  try {
    rows = await readLedgerRows(
      clients.ddb,
      names.stateTable,
      candidates.map((c) => c.jobId),
    );
  } catch (error) {
    if (isMissingTable(error)) throw notDeployed(config, `table ${names.stateTable}`);
    throw error;
  }
  const found = candidates.map(({ jobId, versionId, older }) => {
    const row = rows.get(jobId) as (LedgerRow & Record<string, unknown>) | undefined;
    const route = row ? intakeOfKey(config, row.objectKey)?.route : undefined;
    return {
      jobId,
      versionId: versionId ?? row?.versionId,
      row,
      ...(route ? { route } : {}),
      consoleUrl: row?.executionArn ? consoleUrlOfExecution(config.account.region, row.executionArn) : undefined,
      // One result object per key: a later version's run writes over an older version's.
      result:
        row?.status === 'succeeded'
          ? `s3://${row.bucket}/${config.bucket.resultsPrefix}${row.objectKey}.json${older ? ' (since replaced by a later version’s)' : ''}`
          : undefined,
    };
  });
  if (target.kind === 'job' && !found[0].row) throw new CliError(`no job ${target.jobId} in ${names.stateTable}`, EXIT.notFound);
  const withTimes: FoundJob[] = [];
  for (const job of found) withTimes.push({ ...job, ...(await taskTimeOf(clients, job.row)) });
  return withTimes;
}

/** The succeeded job's task as its execution recorded it; a history that cannot be read says why, and nothing else fails. */
export async function taskTimeOf(clients: StageClients, row: LedgerRow | undefined): Promise<{ taskTime?: string }> {
  if (row?.status !== 'succeeded' || !row.executionArn || typeof row.taskArn !== 'string') return {};
  try {
    const task = await taskRecord(clients, row.executionArn, row.taskArn);
    return { taskTime: task ? describeTaskTimes(task) : 'not in its execution’s history' };
  } catch (error) {
    return { taskTime: `not known: the execution's history could not be read (${(error as Error).name})` };
  }
}

export function formatFound(jobs: readonly FoundJob[]): string {
  return jobs
    .map((job) => {
      const heading = `job ${job.jobId}${job.versionId ? ` (version ${job.versionId})` : ''}`;
      const row = job.row;
      if (!row) return `${heading}\n  no ledger row: this version was never seen by the pipeline (outside the input prefix, or its event is still on the way)`;
      const fields: Array<[string, string]> = [
        ['status', row.status],
        ['object', `s3://${row.bucket}/${row.objectKey}`],
        ...(job.route ? [['route', job.route] as [string, string]] : []),
        ['attempts', `${row.admissions} admitted, ${row.failedRuns} failed runs, ${row.capacityReturns ?? 0} returned for capacity`],
      ];
      for (const [field, value] of Object.entries(row)
        .filter(([k]) => k.endsWith('At'))
        .sort(([a], [b]) => a.localeCompare(b)))
        fields.push([field, String(value)]);
      if (row.executionArn) fields.push(['execution', row.executionArn], ['', job.consoleUrl ?? '']);
      if (row.lease) {
        const placed = row.lease.capacityProvider ? ` on ${row.lease.capacityProvider}` : '';
        fields.push(['lease', `${row.lease.vcpu} vCPU${placed} for ${row.lease.execution} until ${new Date(row.lease.expiresAt).toISOString()}`]);
      }
      if (typeof row.taskArn === 'string') fields.push(['task', row.taskArn]);
      if (job.taskTime) fields.push(['task time', job.taskTime]);
      if (job.result) fields.push(['result', job.result]);
      if (row.error) fields.push(['error', `${row.error}${row.cause ? `: ${row.cause}` : ''}`]);
      const width = Math.max(...fields.map(([label]) => label.length));
      return [heading, ...fields.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n');
    })
    .join('\n\n');
}
