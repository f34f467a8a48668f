/**
 * `sluice backfill`: the objects already in the stage's input prefix, sent through the intake as their uploads would
 * have been. Each current object version (ListObjectVersions; delete markers and older versions are not listed as
 * current) becomes the EventBridge "Object Created" event its upload gives, sent to the intake queue: the dispatcher
 * reads it as it reads an upload, with the same job id (functions/jobs.ts parseIntakeMessage, called here on the
 * very body sent). The ledger starts one job per id, so a backfill that overlaps live uploads, or runs twice, starts
 * nothing twice.
 */
import { ListObjectVersionsCommand, type ObjectVersion } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { inputPrefixesOf, type EnvironmentConfig } from '../environments';
import { vcpuOf } from '../environments/fargate';
import { parseIntakeMessage } from '../functions/jobs';
import { chunks, type Clock } from '../functions/runtime';
import { readCheckpoint, writeCheckpoint, type BackfillScope, type Checkpoint } from './backfill-checkpoint';
import { readInventoryFile, readManifest } from './inventory';
import type { Progress } from './progress';
import { pacer, sendPaced, type Outgoing } from './send-batches';
import { CliError, EXIT, intakeUnder, notDeployed, queueUrl, stageNames, type Intake, type StageClients } from './stage';

/**
 * Messages a second unless --rate says otherwise: five SendMessageBatch calls and a twentieth of a listing page a
 * second, light on the account's S3 and SQS, yet above Fargate's 20 launches/s, so the backfill never holds a stage back.
 */
export const DEFAULT_RATE_PER_SECOND = 50;
/** The most --rate allows, whatever the stage: beyond it, a backfill only competes with the account's other SQS use. */
export const MAX_RATE_PER_SECOND = 500;
/**
 * Seconds of the stage's launches one second of backfill may send: faster, the messages only wait in the intake
 * queue, ahead of live uploads, for over a minute per second sent.
 */
const RATE_PER_LAUNCH_RATE = 60;
/** Seconds of the stage's launches the intake's backlog may hold before a backfill waits: an hour. */
const BACKLOG_PER_LAUNCH_RATE = 3600;
/**
 * The most a backlog may be, in days of the stage's slowest drain (its budget's tasks each running to their timeout),
 * by default and with --max-backlog: within the intake queue's 14-day retention, with a margin, so nothing expires.
 */
const DEFAULT_DRAIN_DAYS = 7;
const MAX_DRAIN_DAYS = 13;
/** The fewest messages a backlog bound allows: one chunk of sends, so a backfill always moves on. */
const MIN_BACKLOG = 1000;
/** The slowest --rate: slower, a batch's pacing wait outgrows what a timer holds. */
const MIN_RATE_PER_SECOND = 0.1;
/** How often a backfill that waits for room reads the intake's backlog again. */
const BACKLOG_POLL_MS = 30_000;

export interface BackfillRequest {
  /** Keys under this prefix (the input prefix, or within it). */
  readonly prefix: string;
  /** Only objects last modified at or after this time (epoch ms). */
  readonly since?: number;
  readonly ratePerSecond: number;
  /** The intake backlog (visible and delayed messages) at or above which sending waits; default backlogCapFor(config). */
  readonly maxBacklog?: number;
  readonly dryRun: boolean;
  readonly checkpointFile?: string;
  /** An S3 Inventory manifest (s3://…/manifest.json) to read instead of listing the bucket. */
  readonly inventory?: string;
}

export interface BackfillSummary {
  readonly stage: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly since: string | null;
  readonly inventory: string | null;
  readonly dryRun: boolean;
  /** Current object versions listed under the prefix (this run). */
  readonly listed: number;
  /** Of those, the ones sent (in a dry run: that would be). */
  readonly sent: number;
  /** Listed but left out: not ending with the input suffix, or older than --since. */
  readonly skipped: { readonly suffix: number; readonly olderThanSince: number };
  /** Resumed from a checkpoint: messages its earlier runs sent. */
  readonly resumedAfter?: number;
  /** The checkpoint says the listing was done: nothing was listed again. */
  readonly alreadyComplete?: boolean;
}

