import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { appliedStage, clientConfig } from './applied-stage';

const stage = appliedStage();
const s3 = new S3Client({ ...clientConfig(stage), requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
const sqs = new SQSClient(clientConfig(stage));
const bucket = String(stage.outputs.bucket_name);
const queueUrl = String(stage.outputs.intake_queue_url);

afterAll(() => {
  s3.destroy();
  sqs.destroy();
});

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
  const put = (key: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `routing ${key}\n` }));
  await put('results/routing-result.json');
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
