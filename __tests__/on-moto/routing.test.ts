import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { stageConfig } from '../../cli/stage';
import { functionNameOf, taskRoleArnOf } from '../../environments/names';
import { appliedStage, clientConfig } from './applied-stage';

const stage = appliedStage();
const s3 = new S3Client({ ...clientConfig(stage), requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
const sqs = new SQSClient(clientConfig(stage));
const bucket = String(stage.outputs.bucket_name);
const queueUrl = String(stage.outputs.intake_queue_url);

const sts = new STSClient(clientConfig(stage));
const config = stageConfig(stage.stage);

afterAll(() => {
  s3.destroy();
  sqs.destroy();
  sts.destroy();
});

/** An S3 client holding a session of the role: moto checks no trust policy, so the test can act as the worker. */
async function s3As(roleArn: string): Promise<S3Client> {
  const { Credentials } = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'verify-routing' }));
  const credentials = { accessKeyId: Credentials!.AccessKeyId!, secretAccessKey: Credentials!.SecretAccessKey!, sessionToken: Credentials!.SessionToken };
  return new S3Client({ ...clientConfig(stage), credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}

async function drain(untilKeys: number, waitMs: number): Promise<string[]> {
  const keys: string[] = [];
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline && keys.length < untilKeys) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    keys.push(...Messages.map((m: Message) => JSON.parse(m.Body ?? '{}').detail?.object?.key as string));
    if (Messages.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
      );
    }
  }
  return keys;
}

test('an upload under the input prefix reaches the intake queue through the applied rule; results, a sibling prefix and other keys do not', async () => {
  const put = (key: string, client = s3) => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `routing ${key}\n` }));
  await put('results/routing-result.json', await s3As(taskRoleArnOf(config))); // as the worker writes one
  await put('incomingX/routing-sibling.csv');
  await put('elsewhere/routing-other.csv');
  await put('incoming/routing-in.csv');
  // Everything was put before the last key; anything else the rule let through would be there by now too.
  const keys = await drain(1, 15_000);
  const more = await drain(Number.POSITIVE_INFINITY, 3_000);
  expect([...keys, ...more]).toEqual(['incoming/routing-in.csv']);
});

test('a key with spaces and signs is routed too, as stored or URL-encoded (sluice handles either; moto sends it as stored)', async () => {
  const key = 'incoming/routing odd+key(1).csv';
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'odd\n' }));
  const [delivered, ...rest] = await drain(1, 15_000);
  expect(rest).toEqual([]);
  expect([key, 'incoming/routing+odd%2Bkey%281%29.csv']).toContain(delivered);
});

test("results are written by the worker's role only: another of the stage's roles is refused by the bucket policy", async () => {
  const dispatcherRole = `arn:aws:iam::${stage.accountId}:role/${functionNameOf(config.namePrefix, 'dispatcher')}-fn`;
  const asDispatcher = await s3As(dispatcherRole);
  const refused = asDispatcher.send(new PutObjectCommand({ Bucket: bucket, Key: 'results/incoming/forged.csv.json', Body: '{}' }));
  await expect(refused).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
  // moto checks no identity policy, so the same session's put outside the results prefix goes through: the refusal
  // above is the bucket policy's.
  await expect(asDispatcher.send(new PutObjectCommand({ Bucket: bucket, Key: 'elsewhere/by-dispatcher.txt', Body: 'x' }))).resolves.toBeDefined();
  asDispatcher.destroy();
});