/** The fastest --rate this stage takes. */
export function maxRateFor(config: EnvironmentConfig): number {
  return Math.min(MAX_RATE_PER_SECOND, config.capacity.launchRatePerSecond * RATE_PER_LAUNCH_RATE);
}

/** Messages the stage works through in `days` at worst: every task its budget holds running to its timeout. */
function slowestDrain(config: EnvironmentConfig, days: number): number {
  const tasks = Math.max(1, Math.floor(config.capacity.vcpuBudget / vcpuOf(config.task.cpu)));
  return Math.floor((tasks * days * 86_400) / config.task.timeoutSeconds);
}

/**
 * The intake backlog a backfill waits below: an hour of the stage's launches, and no more than its slowest drain
 * empties in 7 days — a backlog the stage cannot work through within the queue's 14-day retention would expire unseen.
 */
export function backlogCapFor(config: EnvironmentConfig): number {
  return Math.max(MIN_BACKLOG, Math.min(config.capacity.launchRatePerSecond * BACKLOG_PER_LAUNCH_RATE, slowestDrain(config, DEFAULT_DRAIN_DAYS)));
}

/** The largest --max-backlog: what the stage's slowest drain empties in 13 days, inside the queue's retention. */
export function maxBacklogFor(config: EnvironmentConfig): number {
  return Math.max(MIN_BACKLOG, slowestDrain(config, MAX_DRAIN_DAYS));
}

/** `--max-backlog 5000`: a whole number of messages, from 1,000 (a chunk of sends) to maxBacklogFor(config). */
export function parseMaxBacklog(text: string, config: EnvironmentConfig): number {
  const backlog = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  const max = maxBacklogFor(config);
  if (!(backlog >= MIN_BACKLOG && backlog <= max))
    throw new CliError(
      `--max-backlog takes a number of messages from ${MIN_BACKLOG} to ${max} (what stage ${config.stage} works through in ${MAX_DRAIN_DAYS} days if every task runs to its timeout; the queue keeps a message 14) (got "${text}")`,
      EXIT.usage,
    );
  return backlog;
}

/** Waits while the intake queue holds `cap` messages or more (visible and delayed: what waits to be admitted). */
async function waitForRoom(clients: StageClients, queue: string, cap: number, wait: { clock: Clock; waiting: (detail: string) => void }): Promise<void> {
  for (;;) {
    const { Attributes: a = {} } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queue, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesDelayed'] }),
    );
    const backlog = Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
    if (backlog < cap) return;
    wait.waiting(`sent of listed; waiting: the intake holds ${backlog} message(s), --max-backlog ${cap}`);
    await wait.clock.sleep(BACKLOG_POLL_MS);
  }
}

/** The rate without --rate: the default, or the stage's most if that is lower. */
export function defaultRateFor(config: EnvironmentConfig): number {
  return Math.min(DEFAULT_RATE_PER_SECOND, maxRateFor(config));
}

/** `--rate 50` or `--rate 50/s`: messages a second, above 0 and at most maxRateFor(config). */
export function parseRate(text: string, config: EnvironmentConfig): number {
  const match = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(text.trim());
  const rate = match ? Number(match[1]) : Number.NaN;
  const max = maxRateFor(config);
  if (!(rate >= MIN_RATE_PER_SECOND))
    throw new CliError(`--rate takes messages per second, at least ${MIN_RATE_PER_SECOND}, like 50/s (got "${text}")`, EXIT.usage);
  if (rate > max) {
    throw new CliError(
      `--rate ${text} is above ${max}/s, the most for stage ${config.stage} (${RATE_PER_LAUNCH_RATE} × its ${config.capacity.launchRatePerSecond} launches/s, at most ${MAX_RATE_PER_SECOND}/s): faster only queues them`,
      EXIT.usage,
    );
  }
  return rate;
}

