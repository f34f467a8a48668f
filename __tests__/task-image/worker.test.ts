import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { EXIT_CODES } from '../../task-image/src/exit-codes';
import { startupMetricLine, TASK_STARTUP_METRIC, TASK_STARTUP_ROUTE_DIMENSION } from '../../task-image/src/startup-metric';
import { WORKER_ROUTE_ENV } from '../../task-image/image-reference';
import type { JobResult } from '../../task-image/src/run-job';
import {
  buildWorkerBundle,
  objectExists,
  forbidMissingKeys,
  runWorker,
  slowDownloads,
  startLocalS3,
  startWorker,
  versioningEmulation,
  type LocalS3,
  type WorkerRun,
} from '../../task-image/testing/s3-harness';

const BUCKET = 'sluice-test';
const RESULTS_PREFIX = 'results/';
let s3: LocalS3;

beforeAll(async () => {
  buildWorkerBundle();
  s3 = await startLocalS3([BUCKET], [versioningEmulation(), slowDownloads('slow/', 25)]);
});

afterAll(async () => {
  await s3?.close();
});

async function putObject(key: string, body: string | Buffer): Promise<string | undefined> {
  const response = await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  return response.VersionId;
}

async function readResult(key: string): Promise<{ result: JobResult; contentType?: string; metadata: Record<string, string>; etag?: string }> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${RESULTS_PREFIX}${key}.json` }));
  return {
    result: JSON.parse(await response.Body!.transformToString()) as JobResult,
    contentType: response.ContentType,
    metadata: response.Metadata ?? {},
    etag: response.ETag,
  };
}

function resultExists(key: string): Promise<boolean> {
  return objectExists(s3.client, BUCKET, `${RESULTS_PREFIX}${key}.json`);
}

function jobEnv(key: string, jobId: string, versionId?: string): Record<string, string> {
  return { BUCKET, KEY: key, JOB_ID: jobId, RESULTS_PREFIX, ...(versionId ? { VERSION_ID: versionId } : {}) };
}

function expectEveryLogLineToCarry(run: WorkerRun, jobId: string): void {
  expect(run.logs.length).toBeGreaterThan(0);
  for (const line of run.logs) expect(line).toMatchObject({ jobId, event: expect.any(String), time: expect.any(String) });
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('worker against s3rver', () => {
  test('plain file: counts bytes and lines, hashes, writes the result with its metadata', async () => {
    const content = 'first line\nsecond line\nthird, no newline';
    const versionId = await putObject('incoming/notes.txt', content);
    expect(versionId).toEqual(expect.any(String));

    const run = await runWorker(s3.endpoint, jobEnv('incoming/notes.txt', 'job-txt-1', versionId));

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    expectEveryLogLineToCarry(run, 'job-txt-1');
    const { result, contentType, metadata } = await readResult('incoming/notes.txt');
    expect(contentType).toBe('application/json');
    expect(metadata).toEqual({
      'sluice-job-id': 'job-txt-1',
      'sluice-source-version': versionId,
      'sluice-status': 'succeeded',
    });
    expect(result).toMatchObject({
      jobId: 'job-txt-1',
      status: 'succeeded',
      source: { bucket: BUCKET, key: 'incoming/notes.txt', versionId, contentLength: content.length },
      processor: { name: 'sluice-default' },
      output: { bytes: content.length, sha256: sha256(content), lines: 3 },
      error: null,
    });
    expect(result.output).not.toHaveProperty('structure');
    expect(result.timings.durationMs).toBeGreaterThanOrEqual(0);
    expect(Date.parse(result.timings.finishedAt)).toBeGreaterThanOrEqual(Date.parse(result.timings.startedAt));
  });

  test('.json: a valid document passes the structural check', async () => {
    const content = JSON.stringify({ items: [1, 2.5e3, 'x\u00e9', null, true], nested: { deep: [] } }, null, 2);
    await putObject('incoming/doc.json', content);

    const run = await runWorker(s3.endpoint, jobEnv('incoming/doc.json', 'job-json-1'));

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    const { result } = await readResult('incoming/doc.json');
    expect(result.source.versionId).toEqual(expect.any(String));
    expect(result.output).toMatchObject({
      bytes: Buffer.byteLength(content),
      sha256: sha256(content),
      structure: { format: 'json', valid: true, records: 1, malformedCount: 0, malformed: [] },
    });
  });

  test('.json: a broken document is reported with the line of the error, and the job still succeeds', async () => {
    await putObject('incoming/broken.json', '{\n  "a": 1,\n  "b": [1, 2,]\n}\n');

    const run = await runWorker(s3.endpoint, jobEnv('incoming/broken.json', 'job-json-2'));

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    const { result } = await readResult('incoming/broken.json');
    expect(result.output).toMatchObject({
      structure: { format: 'json', valid: false, malformedCount: 1, malformed: [{ line: 3, reason: expect.stringContaining("']'") }] },
    });
  });

  test('.jsonl: malformed lines are counted with their line numbers, not fatal', async () => {
    const content = ['{"id":1}', '{"id":2,}', '', '[1,2,3]', 'not json', '{"id":5}'].join('\n') + '\n';
    await putObject('incoming/events.jsonl', content);

    const run = await runWorker(s3.endpoint, jobEnv('incoming/events.jsonl', 'job-jsonl-1'));

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    const { result } = await readResult('incoming/events.jsonl');
    expect(result.status).toBe('succeeded');
    expect(result.output).toMatchObject({
      lines: 6,
      structure: {
        format: 'jsonl',
        valid: false,
        records: 5,
        malformedCount: 2,
        malformed: [
          { line: 2, reason: expect.any(String) },
          { line: 5, reason: expect.any(String) },
        ],
        malformedListTruncated: false,
      },
    });
  });

  test('.csv: quoted fields may span lines; records with the wrong field count are reported', async () => {
    const content = 'id,name,note\r\n1,Ada,"multi\nline, with ""quotes"""\r\n2,Grace\r\n3,Linus,ok\r\n';
    await putObject('incoming/people.csv', content);

    const run = await runWorker(s3.endpoint, jobEnv('incoming/people.csv', 'job-csv-1'));

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    const { result } = await readResult('incoming/people.csv');
    expect(result.output).toMatchObject({
      lines: 5,
      structure: {
        format: 'csv',
        fields: 3,
        records: 4,
        malformedCount: 1,
        malformed: [{ line: 4, reason: 'expected 3 fields (as in the header), found 2' }],
      },
    });
  });

  test('missing object: bad-input exit, and a failed result that says why', async () => {
    const run = await runWorker(s3.endpoint, jobEnv('incoming/never-uploaded.txt', 'job-missing-1'));

    expect(run.exitCode).toBe(EXIT_CODES.badInput);
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'job-bad-input', reason: expect.stringContaining('does not exist') }));
    const { result, metadata } = await readResult('incoming/never-uploaded.txt');
    expect(metadata['sluice-status']).toBe('failed');
    expect(result).toMatchObject({
      status: 'failed',
      output: null,
      error: { kind: 'bad-input', reason: `object s3://${BUCKET}/incoming/never-uploaded.txt does not exist` },
    });
  });

  test('missing version: bad-input exit', async () => {
    await putObject('incoming/versioned.txt', 'v1');
    const staleVersion = 'version-that-was-never-written';

    const run = await runWorker(s3.endpoint, jobEnv('incoming/versioned.txt', 'job-version-1', staleVersion));

    expect(run.exitCode).toBe(EXIT_CODES.badInput);
    const { result } = await readResult('incoming/versioned.txt');
    expect(result.error?.reason).toBe(`version of s3://${BUCKET}/incoming/versioned.txt (version ${staleVersion}) does not exist`);
  });

  test("an older version's job that finishes after a newer upload (a re-queue, a redrive) does not write the result", async () => {
    // Served one chunk per 25 ms: the newer upload lands while the older version is still being read.
    const older = await putObject('slow/twice-uploaded.jsonl', Buffer.alloc(1024 * 1024, '{"k":1}\n'));
    const worker = startWorker(s3.endpoint, jobEnv('slow/twice-uploaded.jsonl', 'job-older', older));
    await worker.waitForEvent('object-opened');
    const newer = await putObject('slow/twice-uploaded.jsonl', '{"k":2}\n');
    const run = await worker.done;

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'job-superseded', versionId: older, currentVersionId: newer }));
    expect(run.logs.map((line) => line.event)).not.toContain('job-succeeded');
    // The newer version's own job writes it.
    expect(await resultExists('slow/twice-uploaded.jsonl')).toBe(false);
  });

  test('rerun with the result already written for the job and version: skipped, result untouched', async () => {
    const versionId = await putObject('incoming/once.txt', 'process me once\n');
    const first = await runWorker(s3.endpoint, jobEnv('incoming/once.txt', 'job-once-1', versionId));
    expect(first.exitCode).toBe(EXIT_CODES.ok);
    const before = await readResult('incoming/once.txt');

    const rerun = await runWorker(s3.endpoint, jobEnv('incoming/once.txt', 'job-once-1', versionId));

    expect(rerun.exitCode).toBe(EXIT_CODES.ok);
    expect(rerun.logs.map((line) => line.event)).toContain('job-skipped');
    expect(rerun.logs.map((line) => line.event)).not.toContain('object-opened');
    const after = await readResult('incoming/once.txt');
    expect(after.etag).toBe(before.etag);
    expect(after.result.timings).toEqual(before.result.timings);

    // A new upload of the key is a new job: it is processed, not skipped.
    const newVersion = await putObject('incoming/once.txt', 'second upload\n');
    const nextJob = await runWorker(s3.endpoint, jobEnv('incoming/once.txt', 'job-once-2', newVersion));
    expect(nextJob.exitCode).toBe(EXIT_CODES.ok);
    expect((await readResult('incoming/once.txt')).result).toMatchObject({ jobId: 'job-once-2', source: { versionId: newVersion } });
  });

  test('SIGTERM mid-stream: retryable exit, no result written', async () => {
    // 4 MiB served one chunk per 25 ms: seconds of streaming, so the stop lands mid-read.
    await putObject('slow/big.jsonl', Buffer.alloc(4 * 1024 * 1024, '{"k":1}\n'));
    const worker = startWorker(s3.endpoint, jobEnv('slow/big.jsonl', 'job-stop-1'));
    await worker.waitForEvent('object-opened');

    worker.kill('SIGTERM');
    const stoppedAt = Date.now();
    const run = await worker.done;

    expect(run.exitCode).toBe(EXIT_CODES.transient);
    expect(Date.now() - stoppedAt).toBeLessThan(2_000);
    expect(run.logs.map((line) => line.event)).toEqual(expect.arrayContaining(['stop-requested', 'job-stopped']));
    expect(run.logs.map((line) => line.event)).not.toContain('job-succeeded');
    expect(await resultExists('slow/big.jsonl')).toBe(false);
  });

  test('invalid job environment: bad-input exit naming every problem', async () => {
    const run = await runWorker(s3.endpoint, { BUCKET, JOB_ID: 'job with spaces', RESULTS_PREFIX });

    expect(run.exitCode).toBe(EXIT_CODES.badInput);
    expect(run.logs).toContainEqual(
      expect.objectContaining({
        event: 'job-bad-input',
        reason: expect.stringMatching(/KEY is required.*JOB_ID must be 1-256 printable ASCII/),
      }),
    );
  });

  test('a key under RESULTS_PREFIX is refused, so results never feed back as jobs', async () => {
    const run = await runWorker(s3.endpoint, jobEnv('results/incoming/notes.txt.json', 'job-loop-1'));

    expect(run.exitCode).toBe(EXIT_CODES.badInput);
    expect(run.logs).toContainEqual(expect.objectContaining({ reason: expect.stringContaining('refusing to process a result') }));
  });

  test('a key with spaces and signs, delivered as stored, is processed under that key', async () => {
    const key = 'incoming/a b+c(1).txt';
    const versionId = await putObject(key, 'odd key\n');
    const run = await runWorker(s3.endpoint, jobEnv(key, 'job-odd-1', versionId));

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    expect((await readResult(key)).result).toMatchObject({ source: { key, versionId } });
  });

  test('the same key delivered form-encoded (as S3 notifications encode keys) is found under its stored form', async () => {
    const stored = 'incoming/d e+f(2).txt';
    const encoded = 'incoming/d+e%2Bf%282%29.txt';
    const versionId = await putObject(stored, 'odd key, encoded\n');
    const run = await runWorker(s3.endpoint, jobEnv(encoded, 'job-odd-2', versionId));

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'key-decoded', delivered: encoded, key: stored }));
    expect((await readResult(stored)).result).toMatchObject({ source: { key: stored, versionId } });
    expect(await resultExists(encoded)).toBe(false);

    const rerun = await runWorker(s3.endpoint, jobEnv(encoded, 'job-odd-2', versionId));
    expect(rerun.logs.map((line) => line.event)).toContain('job-skipped');
  });

  test('the task stops itself at its timeout: retryable exit, no result written', async () => {
    await putObject('slow/long.jsonl', Buffer.alloc(4 * 1024 * 1024, '{"k":2}\n'));
    const run = await runWorker(s3.endpoint, { ...jobEnv('slow/long.jsonl', 'job-timeout-1'), JOB_TIMEOUT_SECONDS: '1' });

    expect(run.exitCode).toBe(EXIT_CODES.transient);
    expect(run.logs.map((line) => line.event)).toEqual(expect.arrayContaining(['job-timed-out', 'job-stopped']));
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'job-stopped', reason: expect.stringContaining('task timeout reached') }));
    expect(await resultExists('slow/long.jsonl')).toBe(false);
  });

  test('a task that starts after its RunTask state would time out stops at once', async () => {
    await putObject('incoming/late.txt', 'started too late\n');
    const enteredLongAgo = new Date(Date.now() - 3_600_000).toISOString();
    const run = await runWorker(s3.endpoint, {
      ...jobEnv('incoming/late.txt', 'job-late-1'),
      JOB_TIMEOUT_SECONDS: '600',
      RUN_TASK_TIMEOUT_SECONDS: '900',
      STATE_ENTERED_AT: enteredLongAgo,
    });

    expect(run.exitCode).toBe(EXIT_CODES.transient);
    expect(run.logs.map((line) => line.event)).toContain('job-timed-out');
    expect(await resultExists('incoming/late.txt')).toBe(false);
  });

  test('the task logs its start-up, from its RunTask state’s start, as a CloudWatch metric (EMF)', async () => {
    await putObject('incoming/startup.txt', 'started\n');
    const run = await runWorker(s3.endpoint, {
      ...jobEnv('incoming/startup.txt', 'job-startup-1'),
      STATE_ENTERED_AT: new Date(Date.now() - 40_000).toISOString(),
      METRICS_NAMESPACE: 'Sluice/sluice-dev',
    });
    expect(run.exitCode).toBe(EXIT_CODES.ok);
    expectEveryLogLineToCarry(run, 'job-startup-1');
    const line = run.logs.find((l) => l.event === 'task-startup') as Record<string, any>;
    expect(line._aws.CloudWatchMetrics).toEqual([
      { Namespace: 'Sluice/sluice-dev', Dimensions: [[]], Metrics: [{ Name: TASK_STARTUP_METRIC, Unit: 'Seconds' }] },
    ]);
    expect(line[TASK_STARTUP_METRIC]).toBeGreaterThanOrEqual(40);
    expect(line[TASK_STARTUP_METRIC]).toBeLessThan(70);
  });

  test('no start-up metric without a namespace, a state start, or with a clock behind the state’s', () => {
    const base = { namespace: 'Sluice/x', stateEnteredAtMs: 1_000, now: 36_000, jobId: 'j' };
    expect(JSON.parse(startupMetricLine(base)!)).toMatchObject({ [TASK_STARTUP_METRIC]: 35, jobId: 'j', event: 'task-startup' });
    expect(startupMetricLine({ ...base, namespace: undefined })).toBeUndefined();
    expect(startupMetricLine({ ...base, stateEnteredAtMs: undefined })).toBeUndefined();
    expect(startupMetricLine({ ...base, now: 500 })).toBeUndefined();
  });

  test('on a stage with routes the start-up counts for the stage and for the task’s route', async () => {
    await putObject('incoming/routed-startup.txt', 'started\n');
    const run = await runWorker(s3.endpoint, {
      ...jobEnv('incoming/routed-startup.txt', 'job-startup-2'),
      STATE_ENTERED_AT: new Date(Date.now() - 20_000).toISOString(),
      METRICS_NAMESPACE: 'Sluice/sluice-stg',
      [WORKER_ROUTE_ENV]: 'urgent',
    });
    expect(run.exitCode).toBe(EXIT_CODES.ok);
    const line = run.logs.find((l) => l.event === 'task-startup') as Record<string, any>;
    expect(line._aws.CloudWatchMetrics).toEqual([
      { Namespace: 'Sluice/sluice-stg', Dimensions: [[], [TASK_STARTUP_ROUTE_DIMENSION]], Metrics: [{ Name: TASK_STARTUP_METRIC, Unit: 'Seconds' }] },
    ]);
    expect(line[TASK_STARTUP_ROUTE_DIMENSION]).toBe('urgent');
  });

  test('a bad timeout setting is bad input', async () => {
    const run = await runWorker(s3.endpoint, { ...jobEnv('incoming/notes.txt', 'job-bad-timeout'), JOB_TIMEOUT_SECONDS: '1h' });
    expect(run.exitCode).toBe(EXIT_CODES.badInput);
    expect(run.logs).toContainEqual(expect.objectContaining({ reason: expect.stringContaining('JOB_TIMEOUT_SECONDS must be a whole number of seconds') }));
  });

  test('S3 unreachable: transient exit, nothing claimed', async () => {
    const run = await runWorker('http://127.0.0.1:9', jobEnv('incoming/notes.txt', 'job-unreachable-1'));

    expect(run.exitCode).toBe(EXIT_CODES.transient);
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'job-transient-failure' }));
  });
});

