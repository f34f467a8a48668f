import { GetObjectCommand, ListObjectVersionsCommand, S3Client, type ListObjectVersionsCommandOutput, type ObjectVersion } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SendMessageBatchCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import {
  backfill,
  backfillMessage,
  backlogCapFor,
  checkCheckpoint,
  jsonForSqs,
  maxBacklogFor,
  checkPrefix,
  defaultRateFor,
  formatBackfill,
  maxRateFor,
  MAX_RATE_PER_SECOND,
  parseMaxBacklog,
  parseRate,
  parseSince,
  type BackfillRequest,
} from '../../cli/backfill';
import { readCheckpoint } from '../../cli/backfill-checkpoint';
import { csvFields, versionOfRow } from '../../cli/inventory';
import { run } from '../../cli/main';
import { backoffMs, pacer, SEND_ATTEMPTS, sendBatch } from '../../cli/send-batches';
import { EXIT, stageNames, type StageClients } from '../../cli/stage';
import type { EnvironmentConfig } from '../../environments';
import { jobIdOf, parseIntakeMessage } from '../../functions/jobs';
import type { Clock } from '../../functions/runtime';
import { stageConfig } from '../support/synth';

const dev = stageConfig('dev');
const bucket = stageNames(dev).bucket;
const scopeOf = (config: EnvironmentConfig) => ({
  bucketName: stageNames(config).bucket,
  inputPrefix: config.bucket.inputPrefix,
  inputSuffix: config.bucket.inputSuffix,
});

/** A clock whose sleeps move it on at once, recording each. */
function fakeClock(start = 1_000_000): Clock & { slept: number[] } {
  let now = start;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  };
}

const version = (key: string, versionId: string, modified = '2026-11-02T10:00:00Z', latest = true): ObjectVersion => ({
  Key: key,
  VersionId: versionId,
  IsLatest: latest,
  LastModified: new Date(modified),
  Size: 10,
  ETag: '"abc"',
});

