/**
 * `sluice smoke` against moto's S3 (versioned), DynamoDB and SQS, the stage's resources named as the stack names
 * them. What moves the canary through is scripted here, step by step as the virtual clock advances — a ledger row
 * admitted, the worker's result, the release — because moto runs neither the functions nor the state machine; its
 * Step Functions cannot replay an execution's history, so that one read (GetExecutionHistory) is answered with the
 * events Step Functions documents for a RunTask .sync state. The deployed path end to end is the rollout's to run.
 */
import { CreateBucketCommand, PutBucketVersioningCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetExecutionHistoryCommand } from '@aws-sdk/client-sfn';
import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { jobIdOf } from '../../functions/jobs';
import { ledgerKey } from '../../functions/ledger';
import { intakeDeadLetterQueueName, stageBucketName, stateTableName } from '../../environments/names';
import { canaryObject, formatSmoke, smoke, type SmokeReport } from '../../cli/smoke';
import type { StageClients } from '../../cli/stage';
import { startMoto, type MotoServer } from '../../verify/moto';
import { PK_TABLE } from '../support/dynalite';
import { resourcesOf, stageConfig, synthStage } from '../support/synth';

const config = stageConfig('dev');
const bucket = stageBucketName(config);
let moto: MotoServer;
let clients: StageClients;
let s3: S3Client;
let sqs: SQSClient;

beforeAll(async () => {
  moto = await startMoto({ accountId: config.account.id, region: config.account.region });
  const options = moto.clientConfig();
  s3 = new S3Client(options);
  sqs = new SQSClient(options);
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(options));
  await s3.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  await new DynamoDBClient(options).send(new CreateTableCommand({ TableName: stateTableName(config.namePrefix), ...PK_TABLE }));
  await sqs.send(new CreateQueueCommand({ QueueName: intakeDeadLetterQueueName(config.namePrefix) }));
  clients = { s3, sqs, ddb, sfn: { send: async () => ({ events: [] }) } as never, sts: undefined as never };
}, 60_000);
afterAll(() => moto.stop());

const EXECUTION = `arn:aws:states:${config.account.region}:${config.account.id}:execution:${config.namePrefix}-jobs:batch-1`;
const TASK = `arn:aws:ecs:${config.account.region}:${config.account.id}:task/${config.namePrefix}/abc123`;
const IMAGE = `${config.account.id}.dkr.ecr.${config.account.region}.amazonaws.com/${config.image.repository}:${config.image.tag}`;
const DIGEST = `sha256:${'c'.repeat(64)}`;

/** The stage as the test plays it: each sleep of the smoke is one step of its canary's way through. */
function stage(script: Array<(jobId: string, key: string, now: number) => Promise<unknown>>) {
  let now = Date.parse('2026-12-07T06:00:00Z');
  let step = 0;
  let canary: { jobId: string; key: string } | undefined;
  const s3Watch = {
    send: async (command: unknown) => {
      const answer = await s3.send(command as never);
      if (command instanceof PutObjectCommand && !canary) {
        const key = command.input.Key!;
        canary = { key, jobId: jobIdOf(bucket, key, (answer as { VersionId: string }).VersionId, '') };
      }
      return answer;
    },
  };
  const history = {
    send: async (command: unknown) => {
      if (!(command instanceof GetExecutionHistoryCommand)) throw new Error(`unexpected ${String(command)}`);
      // A RunTask .sync state's TaskSucceeded output is the DescribeTasks task, keys capitalized (asked after the
      // release, 30 s after the upload: RunTask at +12 s, RUNNING at +15 s).
      const task = {
        TaskArn: TASK,
        CreatedAt: now - 18_000,
        StartedAt: now - 15_000,
        LastStatus: 'STOPPED',
        Containers: [{ Name: 'worker', Image: IMAGE, ImageDigest: DIGEST }],
      };
      return {
        events: [{ type: 'TaskSucceeded', taskSucceededEventDetails: { resourceType: 'ecs', resource: 'runTask.sync', output: JSON.stringify(task) } }],
      };
    },
  };
  return {
    clients: { ...clients, s3: s3Watch, sfn: history } as unknown as StageClients,
    options: {
      timeoutMs: 120_000,
      intervalMs: 10_000,
      now: () => now,
      sleep: async (ms: number) => {
        now += ms;
        if (canary && step < script.length) await script[step++](canary.jobId, canary.key, now);
      },
    },
  };
}

const ddb = () => clients.ddb;
const iso = (ms: number) => new Date(ms).toISOString();
const row = (jobId: string, key: string, fields: Record<string, unknown>) =>
  ddb().send(
    new PutCommand({
      TableName: stateTableName(config.namePrefix),
      Item: { ...ledgerKey(jobId), jobId, bucket, objectKey: key, versionId: 'v', sequencer: '', admissions: 1, failedRuns: 0, ...fields },
    }),
  );
const admitted = async (jobId: string, key: string, now: number) =>
  row(jobId, key, {
    status: 'running',
    startedAt: iso(now),
    executionArn: EXECUTION,
    lease: { execution: 'batch-1', vcpu: 1, admittedAt: now, expiresAt: now + 3_600_000 },
  });
