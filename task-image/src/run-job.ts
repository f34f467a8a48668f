import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { BadInputError, classifyFailure, StopRequestedError, type FailureKind } from './errors';
import { resultKeyOf, type JobConfig } from './job-config';
import type { Logger } from './log';
import type { Processor } from './processor';

/** Object metadata on each result, so the idempotency check is one HeadObject. */
export const RESULT_METADATA = {
  jobId: 'sluice-job-id',
  sourceVersion: 'sluice-source-version',
  status: 'sluice-status',
} as const;

/** Recorded when the source bucket is not versioned (S3's own name for that version). */
export const UNVERSIONED = 'null';

export interface JobResult {
  schemaVersion: 1;
  jobId: string;
  status: 'succeeded' | 'failed';
  source: {
    bucket: string;
    key: string;
    versionId: string;
    etag: string | null;
    contentLength: number | null;
    contentType: string | null;
  };
  processor: { name: string; version: string };
  timings: { startedAt: string; finishedAt: string; durationMs: number };
  output: unknown;
  error: { kind: 'bad-input'; reason: string } | null;
}

export type JobOutcome =
  | { status: 'succeeded'; resultKey: string }
  | { status: 'skipped'; resultKey: string }
  /** Processed, but a newer version of the object is the current one: its own job writes the result. */
  | { status: 'superseded'; resultKey: string; currentVersionId: string }
  | { status: FailureKind; reason: string };

export interface JobDependencies {
  s3: S3Client;
  processor: Processor;
  log: Logger;
  /** Aborted on SIGTERM. */
  signal: AbortSignal;
}

/**
 * The keys the job may mean. S3's classic notifications form-encode keys ('a b' → 'a+b'); for EventBridge the
 * documentation is silent and AWS's own Powertools decodes them. The key as delivered comes first; its decoded
 * form is tried when it differs, so either delivery works.
 */
export function candidateKeys(key: string): string[] {
  let decoded = key;
  try {
    decoded = decodeURIComponent(key.replace(/\+/g, ' '));
  } catch {
    // Not valid percent-encoding: the key is meant as it is.
  }
  return decoded === key ? [key] : [key, decoded];
}

export async function runJob(delivered: JobConfig, deps: JobDependencies): Promise<JobOutcome> {
  const { log, signal } = deps;
  const started = new Date();
  // A failure is recorded against the key that was opened, once one was.
  let config = delivered;
  try {
    const candidates = candidateKeys(delivered.key).map((key) => ({ ...delivered, key, resultKey: resultKeyOf(delivered.resultsPrefix, key) }));
    const skipped = await findWrittenResult(candidates, deps);
    if (skipped) return skipped;

    const opened = await openObject(candidates, deps);
    config = opened.config;
    if (config.key !== delivered.key) log.info('key-decoded', { delivered: delivered.key, key: config.key });
    const versionId = opened.object.VersionId ?? config.versionId ?? UNVERSIONED;
    const output = await processObject(opened, versionId, deps);
    // A stop that arrived while the processor finished still means: write nothing.
    if (signal.aborted) throw new StopRequestedError();

    const current = await newerVersionOf(config, versionId, deps);
    if (current) {
      log.info('job-superseded', { reason: 'a newer version of the object is current: its own job writes the result', versionId, currentVersionId: current });
      return { status: 'superseded', resultKey: config.resultKey, currentVersionId: current };
    }
    const result = succeededResult(opened, versionId, output, started, deps.processor);
    await writeResult(config, result, deps);
    log.info('job-succeeded', { resultKey: config.resultKey, durationMs: result.timings.durationMs });
    return { status: 'succeeded', resultKey: config.resultKey };
  } catch (error) {
    return await reportFailure(error, config, started, deps);
  }
}

/** The first candidate key whose result this job already wrote: a redelivered job then does nothing. */
async function findWrittenResult(candidates: JobConfig[], deps: JobDependencies): Promise<JobOutcome | undefined> {
  for (const candidate of candidates) {
    if (await resultAlreadyWritten(candidate, deps)) {
      deps.log.info('job-skipped', { reason: 'result already written for this job and version', resultKey: candidate.resultKey });
      return { status: 'skipped', resultKey: candidate.resultKey };
    }
  }
  return undefined;
}