/** `--since 2026-11-01` (UTC) or an ISO time with its zone (`2026-11-01T08:00:00Z`): epoch ms. */
export function parseSince(text: string): number {
  const time = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text;
  const wellFormed = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(time);
  const ms = wellFormed ? Date.parse(time) : Number.NaN;
  // A day the calendar lacks (2026-02-31) would otherwise roll over into the next month.
  const day = time.slice(0, 10);
  const realDay = wellFormed && !Number.isNaN(Date.parse(`${day}T00:00:00Z`)) && new Date(`${day}T00:00:00Z`).toISOString().startsWith(day);
  if (Number.isNaN(ms) || !realDay) {
    throw new CliError(`--since takes a date (2026-11-01, UTC) or an ISO time with its zone (2026-11-01T08:00:00Z) (got "${text}")`, EXIT.usage);
  }
  return ms;
}

/**
 * The prefix to list: the stage's input prefix, or one inside an input prefix (a route's, on a stage with routes: one
 * backfill goes through one route's queue).
 */
export function checkPrefix(prefix: string | undefined, config: EnvironmentConfig): string {
  if (prefix === undefined) return config.bucket.inputPrefix;
  if (!intakeUnder(config, prefix)) {
    const inputs = inputPrefixesOf(config).join(', ');
    throw new CliError(`--prefix ${prefix} is outside the stage's input prefixes (${inputs}): only objects there are jobs`, EXIT.usage);
  }
  return prefix;
}

/** The intake a backfill of `prefix` goes through (checkPrefix took it). */
function intakeOfPrefix(config: EnvironmentConfig, prefix: string): Intake {
  const intake = intakeUnder(config, prefix);
  if (!intake) throw new Error(`backfill of ${prefix}: no intake takes it (checkPrefix should have refused it)`);
  return intake;
}

/**
 * An event's sequencer for a listed version. The upload's own is not listed anywhere; a version id identifies the
 * job without it, and an object from before versioning (version "null") is identified by its last modification.
 */
export function sequencerOf(version: Pick<ObjectVersion, 'LastModified'>): string {
  return (version.LastModified?.getTime() ?? 0).toString(16).toUpperCase().padStart(16, '0');
}

/**
 * JSON that SQS takes: a message may hold any character but U+FFFE and U+FFFF (and controls JSON escapes anyway), which
 * a key may contain; written as escapes, the body parses to the same key.
 */
