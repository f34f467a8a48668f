import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { BatchRecord, BatchRecordJob } from '../../functions/batches';
import { EXIT_CODES } from '../../task-image/src/exit-codes';
import { TASK_STARTUP_METRIC } from '../../task-image/src/startup-metric';
import type { JobResult } from '../../task-image/src/run-job';
import { WORKER_PACKED_STATIC_ENV, WORKER_PACKED_TASK_ENV, WORKER_ROUTE_ENV } from '../../task-image/image-reference';
import {
  buildWorkerBundle,
  objectExists,
  requestLog,
  runWorker,
  slowDownloads,
  startLocalS3,
  startWorker,
  unavailableKeys,
  versioningEmulation,
  type LocalS3,
  type WorkerRun,
} from '../../task-image/testing/s3-harness';
import { BATCH_TABLE, startDynalite, type LocalDynamo } from '../support/dynalite';

const BUCKET = 'sluice-packed';
const RESULTS_PREFIX = 'results/';
const TABLE = 'sluice-test-batches';

let s3: LocalS3;
let dynamo: LocalDynamo;
/** Every S3 request, as `<METHOD> <key>` / `LIST <prefix>`; cleared by each test that reads it. */
const requests: string[] = [];
/** Keys whose GETs answer 503 SlowDown. */
const unavailable = new Set<string>();

beforeAll(async () => {
  buildWorkerBundle();
  s3 = await startLocalS3([BUCKET], [requestLog(requests), unavailableKeys(unavailable), versioningEmulation(), slowDownloads('slow/', 25)]);
  dynamo = await startDynalite();
  await dynamo.client.send(new CreateTableCommand({ TableName: TABLE, ...BATCH_TABLE }));
  for (let tries = 0; tries < 100; tries++) {
    const { Table } = await dynamo.client.send(new DescribeTableCommand({ TableName: TABLE }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('the batches table did not become ACTIVE');
});

afterAll(async () => {
  await s3?.close();
  await dynamo?.close();
});

beforeEach(() => {
  requests.length = 0;
  unavailable.clear();
});

interface Upload {
  jobId: string;
  key: string;
  task?: number;
  body?: string | Buffer;
}

/** Uploads each object (unless it has no body) and writes the batch record as an admission does: `outcomes: {}`. */
async function admit(batch: string, uploads: Upload[]): Promise<BatchRecordJob[]> {
  const jobs: BatchRecordJob[] = [];
  for (const [index, upload] of uploads.entries()) {
    let versionId = '';
    if (upload.body !== undefined) {
      versionId = (await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: upload.key, Body: upload.body }))).VersionId ?? '';
    }
    const task = upload.task ?? 0;
    const lead = !uploads.slice(0, index).some((other) => (other.task ?? 0) === task);
    jobs.push({ jobId: upload.jobId, vcpu: lead ? 1 : 0, task, bucket: BUCKET, key: upload.key, versionId });
  }
  const record: BatchRecord = { execution: batch, jobs, admittedAt: Date.now(), expiresAt: Date.now() + 3_600_000, outcomes: {} };
  await dynamo.ddb.send(new PutCommand({ TableName: TABLE, Item: record }));
  // From here on, the log holds the worker's requests only.
  requests.length = 0;
  return jobs;
}

async function batchRecord(batch: string): Promise<BatchRecord | undefined> {
  const { Item } = await dynamo.ddb.send(new GetCommand({ TableName: TABLE, Key: { execution: batch }, ConsistentRead: true }));
  return Item as BatchRecord | undefined;
}

async function outcomesOf(batch: string) {
  return (await batchRecord(batch))?.outcomes ?? {};
}

function packedEnv(batch: string, taskIndex: number, leadJobId: string, extra: Record<string, string> = {}): Record<string, string> {
  const values: Record<(typeof WORKER_PACKED_STATIC_ENV)[number] | (typeof WORKER_PACKED_TASK_ENV)[number], string> = {
    BATCHES_TABLE_NAME: TABLE,
    BATCH: batch,
    TASK_INDEX: String(taskIndex),
    JOB_ID: leadJobId,
  };
  return { ...values, RESULTS_PREFIX, AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint, ...extra };
}