/** Streams the opened object through the processor; the body is closed whatever the processor does. */
async function processObject({ config, object }: OpenedObject, versionId: string, { processor, log, signal }: JobDependencies): Promise<unknown> {
  const body = object.Body as Readable | undefined;
  if (!body) throw new Error('GetObject returned no body');
  // Closing the socket is what makes a stop take effect mid-stream.
  const stopReading = () => body.destroy(new StopRequestedError());
  signal.addEventListener('abort', stopReading, { once: true });
  log.info('object-opened', {
    bucket: config.bucket,
    key: config.key,
    versionId,
    contentLength: object.ContentLength ?? null,
  });
  try {
    return await processor.process({
      body,
      bucket: config.bucket,
      key: config.key,
      versionId: object.VersionId,
      contentType: object.ContentType,
      contentLength: object.ContentLength,
      signal,
      log,
    });
  } finally {
    signal.removeEventListener('abort', stopReading);
    body.destroy();
  }
}

function succeededResult({ config, object }: OpenedObject, versionId: string, output: unknown, started: Date, processor: Processor): JobResult {
  return {
    schemaVersion: 1,
    jobId: config.jobId,
    status: 'succeeded',
    source: {
      bucket: config.bucket,
      key: config.key,
      versionId,
      etag: object.ETag ?? null,
      contentLength: object.ContentLength ?? null,
      contentType: object.ContentType ?? null,
    },
    processor: { name: processor.name, version: processor.version },
    timings: timings(started, new Date()),
    output: output ?? null,
    error: null,
  };
}

/** The outcome of a job that threw: bad input also leaves a failed result; a stop or a transient failure is only logged. */
async function reportFailure(error: unknown, config: JobConfig, started: Date, deps: JobDependencies): Promise<JobOutcome> {
  const { log, signal } = deps;
  // Once a stop (SIGTERM, the deadline) is asked for, whatever broke is its consequence: report the stop.
  const failure = classifyFailure(signal.aborted ? signal.reason : error, signal.aborted);
  if (failure.kind === 'bad-input') {
    await recordBadInput(config, failure.reason, started, deps);
  } else {
    log.warn(failure.kind === 'stopped' ? 'job-stopped' : 'job-transient-failure', {
      reason: failure.reason,
      ...(failure.kind === 'transient' && error instanceof Error ? { stack: error.stack } : {}),
    });
  }
  return { status: failure.kind, reason: failure.reason };
}

/**
 * Whether this job's result is already there. Listed first, with the result key as the prefix: the task role may
 * list only under its prefixes, and S3 answers a HEAD of a missing key with 403, not 404, to a caller that may not
 * list the whole bucket — so a HEAD alone cannot tell "missing" from "forbidden".
 */
async function resultAlreadyWritten(config: JobConfig, { s3, signal }: JobDependencies): Promise<boolean> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: config.bucket, Prefix: config.resultKey, MaxKeys: 1 }), { abortSignal: signal });
  if (listed.Contents?.[0]?.Key !== config.resultKey) return false;
  const head = await s3.send(new HeadObjectCommand({ Bucket: config.bucket, Key: config.resultKey }), { abortSignal: signal });
  const metadata = head.Metadata ?? {};
  return (
    metadata[RESULT_METADATA.status] === 'succeeded' &&
    metadata[RESULT_METADATA.jobId] === config.jobId &&
    (config.versionId === undefined || metadata[RESULT_METADATA.sourceVersion] === config.versionId)
  );
}

/**
 * The key's current version, if it is not the one this job processed. Results are kept per key: a job that runs late
 * (a capacity return, a re-queue, a redrive) must not overwrite the result of a newer upload of the same key. A newer
 * upload has a job of its own, which writes the result. (A newer version uploaded between this check and the write
 * below lands first only if its own task — admission, Fargate's start-up — overtakes a single PutObject.)
 */