describe('worker against S3 as the task role sees it (a missing key is 403, not 404)', () => {
  let forbidding: LocalS3;
  beforeAll(async () => {
    forbidding = await startLocalS3([BUCKET], [versioningEmulation(), forbidMissingKeys()]);
  });
  afterAll(async () => {
    await forbidding?.close();
  });

  test('a first run finds no result (listed, not HEAD-probed) and succeeds; a rerun skips', async () => {
    const { VersionId } = await forbidding.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'incoming/first.txt', Body: 'hello\n' }));
    const env = jobEnv('incoming/first.txt', 'job-403-1', VersionId);

    const first = await runWorker(forbidding.endpoint, env);
    expect(first.exitCode).toBe(EXIT_CODES.ok);
    expect(first.logs.map((line) => line.event)).toContain('job-succeeded');

    const rerun = await runWorker(forbidding.endpoint, env);
    expect(rerun.exitCode).toBe(EXIT_CODES.ok);
    expect(rerun.logs.map((line) => line.event)).toContain('job-skipped');
  });

  test('an encoded key whose delivered form is forbidden (403) is found under its decoded form', async () => {
    const { VersionId } = await forbidding.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'incoming/x y.txt', Body: 'spaced\n' }));
    const run = await runWorker(forbidding.endpoint, jobEnv('incoming/x+y.txt', 'job-403-2', VersionId));
    expect(run.exitCode).toBe(EXIT_CODES.ok);
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'key-decoded', delivered: 'incoming/x+y.txt', key: 'incoming/x y.txt' }));
  });
});