describe('sluice backfill: usage errors, before any AWS call', () => {
  async function runQuietly(...argv: string[]) {
    const err: string[] = [];
    const code = await run(
      argv,
      () => undefined,
      (t) => err.push(t),
    );
    return { code, err: err.join('\n') };
  }
  const calls = [S3Client, SQSClient, STSClient].map((client) => jest.spyOn(client.prototype, 'send'));
  afterAll(() => calls.forEach((spy) => spy.mockRestore()));

  test.each([
    [['backfill', '--stage', 'nope'], /sluice: no stage "nope"; stages: dev, stg, prod/],
    [['backfill', '--stage', 'dev', '--prefix', 'results/'], /--prefix results\/ is outside the stage's input prefixes \(incoming\/\)/],
    [['backfill', '--stage', 'dev', '--prefix', 'incom'], /--prefix incom is outside the stage's input prefixes \(incoming\/\)/],
    [['backfill', '--stage', 'dev', '--since', 'yesterday'], /--since takes a date \(2026-11-01, UTC\)/],
    [['backfill', '--stage', 'dev', '--since', '2026-02-31'], /--since takes a date/],
    [['backfill', '--stage', 'dev', '--since', '2026-11-01T08:00:00'], /--since takes a date/],
    [['backfill', '--stage', 'dev', '--rate', 'fast'], /--rate takes messages per second, at least 0.1, like 50\/s \(got "fast"\)/],
    [['backfill', '--stage', 'dev', '--rate', '0'], /--rate takes messages per second/],
    [['backfill', '--stage', 'dev', '--rate', '0.000001'], /--rate takes messages per second, at least 0.1/],
    [['backfill', '--stage', 'prod', '--max-backlog', '99999999999999'], /--max-backlog takes a number of messages from 1000 to 31200/],
    [['backfill', '--stage', 'dev', '--dry-run', '--checkpoint', 'cp.json'], /--checkpoint records what was sent; a --dry-run sends nothing/],
    [
      ['backfill', '--stage', 'dev', '--checkpoint', '/no/such/folder/cp.json'],
      /--checkpoint \/no\/such\/folder\/cp.json: its folder does not exist or cannot be written/,
    ],
    [['backfill', '--stage', 'dev', '--rate', '121/s'], /--rate 121\/s is above 120\/s, the most for stage dev \(60 × its 2 launches\/s, at most 500\/s\)/],
    [['backfill', '--stage', 'prod', '--rate', '501'], /--rate 501 is above 500\/s, the most for stage prod/],
    [
      ['backfill', '--stage', 'dev', '--inventory', 'manifest.json'],
      /--inventory takes an S3 URL like s3:\/\/bucket\/path\/manifest.json \(got "manifest.json"\)/,
    ],
  ])('%j: one clear line, exit 2, nothing sent', async (argv, message) => {
    const { code, err } = await runQuietly(...argv);
    expect({ code, err }).toEqual({ code: EXIT.usage, err: expect.stringMatching(message) });
    for (const spy of calls) expect(spy).not.toHaveBeenCalled();
  });

  test('what is accepted', () => {
    expect(parseSince('2026-11-01')).toBe(Date.UTC(2026, 10, 1));
    expect(parseSince('2026-11-01T08:30:00+01:00')).toBe(Date.UTC(2026, 10, 1, 7, 30));
    expect(parseRate('20/s', dev)).toBe(20);
    expect(parseRate('7.5', dev)).toBe(7.5);
    expect(checkPrefix(undefined, dev)).toBe('incoming/');
    expect(checkPrefix('incoming/2025/', dev)).toBe('incoming/2025/');
    expect(maxRateFor(stageConfig('prod'))).toBe(MAX_RATE_PER_SECOND);
    // The default is lower than every stage's most: a slow stage gets its own most.
    expect(defaultRateFor(dev)).toBe(50);
    expect(defaultRateFor({ ...dev, capacity: { ...dev.capacity, launchRatePerSecond: 0.5 } })).toBe(30);
  });
});

describe('a listed object as its upload event', () => {
  test("the job id is the one the dispatcher derives from the upload's own event, whatever its sequencer", () => {
    const message = backfillMessage(dev, version('incoming/a b.csv', 'v-123'));
    const uploadEvent = {
      version: '0',
      source: 'aws.s3',
      'detail-type': 'Object Created',
      detail: { bucket: { name: bucket }, object: { key: 'incoming/a b.csv', 'version-id': 'v-123', sequencer: '0062E99A88DC407460' } },
    };
    const fromUpload = parseIntakeMessage(JSON.stringify(uploadEvent), scopeOf(dev));
    const fromBackfill = parseIntakeMessage(message.body, scopeOf(dev));
    expect(fromUpload).toMatchObject({ kind: 'job', job: { jobId: message.id } });
    expect(fromBackfill).toMatchObject({ kind: 'job', job: { jobId: message.id, key: 'incoming/a b.csv', versionId: 'v-123', round: 0 } });
    expect(message.id).toBe(jobIdOf(bucket, 'incoming/a b.csv', 'v-123', ''));
    expect(JSON.parse(message.body)).toMatchObject({
      source: 'aws.s3',
      'detail-type': 'Object Created',
      account: dev.account.id,
      region: dev.account.region,
      time: '2026-11-02T10:00:00Z',
      resources: [`arn:aws:s3:::${bucket}`],
      detail: { bucket: { name: bucket }, object: { key: 'incoming/a b.csv', size: 10, etag: 'abc', 'version-id': 'v-123' } },
    });
  });

  test('an object from before versioning (version "null"): no version id, and the same job id on every backfill until it changes', () => {
    const first = backfillMessage(dev, version('incoming/old.csv', 'null'));
    expect(JSON.parse(first.body).detail.object).not.toHaveProperty('version-id');
    expect(backfillMessage(dev, version('incoming/old.csv', 'null')).id).toBe(first.id);
    expect(backfillMessage(dev, version('incoming/old.csv', 'null', '2026-11-03T10:00:00Z')).id).not.toBe(first.id);
  });
});

describe('sending: pace and partial failures', () => {
  test('the pacer lets one batch go at once, then spaces the rest to the rate', async () => {
    const clock = fakeClock();
    const pace = pacer(10, clock);
    for (const size of [10, 10, 5, 10]) await pace(size);
    // 10/s: a batch of 10 each second, then half a second for the 5.
    expect(clock.slept).toEqual([1000, 1000, 500]);
    expect(clock.now() - 1_000_000).toBe(2500);
  });

  test('the pacer does not save up: after a pause, sends resume at the rate, not in a burst', async () => {
    const clock = fakeClock();
    const pace = pacer(10, clock);
    await pace(10);
    await clock.sleep(60_000);
    clock.slept.length = 0;
    await pace(10);
    await pace(10);
    expect(clock.slept).toEqual([1000]);
  });

  function fakeSqs(answers: Array<(input: SendMessageBatchCommandInput) => object>) {
    const sent: SendMessageBatchCommandInput[] = [];
    const sqs = {
      send: jest.fn(async (command: SendMessageBatchCommand) => {
        sent.push(command.input);
        return answers[Math.min(sent.length, answers.length) - 1](command.input);
      }),
    } as unknown as SQSClient;
    return { sqs, sent };
  }
  const allTaken = (input: SendMessageBatchCommandInput) => ({ Successful: input.Entries!.map((e) => ({ Id: e.Id })), Failed: [] });
  const batch = ['a', 'b', 'c'].map((id) => ({ id, body: `{"n":"${id}"}` }));

  test('entries SQS refused for a passing reason are sent again, alone, after a backoff', async () => {
    const { sqs, sent } = fakeSqs([
      () => ({ Successful: [{ Id: 'a' }], Failed: [{ Id: 'b', Code: 'InternalError', SenderFault: false }] }), // c: in neither list
      allTaken,
    ]);
    const clock = fakeClock();
    await sendBatch(sqs, 'url', batch, clock);
    expect(sent.map((s) => s.Entries!.map((e) => e.Id))).toEqual([
      ['a', 'b', 'c'],
      ['b', 'c'],
    ]);
    expect(sent[1].Entries![0].MessageBody).toBe('{"n":"b"}');
    expect(clock.slept).toEqual([backoffMs(0)]);
  });

  test('an entry refused for good, or refused on every attempt, fails the send: it is never counted sent', async () => {
    const refused = fakeSqs([() => ({ Successful: [{ Id: 'a' }, { Id: 'c' }], Failed: [{ Id: 'b', Code: 'InvalidMessageContents', SenderFault: true }] })]);
    await expect(sendBatch(refused.sqs, 'url', batch, fakeClock())).rejects.toMatchObject({
      exitCode: EXIT.failed,
      message: expect.stringContaining('the intake queue refused 1 message(s): InvalidMessageContents'),
    });
    expect(refused.sent).toHaveLength(1);

    const busy = fakeSqs([() => ({ Successful: [], Failed: batch.map((m) => ({ Id: m.id, Code: 'ServiceUnavailable', SenderFault: false })) })]);
    const clock = fakeClock();
    await expect(sendBatch(busy.sqs, 'url', batch, clock)).rejects.toMatchObject({
      message: expect.stringContaining(`refused 3 message(s) after ${SEND_ATTEMPTS} attempts: ServiceUnavailable`),
    });
    expect(busy.sent).toHaveLength(SEND_ATTEMPTS);
    expect(clock.slept).toEqual([500, 1000, 2000, 4000, 8000]);
  });
});

test('a key with U+FFFE or U+FFFF (which SQS refuses raw) is sent escaped, and parses back to the same key and job', () => {
  const key = 'incoming/odd\uFFFE\uFFFF.csv';
  const message = backfillMessage(dev, version(key, 'v1'));
  expect(message.body).not.toMatch(/[\uFFFE\uFFFF]/);
  expect(message.body).toContain('\\uFFFE\\uFFFF');
  expect(JSON.parse(message.body).detail.object.key).toBe(key);
  expect(message.id).toBe(jobIdOf(bucket, key, 'v1', ''));
  expect(jsonForSqs({ k: 'plain' })).toBe('{"k":"plain"}');
});

test('a checkpoint that is no checkpoint is refused before any AWS call', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'backfill-cp-')), 'cp.json');
  writeFileSync(file, 'not json');
  expect(() => checkCheckpoint(dev, { prefix: 'incoming/', ratePerSecond: 50, dryRun: false, checkpointFile: file })).toThrow(/is not a backfill checkpoint/);
});