export function jsonForSqs(value: unknown): string {
  return JSON.stringify(value).replace(/[\uFFFE\uFFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The EventBridge "Object Created" event an upload of this version gives (the fields sluice and its users read). */
export function objectCreatedEvent(config: EnvironmentConfig, bucket: string, version: ObjectVersion): string {
  const versionId = version.VersionId && version.VersionId !== 'null' ? version.VersionId : undefined;
  return jsonForSqs({
    version: '0',
    id: randomUUID(),
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: config.account.id,
    time: (version.LastModified ?? new Date(0)).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: config.account.region,
    resources: [`arn:aws:s3:::${bucket}`],
    detail: {
      version: '0',
      bucket: { name: bucket },
      object: { key: version.Key, size: version.Size, etag: version.ETag?.replace(/"/g, ''), 'version-id': versionId, sequencer: sequencerOf(version) },
      reason: 'PutObject',
    },
  });
}

/** A listed version as the message sent for it, with the job id the dispatcher reads from that message. */
export function backfillMessage(config: EnvironmentConfig, version: ObjectVersion): Outgoing & { readonly key: string } {
  const bucket = stageNames(config).bucket;
  const body = objectCreatedEvent(config, bucket, version);
  const intake = intakeOfPrefix(config, version.Key ?? '');
  const parsed = parseIntakeMessage(body, { bucketName: bucket, inputPrefix: intake.inputPrefix, inputSuffix: intake.inputSuffix });
  if (parsed.kind === 'poison') throw new Error(`backfill built a message the dispatcher refuses (${parsed.reason})`);
  return { id: parsed.job.jobId, body, key: version.Key! };
}

interface Tally {
  listed: number;
  sent: number;
  suffix: number;
  olderThanSince: number;
}

/** The versions of one page to send: current ones, with the intake's suffix, modified since `since`. */
function selectCurrent(intake: Intake, versions: readonly ObjectVersion[], since: number | undefined, tally: Tally): ObjectVersion[] {
  const suffix = intake.inputSuffix;
  return versions.filter((v) => {
    if (!v.IsLatest || !v.Key) return false;
    tally.listed++;
    if (suffix && !v.Key.endsWith(suffix)) return (tally.suffix++, false);
    if (since !== undefined && (v.LastModified?.getTime() ?? 0) < since) return (tally.olderThanSince++, false);
    return true;
  });
}

/** One page of what to backfill, and where the next begins (null after the last). */
interface Page {
  readonly versions: readonly ObjectVersion[];
  readonly next: Checkpoint['next'];
}
type Pager = (next: Checkpoint['next']) => Promise<Page>;

/** The bucket's own listing: ListObjectVersions, a thousand versions a page. */
function bucketPager(clients: StageClients, config: EnvironmentConfig, prefix: string): Pager {
  const bucket = stageNames(config).bucket;
  return async (next) => {
    try {
      const page = await clients.s3.send(
        new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: next?.keyMarker, VersionIdMarker: next?.versionIdMarker }),
      );
      return { versions: page.Versions ?? [], next: page.IsTruncated ? { keyMarker: page.NextKeyMarker!, versionIdMarker: page.NextVersionIdMarker } : null };
    } catch (error) {
      if ((error as Error).name === 'NoSuchBucket') throw notDeployed(config, `bucket ${bucket}`);
      throw error;
    }
  };
}

/** An S3 Inventory report: a page per CSV file its manifest lists; the marker is the next file's key. */
async function inventoryPager(clients: StageClients, config: EnvironmentConfig, manifest: string, prefix: string): Promise<Pager> {
  const inventory = await readManifest(clients, manifest, stageNames(config).bucket);
  return async (next) => {
    const index = next ? inventory.files.indexOf(next.keyMarker) : 0;
    if (index < 0) throw new CliError(`the checkpoint's next inventory file ${next!.keyMarker} is not in ${manifest}`, EXIT.usage);
    if (index >= inventory.files.length) return { versions: [], next: null };
    const following = inventory.files[index + 1];
    const versions = await readInventoryFile(clients, inventory, inventory.files[index], prefix);
    return { versions, next: following === undefined ? null : { keyMarker: following } };
  };
}

/** What the backfill lists, as its checkpoint names it. */
function scopeOf(config: EnvironmentConfig, request: BackfillRequest): BackfillScope {
  return {
    stage: config.stage,
    bucket: stageNames(config).bucket,
    prefix: request.prefix,
    since: request.since === undefined ? null : new Date(request.since).toISOString(),
    inventory: request.inventory ?? null,
  };
}

/**
 * The request's checkpoint, checked before any AWS call: not with a dry run (which sends nothing to record), a file of
 * this backfill or none yet, and a folder it can be written to.
 */
export function checkCheckpoint(config: EnvironmentConfig, request: BackfillRequest): void {
  const file = request.checkpointFile;
  if (file === undefined) return;
  if (request.dryRun) throw new CliError('--checkpoint records what was sent; a --dry-run sends nothing: leave one of them out', EXIT.usage);
  readCheckpoint(file, scopeOf(config, request));
  try {
    accessSync(dirname(resolve(file)), constants.W_OK);
  } catch {
    throw new CliError(`--checkpoint ${file}: its folder does not exist or cannot be written`, EXIT.usage);
  }
}

/** Lists (the bucket, or an inventory) page by page, sends each page's objects, then records the page's end in the checkpoint. */
export async function backfill(
  clients: StageClients,
  config: EnvironmentConfig,
  request: BackfillRequest,
  progress: Progress,
  clock: Clock,
  listed: (key: string, jobId: string) => void = () => undefined,
): Promise<BackfillSummary> {
  const scope = scopeOf(config, request);
  const resumed = request.checkpointFile ? readCheckpoint(request.checkpointFile, scope) : undefined;
  const tally: Tally = { listed: 0, sent: 0, suffix: 0, olderThanSince: 0 };
  const summary = () => ({
    ...scope,
    dryRun: request.dryRun,
    listed: tally.listed,
    sent: tally.sent,
    skipped: { suffix: tally.suffix, olderThanSince: tally.olderThanSince },
    ...(resumed ? { resumedAfter: resumed.sent } : {}),
  });
  if (resumed && resumed.next === null) return { ...summary(), alreadyComplete: true };
  const intake = intakeOfPrefix(config, request.prefix);
  const queue = request.dryRun ? '' : await queueUrl(clients, config, intake.queueName);
  const pace = pacer(request.ratePerSecond, clock);
  const nextPage = request.inventory ? await inventoryPager(clients, config, request.inventory, request.prefix) : bucketPager(clients, config, request.prefix);
  let next = resumed?.next ?? null;
  do {
    const page = await nextPage(next);
    const messages = selectCurrent(intake, page.versions, request.since, tally).map((v) => backfillMessage(config, v));
    for (const m of messages) listed(m.key, m.id);
    if (request.dryRun) tally.sent += messages.length;
    else {
      // A page may be a whole inventory file: the backlog is read again before each chunk of it.
      for (const chunk of chunks(messages, MIN_BACKLOG)) {
        await waitForRoom(clients, queue, request.maxBacklog ?? backlogCapFor(config), {
          clock,
          waiting: (detail) => progress.update(tally.sent, tally.listed, detail),
        });
        await sendPaced(clients.sqs, queue, chunk, pace, clock, (count) => progress.update((tally.sent += count), tally.listed, 'sent of listed'));
      }
    }
    next = page.next;
    if (request.checkpointFile && !request.dryRun) writeCheckpoint(request.checkpointFile, scope, next, (resumed?.sent ?? 0) + tally.sent, clock.now());
    progress.update(tally.sent, tally.listed, request.dryRun ? 'to send of listed' : 'sent of listed');
  } while (next);
  progress.end();
  return summary();
}

export function formatBackfill(summary: BackfillSummary): string {
  const where = `s3://${summary.bucket}/${summary.prefix}${summary.since ? ` modified since ${summary.since}` : ''}${summary.inventory ? ` (by the inventory ${summary.inventory})` : ''}`;
  if (summary.alreadyComplete) return `backfill of ${where} is complete (its checkpoint says so): ${summary.resumedAfter} message(s) were sent; nothing to do`;
  const verb = summary.dryRun ? 'would be sent' : 'sent';
  const lines = [
    `${summary.dryRun ? 'dry run: nothing sent; ' : ''}${summary.listed} object(s) listed in ${where}, ${summary.sent} ${verb} to the intake queue`,
  ];
  if (summary.skipped.suffix > 0) lines.push(`skipped  ${summary.skipped.suffix} without the stage's input suffix`);
  if (summary.skipped.olderThanSince > 0) lines.push(`skipped  ${summary.skipped.olderThanSince} modified before --since`);
  if (summary.resumedAfter !== undefined) lines.push(`resumed  from a checkpoint after ${summary.resumedAfter} message(s) sent by earlier runs`);
  if (!summary.dryRun) lines.push('each object starts one job: one already started (by its upload or an earlier backfill) starts nothing again');
  return lines.join('\n');
}