const resultWritten = (metadataJobId?: string) => async (jobId: string, key: string) => {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: `${config.bucket.resultsPrefix}${key}.json`,
      Body: '{}',
      Metadata: { 'sluice-job-id': metadataJobId ?? jobId, 'sluice-status': 'succeeded', 'sluice-source-version': 'v' },
    }),
  );
};
/** The release, two steps (20 s) after the admission: the row keeps when its round was admitted. */
const released = async (jobId: string, key: string, now: number) =>
  row(jobId, key, { status: 'succeeded', startedAt: iso(now - 20_000), executionArn: EXECUTION, taskArn: TASK, finishedAt: iso(now) });

test('a canary that runs through: every check passes, each hop is timed, exit 0', async () => {
  const { clients: c, options } = stage([admitted, resultWritten(), released]);
  const report = await smoke(c, config, options);
  expect(report).toMatchObject({ stage: 'dev', outcome: 'passed', exitCode: 0 });
  expect(report.object).toMatch(new RegExp(`^s3://${bucket}/incoming/_sluice-smoke/.+\\.jsonl$`));
  expect(report.checks.map((ch) => [ch.check, ch.ok])).toEqual([
    ['the job succeeded', true],
    ['its result is there, and is this job’s', true],
    ['its lease came back', true],
    ['the intake dead-letter queue did not grow', true],
  ]);
  const hops = Object.fromEntries(report.hops.map((h) => [h.hop.split(' (')[0], h.seconds]));
  expect(hops).toMatchObject({ 'upload → admitted': 10, 'admitted → RunTask accepted': 2, 'RunTask → task RUNNING': 3, 'upload → lease released': 30 });
  // The result's moment is S3's own clock (moto's), not this test's: only that it is timed.
  expect(typeof hops['RUNNING → result written']).toBe('number');
  // The image the task ran, by digest: what the next stage's promotion checks.
  expect(report.worker).toEqual({ taskArn: TASK, image: IMAGE, imageDigest: DIGEST });
  expect(formatSmoke(report)).toMatch(/^smoke dev: passed/);
  expect(formatSmoke(report)).toContain(`image ${IMAGE} (${DIGEST})`);
});

test.each<[string, Array<(jobId: string, key: string, now: number) => Promise<unknown>>, Partial<SmokeReport>, RegExp]>([
  [
    'a job that failed',
    [admitted, async (jobId, key, now) => row(jobId, key, { status: 'failed', error: 'BadInput', finishedAt: iso(now) })],
    { outcome: 'failed', exitCode: 1 },
    /FAIL the job succeeded: failed: BadInput/,
  ],
  ['a job never admitted', [], { outcome: 'timed-out', exitCode: 4 }, /FAIL the job succeeded: no ledger row after 120 s/],
  [
    "a result that is not this job's",
    [admitted, resultWritten('someone-else'), released],
    { outcome: 'failed', exitCode: 1 },
    /FAIL its result is there, and is this job’s/,
  ],
  [
    'a lease still held after the job ended',
    [
      admitted,
      resultWritten(),
      async (jobId, key, now) => row(jobId, key, { status: 'succeeded', finishedAt: iso(now), lease: { execution: 'batch-1', vcpu: 1 } }),
    ],
    { outcome: 'failed', exitCode: 1 },
    /FAIL its lease came back: still held by batch-1/,
  ],
  [
    'the dead-letter queue grew meanwhile',
    [
      admitted,
      resultWritten(),
      async (jobId, key, now) => {
        const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: intakeDeadLetterQueueName(config.namePrefix) }));
        await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'poison' }));
        await released(jobId, key, now);
      },
    ],
    { outcome: 'failed', exitCode: 1 },
    /FAIL the intake dead-letter queue did not grow: \d+ → \d+ message\(s\)/,
  ],
])('%s: the smoke says so', async (_what, script, expected, line) => {
  const { clients: c, options } = stage(script);
  const report = await smoke(c, config, options);
  expect(report).toMatchObject(expected);
  expect(formatSmoke(report)).toMatch(line);
});

test('the canary is an input the stage admits, in the folder its lifecycle rule expires', () => {
  expect(canaryObject(config, 'x').key).toBe('incoming/_sluice-smoke/x.jsonl');
  const csv = canaryObject({ ...config, bucket: { ...config.bucket, inputSuffix: '.csv' } }, 'x');
  expect(csv).toMatchObject({ key: 'incoming/_sluice-smoke/x.csv', contentType: 'text/csv' });
  expect(csv.body.split('\n')[0]).toBe('canary,stage');
});

test("the stage's bucket expires the canaries and their results after a week", () => {
  const { json } = synthStage('dev');
  const [, lifecycle] = resourcesOf(json, 'aws_s3_bucket_lifecycle_configuration').find(([name]) => name.startsWith('bucket_lifecycle'))!;
  const rules = (lifecycle.rule as Array<{ id: string; filter: Array<{ prefix?: string }>; expiration?: Array<{ days: number }> }>).map((r) => [
    r.id,
    r.filter[0].prefix,
    r.expiration?.[0]?.days,
  ]);
  expect(rules).toEqual(
    expect.arrayContaining([
      ['expire-smoke-canaries', 'incoming/_sluice-smoke/', 7],
      ['expire-smoke-results', 'results/incoming/_sluice-smoke/', 7],
    ]),
  );
});