describe('backfill: listing, batches, checkpoint', () => {
  const keys = Array.from({ length: 25 }, (_, i) => `incoming/k${String(i).padStart(2, '0')}.csv`);
  /** Two pages: 15 current objects, an older version and a deleted key's versions (not current); then 10 more. */
  const pages: ListObjectVersionsCommandOutput[] = [
    {
      $metadata: {},
      Versions: [
        ...keys.slice(0, 15).map((k) => version(k, `v-${k}`)),
        version(keys[0], 'v-older', '2026-10-01T00:00:00Z', false),
        version('incoming/deleted.csv', 'v-gone', '2026-10-01T00:00:00Z', false),
      ],
      DeleteMarkers: [{ Key: 'incoming/deleted.csv', VersionId: 'dm', IsLatest: true }],
      IsTruncated: true,
      NextKeyMarker: keys[14],
      NextVersionIdMarker: `v-${keys[14]}`,
    },
    { $metadata: {}, Versions: keys.slice(15).map((k) => version(k, `v-${k}`, '2026-11-20T00:00:00Z')), IsTruncated: false },
  ];

  /** `backlogs`: what the intake holds at each read of its attributes (the last one stays). */
  function fakeStage(failSendNumber?: number, backlogs: number[] = [0]) {
    const backlogReads: number[] = [];
    const listed: Array<{ KeyMarker?: string; Prefix?: string }> = [];
    const batches: string[][] = [];
    const s3 = {
      send: jest.fn(async (command: ListObjectVersionsCommand) => {
        listed.push({ KeyMarker: command.input.KeyMarker, Prefix: command.input.Prefix });
        return command.input.KeyMarker ? pages[1] : pages[0];
      }),
    };
    const sqs = {
      send: jest.fn(async (command: GetQueueUrlCommand | GetQueueAttributesCommand | SendMessageBatchCommand) => {
        if (command instanceof GetQueueUrlCommand) return { QueueUrl: 'https://sqs/intake' };
        if (command instanceof GetQueueAttributesCommand) {
          const backlog = backlogs[Math.min(backlogReads.length, backlogs.length - 1)];
          backlogReads.push(backlog);
          return { Attributes: { ApproximateNumberOfMessages: String(backlog - 100), ApproximateNumberOfMessagesDelayed: '100' } };
        }
        batches.push(command.input.Entries!.map((e) => JSON.parse(e.MessageBody!).detail.object.key));
        if (batches.length === failSendNumber) throw Object.assign(new Error('gone'), { name: 'AccessDenied' });
        return { Successful: command.input.Entries!.map((e) => ({ Id: e.Id })), Failed: [] };
      }),
    };
    return { clients: { s3, sqs } as unknown as StageClients, s3, sqs, listed, batches, backlogReads };
  }
  const silent = { update: () => undefined, end: () => undefined };
  const base: BackfillRequest = { prefix: 'incoming/', ratePerSecond: 50, dryRun: false };
  const tempFile = () => join(mkdtempSync(join(tmpdir(), 'backfill-test-')), 'checkpoint.json');

  test('each current object once, ten per SendMessageBatch; older versions and delete markers are not sent', async () => {
    const stage = fakeStage();
    const summary = await backfill(stage.clients, dev, base, silent, fakeClock());
    expect(summary).toMatchObject({ listed: 25, sent: 25, dryRun: false, skipped: { suffix: 0, olderThanSince: 0 } });
    expect(stage.batches.map((b) => b.length)).toEqual([10, 5, 10]);
    expect(stage.batches.flat()).toEqual(keys);
    expect(stage.listed[0]).toEqual({ KeyMarker: undefined, Prefix: 'incoming/' });
    expect(formatBackfill(summary)).toMatch(/^25 object\(s\) listed in s3:\/\/sluice-dev-.*\/incoming\/, 25 sent to the intake queue/);
  });

  test('a page waits while the intake holds its bound (visible and delayed messages), so no backlog outlives the queue', async () => {
    const cap = backlogCapFor(dev);
    const stage = fakeStage(undefined, [cap + 50, cap, cap - 1]);
    const clock = fakeClock();
    await backfill(stage.clients, dev, base, silent, clock);
    expect(stage.backlogReads.slice(0, 3)).toEqual([cap + 50, cap, cap - 1]);
    expect(clock.slept.slice(0, 2)).toEqual([30_000, 30_000]);
    expect(stage.batches.flat()).toEqual(keys);
    const lower = fakeStage(undefined, [1200, 900]);
    await backfill(lower.clients, dev, { ...base, maxBacklog: parseMaxBacklog('1000', dev) }, silent, fakeClock());
    expect(lower.backlogReads.slice(0, 2)).toEqual([1200, 900]);
  });

  test('the backlog bound: an hour of launches, never more than the slowest drain empties in 7 days; --max-backlog at most 13 days of it', () => {
    // prod: 100 one-vCPU tasks of up to an hour drain 100 × 24 an day at worst; an hour of launches (10/s) is 36,000.
    const prod = stageConfig('prod');
    expect(backlogCapFor(prod)).toBe(Math.min(36_000, 100 * 24 * 7));
    expect(maxBacklogFor(prod)).toBe(100 * 24 * 13);
    expect(backlogCapFor(dev)).toBeGreaterThanOrEqual(1000);
    expect(() => parseMaxBacklog('999', prod)).toThrow(/--max-backlog takes a number of messages from 1000 to 31200/);
    expect(() => parseMaxBacklog('99999999999999', prod)).toThrow(/--max-backlog takes a number of messages from 1000 to 31200/);
    expect(() => parseMaxBacklog('lots', prod)).toThrow(/--max-backlog/);
    expect(parseMaxBacklog('20000', prod)).toBe(20_000);
  });

  test('a page larger than a chunk (an inventory file) reads the backlog again before each thousand messages', async () => {
    const many = Array.from({ length: 2500 }, (_, i) => version(`incoming/m${i}.csv`, `v${i}`));
    const stage = fakeStage(undefined, [0]);
    stage.s3.send.mockImplementation(async () => ({ $metadata: {}, Versions: many, IsTruncated: false }));
    await backfill(stage.clients, dev, { ...base, ratePerSecond: 100 }, silent, fakeClock());
    expect(stage.backlogReads).toHaveLength(3);
    expect(stage.batches.flat()).toHaveLength(2500);
  });

  test('--since and the input suffix narrow what is sent; a dry run lists and counts and sends nothing', async () => {
    const stage = fakeStage();
    const withSuffix = { ...dev, bucket: { ...dev.bucket, inputSuffix: '7.csv' } };
    const seen: string[] = [];
    const summary = await backfill(stage.clients, withSuffix, { ...base, dryRun: true, since: parseSince('2026-11-10') }, silent, fakeClock(), (key) =>
      seen.push(key),
    );
    expect(seen).toEqual(['incoming/k17.csv']);
    expect(summary).toMatchObject({ listed: 25, sent: 1, dryRun: true, skipped: { suffix: 23, olderThanSince: 1 } });
    expect(stage.sqs.send).not.toHaveBeenCalled();
    expect(formatBackfill(summary)).toMatch(/^dry run: nothing sent; 25 object\(s\) listed .*, 1 would be sent/);
  });

  test('the checkpoint records each page once it is sent; a restart continues from there, a finished one does nothing', async () => {
    const file = tempFile();
    const failing = fakeStage(3); // the second page's batch fails
    await expect(backfill(failing.clients, dev, { ...base, checkpointFile: file }, silent, fakeClock())).rejects.toMatchObject({ name: 'AccessDenied' });
    const scope = { stage: 'dev', bucket, prefix: 'incoming/', since: null, inventory: null };
    expect(readCheckpoint(file, scope)).toMatchObject({ next: { keyMarker: keys[14], versionIdMarker: `v-${keys[14]}` }, sent: 15 });

    const resumed = fakeStage();
    const summary = await backfill(resumed.clients, dev, { ...base, checkpointFile: file }, silent, fakeClock());
    expect(resumed.listed.map((l) => l.KeyMarker)).toEqual([keys[14]]);
    expect(resumed.batches.flat()).toEqual(keys.slice(15));
    expect(summary).toMatchObject({ sent: 10, resumedAfter: 15 });
    expect(readCheckpoint(file, scope)).toMatchObject({ next: null, sent: 25 });

    const again = fakeStage();
    expect(await backfill(again.clients, dev, { ...base, checkpointFile: file }, silent, fakeClock())).toMatchObject({ alreadyComplete: true, sent: 0 });
    expect(again.s3.send).not.toHaveBeenCalled();
    expect(again.sqs.send).not.toHaveBeenCalled();
  });

  test('a checkpoint of another backfill, or a file that is no checkpoint, is refused before anything is listed or sent', async () => {
    const file = tempFile();
    await backfill(fakeStage().clients, dev, { ...base, checkpointFile: file }, silent, fakeClock());
    for (const other of [
      { ...base, prefix: 'incoming/2026/' },
      { ...base, since: parseSince('2026-11-01') },
    ]) {
      const stage = fakeStage();
      await expect(backfill(stage.clients, dev, { ...other, checkpointFile: file }, silent, fakeClock())).rejects.toMatchObject({
        exitCode: EXIT.usage,
        message: expect.stringContaining(`--checkpoint ${file} belongs to another backfill`),
      });
      expect(stage.s3.send).not.toHaveBeenCalled();
    }
    writeFileSync(file, '{"hello": 1}');
    await expect(backfill(fakeStage().clients, dev, { ...base, checkpointFile: file }, silent, fakeClock())).rejects.toMatchObject({
      exitCode: EXIT.usage,
      message: expect.stringContaining('is not a backfill checkpoint'),
    });
  });

  test('a dry run writes no checkpoint', async () => {
    const file = tempFile();
    await backfill(fakeStage().clients, dev, { ...base, dryRun: true, checkpointFile: file }, silent, fakeClock());
    expect(existsSync(file)).toBe(false);
  });
});