async function readResult(key: string): Promise<{ result: JobResult; etag?: string }> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${RESULTS_PREFIX}${key}.json` }));
  return { result: JSON.parse(await response.Body!.transformToString()) as JobResult, etag: response.ETag };
}

function resultExists(key: string): Promise<boolean> {
  return objectExists(s3.client, BUCKET, `${RESULTS_PREFIX}${key}.json`);
}

async function until(condition: () => boolean): Promise<void> {
  for (let tries = 0; !condition(); tries++) {
    if (tries > 1_000) throw new Error('condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const events = (run: WorkerRun) => run.logs.map((line) => line.event);
const succeeded = { status: 'succeeded', at: expect.any(String) };
/** The S3 requests that named `key`: its GET/HEAD/PUT and its result's listing, HEAD and PUT. */
const requestsFor = (key: string) => requests.filter((request) => request.endsWith(` ${key}`) || request.endsWith(` ${RESULTS_PREFIX}${key}.json`));

describe('packed worker: one task, several objects, outcomes on the batch record', () => {
  test('three objects: each processed in order, its result written and its outcome recorded; one start-up metric', async () => {
    const keys = ['p1/a.txt', 'p1/b.jsonl', 'p1/c.csv'];
    await admit('batch-p1', [
      { jobId: 'p1-a', key: keys[0], body: 'one\n' },
      { jobId: 'p1-b', key: keys[1], body: '{"n":2}\n' },
      { jobId: 'p1-c', key: keys[2], body: 'h\n3\n' },
    ]);

    const run = await runWorker(
      s3.endpoint,
      packedEnv('batch-p1', 0, 'p1-a', {
        METRICS_NAMESPACE: 'Sluice/sluice-dev',
        STATE_ENTERED_AT: new Date(Date.now() - 30_000).toISOString(),
        [WORKER_ROUTE_ENV]: 'urgent',
      }),
    );

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    expect(await outcomesOf('batch-p1')).toEqual({ 'p1-a': succeeded, 'p1-b': succeeded, 'p1-c': succeeded });
    for (const [index, key] of keys.entries()) {
      expect((await readResult(key)).result).toMatchObject({ jobId: `p1-${'abc'[index]}`, status: 'succeeded', source: { key } });
    }
    const opened = run.logs.filter((line) => line.event === 'object-opened');
    expect(opened.map((line) => [line.jobId, line.key])).toEqual(keys.map((key, index) => [`p1-${'abc'[index]}`, key]));
    for (const line of run.logs.filter((l) => l.event !== 'task-startup')) expect(line).toMatchObject({ batch: 'batch-p1', task: 0 });
    const startup = run.logs.filter((line) => line.event === 'task-startup');
    expect(startup).toHaveLength(1);
    expect(startup[0]).toMatchObject({ jobId: 'p1-a', Route: 'urgent', [TASK_STARTUP_METRIC]: expect.any(Number) });
    expect(run.logs.at(-1)).toMatchObject({ event: 'task-finished', outcome: 'ended', objects: 3, ran: 3, exitCode: 0 });
  });

  test('bad input is that object’s: recorded failed with its reason, the others succeed, exit 0', async () => {
    await admit('batch-p2', [
      { jobId: 'p2-a', key: 'p2/a.txt', body: 'fine\n' },
      { jobId: 'p2-missing', key: 'p2/never-uploaded.txt' },
      { jobId: 'p2-loop', key: `${RESULTS_PREFIX}p2/old.txt.json` },
      { jobId: 'p2-d', key: 'p2/d.txt', body: 'fine too\n' },
    ]);

    const run = await runWorker(s3.endpoint, packedEnv('batch-p2', 0, 'p2-a'));

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    expect(await outcomesOf('batch-p2')).toEqual({
      'p2-a': succeeded,
      'p2-missing': { status: 'failed', reason: `object s3://${BUCKET}/p2/never-uploaded.txt does not exist`, at: expect.any(String) },
      'p2-loop': { status: 'failed', reason: expect.stringContaining('refusing to process a result'), at: expect.any(String) },
      'p2-d': succeeded,
    });
    // As for a single object: a missing object leaves a failed result where users look.
    expect((await readResult('p2/never-uploaded.txt')).result).toMatchObject({ status: 'failed', error: { kind: 'bad-input' } });
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'job-bad-input', jobId: 'p2-loop' }));
    expect(await resultExists('p2/d.txt')).toBe(true);
  });

  test('a transient failure on object 2 ends the task (75) at once; the re-run skips object 1 and finishes 2 and 3', async () => {
    const keys = ['p3/a.txt', 'p3/b.txt', 'p3/c.txt'];
    await admit('batch-p3', [
      { jobId: 'p3-a', key: keys[0], body: 'a\n' },
      { jobId: 'p3-b', key: keys[1], body: 'b\n' },
      { jobId: 'p3-c', key: keys[2], body: 'c\n' },
    ]);
    unavailable.add(keys[1]);

    const first = await runWorker(s3.endpoint, packedEnv('batch-p3', 0, 'p3-a'));

    expect(first.exitCode).toBe(EXIT_CODES.transient);
    expect(first.logs).toContainEqual(expect.objectContaining({ event: 'job-transient-failure', jobId: 'p3-b', reason: expect.stringContaining('SlowDown') }));
    expect(await outcomesOf('batch-p3')).toEqual({ 'p3-a': succeeded });
    expect(await resultExists(keys[1])).toBe(false);
    expect(requestsFor(keys[2])).toEqual([]);
    const firstResult = await readResult(keys[0]);

    unavailable.clear();
    requests.length = 0;
    const rerun = await runWorker(s3.endpoint, packedEnv('batch-p3', 0, 'p3-a'));

    expect(rerun.exitCode).toBe(EXIT_CODES.ok);
    expect(rerun.logs).toContainEqual(expect.objectContaining({ event: 'object-already-ended', jobId: 'p3-a' }));
    // Object 1 is not touched at all: no listing, no read, no second write of its result.
    expect(requestsFor(keys[0])).toEqual([]);
    expect((await readResult(keys[0])).etag).toBe(firstResult.etag);
    expect(requestsFor(keys[1])).toContain(`PUT ${RESULTS_PREFIX}${keys[1]}.json`);
    expect(await outcomesOf('batch-p3')).toEqual({ 'p3-a': succeeded, 'p3-b': succeeded, 'p3-c': succeeded });
    expect(rerun.logs.at(-1)).toMatchObject({ event: 'task-finished', outcome: 'ended', objects: 3, ran: 2 });
  });

  test('every outcome already recorded: nothing processed, exit 0', async () => {
    await admit('batch-p4', [
      { jobId: 'p4-a', key: 'p4/a.txt', body: 'a\n' },
      { jobId: 'p4-b', key: 'p4/b.txt', body: 'b\n' },
    ]);
    await dynamo.ddb.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { execution: 'batch-p4' },
        UpdateExpression: 'SET outcomes = :all',
        ExpressionAttributeValues: { ':all': { 'p4-a': { status: 'succeeded', at: 'x' }, 'p4-b': { status: 'failed', reason: 'earlier', at: 'y' } } },
      }),
    );

    const run = await runWorker(s3.endpoint, packedEnv('batch-p4', 0, 'p4-a'));

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    expect(requests).toEqual([]);
    expect(events(run).filter((event) => event === 'object-already-ended')).toHaveLength(2);
    expect((await outcomesOf('batch-p4'))['p4-b']).toEqual({ status: 'failed', reason: 'earlier', at: 'y' });
  });

  test('TASK_INDEX picks only its task’s objects; a task the record does not list is transient', async () => {
    await admit('batch-p5', [
      { jobId: 'p5-a', key: 'p5/a.txt', body: 'a\n', task: 0 },
      { jobId: 'p5-b', key: 'p5/b.txt', body: 'b\n', task: 0 },
      { jobId: 'p5-c', key: 'p5/c.txt', body: 'c\n', task: 1 },
      { jobId: 'p5-d', key: 'p5/d.txt', body: 'd\n', task: 1 },
    ]);

    const run = await runWorker(s3.endpoint, packedEnv('batch-p5', 1, 'p5-c'));

    expect(run.exitCode).toBe(EXIT_CODES.ok);
    expect(await outcomesOf('batch-p5')).toEqual({ 'p5-c': succeeded, 'p5-d': succeeded });
    expect(await resultExists('p5/a.txt')).toBe(false);
    expect(await resultExists('p5/b.txt')).toBe(false);

    const unlisted = await runWorker(s3.endpoint, packedEnv('batch-p5', 2, 'p5-x'));
    expect(unlisted.exitCode).toBe(EXIT_CODES.transient);
    expect(unlisted.logs).toContainEqual(expect.objectContaining({ event: 'batch-record-unusable', reason: expect.stringContaining('no objects for task 2') }));
  });

  test('no batch record (settled, or never admitted): transient, never bad input', async () => {
    const run = await runWorker(s3.endpoint, packedEnv('batch-never', 0, 'nobody'));

    expect(run.exitCode).toBe(EXIT_CODES.transient);
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'batch-record-unusable', reason: expect.stringContaining('does not exist') }));
    expect(requests).toEqual([]);
  });

  test('the batches table unreachable: transient', async () => {
    const run = await runWorker(s3.endpoint, { ...packedEnv('batch-p1', 0, 'p1-a'), AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' });

    expect(run.exitCode).toBe(EXIT_CODES.transient);
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'batch-record-unreadable' }));
  });

  test('the record deleted mid-run (the batch settled): the outcome write is refused, exit 75', async () => {
    // One chunk per 25 ms: the record goes while the first object is still being read.
    await admit('batch-p6', [
      { jobId: 'p6-a', key: 'slow/p6-a.jsonl', body: Buffer.alloc(512 * 1024, '{"k":1}\n') },
      { jobId: 'p6-b', key: 'p6/b.txt', body: 'b\n' },
    ]);
    const worker = startWorker(s3.endpoint, packedEnv('batch-p6', 0, 'p6-a'));
    await worker.waitForEvent('object-opened');
    await dynamo.ddb.send(new DeleteCommand({ TableName: TABLE, Key: { execution: 'batch-p6' } }));

    const run = await worker.done;

    expect(run.exitCode).toBe(EXIT_CODES.transient);
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'outcome-refused', jobId: 'p6-a', reason: expect.stringContaining('settled') }));
    // The refused write did not bring the record back, and the task went no further.
    expect(await batchRecord('batch-p6')).toBeUndefined();
    expect(requestsFor('p6/b.txt')).toEqual([]);
  });

  test('SIGTERM during object 2: exit 75, object 1’s outcome kept, nothing recorded or written for 2', async () => {
    await admit('batch-p7', [
      { jobId: 'p7-a', key: 'p7/a.txt', body: 'a\n' },
      { jobId: 'p7-b', key: 'slow/p7-b.jsonl', body: Buffer.alloc(4 * 1024 * 1024, '{"k":1}\n') },
      { jobId: 'p7-c', key: 'p7/c.txt', body: 'c\n' },
    ]);
    const worker = startWorker(s3.endpoint, packedEnv('batch-p7', 0, 'p7-a'));
    // Object 2 streams for seconds (one chunk per 25 ms): stop it once its GET has reached S3.
    await until(() => requestsFor('slow/p7-b.jsonl').some((request) => request.startsWith('GET ')));
    worker.kill('SIGTERM');
    const run = await worker.done;

    expect(run.exitCode).toBe(EXIT_CODES.transient);
    expect(run.logs).toContainEqual(expect.objectContaining({ event: 'job-stopped', jobId: 'p7-b' }));
    expect(await outcomesOf('batch-p7')).toEqual({ 'p7-a': succeeded });
    expect(await resultExists('slow/p7-b.jsonl')).toBe(false);
    expect(requestsFor('p7/c.txt')).toEqual([]);
  });

  test('JOB_TIMEOUT_SECONDS is the whole task’s: objects that each fit in it do not all fit together', async () => {
    // Each object streams for ~0.8 s (2 MiB, one 64 KiB chunk per 25 ms); the task has 1 s for all three.
    await admit('batch-p8', [
      { jobId: 'p8-a', key: 'slow/p8-a.bin', body: Buffer.alloc(2 * 1024 * 1024, 'a') },
      { jobId: 'p8-b', key: 'slow/p8-b.bin', body: Buffer.alloc(2 * 1024 * 1024, 'b') },
      { jobId: 'p8-c', key: 'slow/p8-c.bin', body: Buffer.alloc(2 * 1024 * 1024, 'c') },
    ]);

    const run = await runWorker(s3.endpoint, packedEnv('batch-p8', 0, 'p8-a', { JOB_TIMEOUT_SECONDS: '1' }));

    expect(run.exitCode).toBe(EXIT_CODES.transient);
    expect(events(run)).toContain('job-timed-out');
    const outcomes = await outcomesOf('batch-p8');
    const ended = ['p8-a', 'p8-b', 'p8-c'].filter((jobId) => outcomes[jobId]);
    expect(ended.length).toBeLessThan(3);
    // What ended is a prefix of the list; what did not has no result.
    expect(ended).toEqual(['p8-a', 'p8-b', 'p8-c'].slice(0, ended.length));
    for (const jobId of ['p8-a', 'p8-b', 'p8-c'].slice(ended.length)) expect(await resultExists(`slow/${jobId}.bin`)).toBe(false);
  });

  test('a malformed packed environment is bad input (a deploy’s mistake), every problem named', async () => {
    const run = await runWorker(s3.endpoint, {
      BATCH: '',
      TASK_INDEX: 'one',
      JOB_ID: 'lead with spaces',
      RESULTS_PREFIX,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    });

    expect(run.exitCode).toBe(EXIT_CODES.badInput);
    expect(run.logs).toContainEqual(
      expect.objectContaining({
        event: 'task-bad-input',
        reason: expect.stringMatching(/BATCHES_TABLE_NAME is required.*BATCH is required.*TASK_INDEX must be a whole number.*JOB_ID must be 1-256/),
      }),
    );
    expect(requests).toEqual([]);
  });
});