async function newerVersionOf(config: JobConfig, versionId: string, { s3, signal }: JobDependencies): Promise<string | undefined> {
  if (versionId === UNVERSIONED) return undefined;
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: config.bucket, Key: config.key }), { abortSignal: signal });
    return head.VersionId !== undefined && head.VersionId !== versionId ? head.VersionId : undefined;
  } catch (error) {
    // Deleted since (the current version is a delete marker), or not to be seen: nothing newer to defer to.
    if (NOT_THERE.has((error as { name?: string }).name ?? '') || (error as { name?: string }).name === 'NotFound') return undefined;
    throw error;
  }
}

/** S3's answers for a key that is not there: 404s, or 403 to a caller that may not list the bucket. */
const NOT_THERE = new Set(['NoSuchKey', 'NoSuchVersion', 'AccessDenied']);

interface OpenedObject {
  config: JobConfig;
  object: GetObjectCommandOutput;
}

/** Opens the first candidate key that exists; if none does, the error of the key as delivered, described. */
async function openObject(candidates: JobConfig[], { s3, signal }: JobDependencies): Promise<OpenedObject> {
  let firstError: unknown;
  for (const config of candidates) {
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket: config.bucket, Key: config.key, VersionId: config.versionId }), { abortSignal: signal });
      return { config, object };
    } catch (error) {
      firstError ??= error;
      if (!NOT_THERE.has((error as { name?: string }).name ?? '')) break;
    }
  }
  throw describeMissingObject(firstError, candidates[0]);
}

/** A 404 on GetObject is the input's fault: say which object and version were missing. */
function describeMissingObject(error: unknown, config: JobConfig): unknown {
  const name = (error as { name?: string }).name;
  const where = `s3://${config.bucket}/${config.key}${config.versionId ? ` (version ${config.versionId})` : ''}`;
  if (name === 'NoSuchKey') return new BadInputError(`object ${where} does not exist`);
  if (name === 'NoSuchVersion') return new BadInputError(`version of ${where} does not exist`);
  if (name === 'NoSuchBucket') return new BadInputError(`bucket ${config.bucket} does not exist`);
  if (name === 'InvalidArgument' && config.versionId) {
    return new BadInputError(`S3 rejected the version id for ${where}: ${(error as Error).message}`);
  }
  if (name === 'AccessDenied') {
    return new BadInputError(`access denied reading ${where}: check the task role's s3:GetObject grant`);
  }
  return error;
}

async function writeResult(config: JobConfig, result: JobResult, { s3, signal }: JobDependencies): Promise<void> {
  // One PutObject: the result lands whole or not at all, and needs no multipart permissions.
  await s3.send(
    new PutObjectCommand({
      Bucket: config.bucket,
      Key: config.resultKey,
      Body: `${JSON.stringify(result, null, 2)}\n`,
      ContentType: 'application/json',
      Metadata: {
        [RESULT_METADATA.jobId]: result.jobId,
        [RESULT_METADATA.sourceVersion]: result.source.versionId,
        [RESULT_METADATA.status]: result.status,
      },
    }),
    { abortSignal: signal },
  );
}

/** Leaves the reason where users look for results; the exit code (65) still tells the state machine. */
async function recordBadInput(config: JobConfig, reason: string, started: Date, deps: JobDependencies): Promise<void> {
  deps.log.error('job-bad-input', { reason });
  const result: JobResult = {
    schemaVersion: 1,
    jobId: config.jobId,
    status: 'failed',
    source: {
      bucket: config.bucket,
      key: config.key,
      versionId: config.versionId ?? UNVERSIONED,
      etag: null,
      contentLength: null,
      contentType: null,
    },
    processor: { name: deps.processor.name, version: deps.processor.version },
    timings: timings(started, new Date()),
    output: null,
    error: { kind: 'bad-input', reason },
  };
  try {
    await writeResult(config, result, deps);
  } catch (error) {
    deps.log.warn('failure-result-not-written', { error: error as Error });
  }
}

function timings(started: Date, finished: Date): JobResult['timings'] {
  return {
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
  };
}