describe('backfill from an S3 Inventory report', () => {
  const columns = 'Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag';
  const row = (key: string, versionId: string, latest: boolean, deleteMarker = false) =>
    `"${bucket}","${key}","${versionId}","${latest}","${deleteMarker}","10","2026-11-02T10:00:00.000Z","abc"`;
  const files: Record<string, string[]> = {
    'inv/data/one.csv.gz': [
      row('incoming/a.csv', 'va', true),
      row('incoming/a.csv', 'va-old', false),
      row('incoming/with%20space.csv', 'vs', true),
      row('incoming/gone.csv', 'vg', true, true),
      row('elsewhere/x.csv', 'vx', true),
    ],
    'inv/data/two.csv.gz': [row('incoming/b.csv', 'vb', true)],
  };
  const manifest = (overrides: object = {}) =>
    JSON.stringify({
      sourceBucket: bucket,
      destinationBucket: 'arn:aws:s3:::inventory-bucket',
      fileFormat: 'CSV',
      fileSchema: columns,
      files: Object.keys(files).map((key) => ({ key, size: 1, MD5checksum: 'x' })),
      ...overrides,
    });

  function inventoryStage(manifestText = manifest()) {
    const read: string[] = [];
    const sent: string[] = [];
    const s3 = {
      send: jest.fn(async (command: GetObjectCommand) => {
        const { Bucket, Key } = command.input;
        read.push(`${Bucket}/${Key}`);
        if (Key === 'inv/manifest.json') return { Body: { transformToString: async () => manifestText } };
        return { Body: Readable.from([gzipSync(`${files[Key!].join('\n')}\n`)]) };
      }),
    };
    const sqs = {
      send: jest.fn(async (command: GetQueueUrlCommand | GetQueueAttributesCommand | SendMessageBatchCommand) => {
        if (command instanceof GetQueueUrlCommand) return { QueueUrl: 'https://sqs/intake' };
        if (command instanceof GetQueueAttributesCommand) return { Attributes: { ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesDelayed: '0' } };
        sent.push(...command.input.Entries!.map((e) => e.Id!));
        return { Successful: command.input.Entries!.map((e) => ({ Id: e.Id })), Failed: [] };
      }),
    };
    return { clients: { s3, sqs } as unknown as StageClients, read, sent };
  }
  const silent = { update: () => undefined, end: () => undefined };
  const request: BackfillRequest = { prefix: 'incoming/', ratePerSecond: 50, dryRun: false, inventory: 's3://inventory-bucket/inv/manifest.json' };

  test('CSV rows: quoted fields with escaped quotes and commas; URL-encoded keys; a delete marker is not current', () => {
    expect(csvFields('"a","b, ""c""",,d')).toEqual(['a', 'b, "c"', '', 'd']);
    const cols = columns.split(',').map((c) => c.trim());
    expect(versionOfRow(csvFields(row('incoming/x+y%2B1.csv', 'v1', true)), cols)).toMatchObject({
      Key: 'incoming/x y+1.csv',
      VersionId: 'v1',
      IsLatest: true,
      Size: 10,
    });
    expect(versionOfRow(csvFields(row('incoming/x.csv', 'v2', true, true)), cols).IsLatest).toBe(false);
  });

  test('each current object of the report under the prefix, with the job id its listing (and its upload) gives; a page per file', async () => {
    const stage = inventoryStage();
    const file = join(mkdtempSync(join(tmpdir(), 'backfill-test-')), 'checkpoint.json');
    const summary = await backfill(stage.clients, dev, { ...request, checkpointFile: file }, silent, fakeClock());
    const expected = [version('incoming/a.csv', 'va'), version('incoming/with space.csv', 'vs'), version('incoming/b.csv', 'vb')];
    expect(stage.sent).toEqual(expected.map((v) => backfillMessage(dev, v).id));
    expect(summary).toMatchObject({ listed: 3, sent: 3, inventory: request.inventory });
    expect(stage.read).toEqual([`inventory-bucket/inv/manifest.json`, 'inventory-bucket/inv/data/one.csv.gz', 'inventory-bucket/inv/data/two.csv.gz']);
    expect(readCheckpoint(file, { stage: 'dev', bucket, prefix: 'incoming/', since: null, inventory: request.inventory! })).toMatchObject({
      next: null,
      sent: 3,
    });
    // The same file, without the inventory, is another backfill's.
    await expect(
      backfill(inventoryStage().clients, dev, { ...request, inventory: undefined, checkpointFile: file }, silent, fakeClock()),
    ).rejects.toMatchObject({
      exitCode: EXIT.usage,
    });
  });

  test.each([
    [{ sourceBucket: 'another-bucket' }, `it lists bucket another-bucket, not the stage's ${bucket}`],
    [{ fileSchema: 'Bucket, Key, Size' }, 'it has no VersionId column (an inventory of all versions, with the LastModifiedDate field, has)'],
    [{ fileSchema: 'Bucket, Key, VersionId, IsLatest, Size' }, 'it has no LastModifiedDate column'],
    [{ fileFormat: 'Parquet' }, 'its format is Parquet; backfill reads CSV'],
  ])('a manifest backfill cannot use is refused before anything is sent: %j', async (overrides, reason) => {
    const stage = inventoryStage(manifest(overrides));
    await expect(backfill(stage.clients, dev, request, silent, fakeClock())).rejects.toMatchObject({
      exitCode: EXIT.usage,
      message: expect.stringContaining(reason),
    });
    expect(stage.sent).toEqual([]);
  });
});
