import { ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { peekDeadLetters } from '../../cli/failures';
import type { StageClients } from '../../cli/stage';
import { changeVisibilityInBatches, deleteInBatches, sqsText } from '../../functions/queue-batches';
import { chunks } from '../../functions/runtime';
import type { AwsClient } from '../../functions/runtime';
import { VirtualClock } from '../../twin/engines/clock';
import { Recorder } from '../../twin/engines/recorder';
import { SqsEmulator } from '../../twin/engines/sqs';

interface Call {
  readonly command: string;
  readonly entries: ReadonlyArray<{ readonly Id: string; readonly ReceiptHandle?: string; readonly VisibilityTimeout?: number }>;
}

/** A queue on the twin's SQS holding `count` messages, and a client that records the batch calls sent through it. */
function queueOf(count: number) {
  const clock = new VirtualClock();
  const sqs = new SqsEmulator(clock, new Recorder(clock));
  const url = sqs.createQueue({ name: 'q', visibilityTimeoutSeconds: 300 });
  for (let i = 0; i < count; i++) sqs.sendMessage(url, `body-${i}`);
  const calls: Call[] = [];
  const client: AwsClient = {
    send(command: { constructor: { name: string }; input: { Entries?: Call['entries'] } }) {
      if (command.input.Entries) calls.push({ command: command.constructor.name, entries: command.input.Entries });
      return sqs.send(command);
    },
  };
  const receiveAll = async (): Promise<Message[]> => {
    const messages: Message[] = [];
    for (;;) {
      const { Messages = [] } = (await client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }))) as { Messages?: Message[] };
      if (Messages.length === 0) return messages;
      messages.push(...Messages);
    }
  };
  return { clock, sqs, url, client, calls, receiveAll };
}

test('chunks cuts a list into runs of the size, in order, the last one shorter', () => {
  const items = Array.from({ length: 23 }, (_, i) => i);
  const cut = chunks(items, 10);
  expect(cut.map((c) => c.length)).toEqual([10, 10, 3]);
  expect(cut.flat()).toEqual(items);
  expect(
    chunks(
      Array.from({ length: 20 }, (_, i) => i),
      10,
    ).map((c) => c.length),
  ).toEqual([10, 10]);
  expect(chunks([], 10)).toEqual([]);
});

test('deleteInBatches deletes any number of messages ten per call, each entry named by its place in its call', async () => {
  const q = queueOf(23);
  const received = await q.receiveAll();
  expect(received).toHaveLength(23);

  expect(await deleteInBatches(q.client, q.url, received)).toEqual([]);
  expect(q.sqs.counts(q.url).total).toBe(0);
  expect(q.calls.map((c) => [c.command, c.entries.length])).toEqual([
    ['DeleteMessageBatchCommand', 10],
    ['DeleteMessageBatchCommand', 10],
    ['DeleteMessageBatchCommand', 3],
  ]);
  expect(q.calls[2].entries).toEqual(received.slice(20).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })));
});

test('deleteInBatches answers the failed entries of the first call SQS refused part of, and sends none after it', async () => {
  const q = queueOf(23);
  const received = await q.receiveAll();
  // The third message of the second call has a handle SQS does not know.
  const messages = received.map((m, i) => (i === 12 ? { ...m, ReceiptHandle: 'not-a-handle' } : m));

  const failed = await deleteInBatches(q.client, q.url, messages);
  expect(failed).toEqual([expect.objectContaining({ Id: '2', Code: 'ReceiptHandleIsInvalid', SenderFault: true })]);
  expect(q.calls).toHaveLength(2);
  // Left in the queue: the message whose delete failed, and the last three, never sent.
  expect(q.sqs.counts(q.url)).toMatchObject({ total: 4, inflight: 4 });
  expect(await deleteInBatches(q.client, q.url, [received[12], ...received.slice(20)])).toEqual([]);
  expect(q.sqs.counts(q.url).total).toBe(0);
});

test('deleteInBatches and changeVisibilityInBatches send nothing for no messages', async () => {
  const q = queueOf(0);
  expect(await deleteInBatches(q.client, q.url, [])).toEqual([]);
  await changeVisibilityInBatches(q.client, q.url, [], 0);
  expect(q.calls).toEqual([]);
});

test('changeVisibilityInBatches sets the timeout of every message, ten per call', async () => {
  const q = queueOf(23);
  const received = await q.receiveAll();
  expect(q.sqs.counts(q.url)).toMatchObject({ inflight: 23 });

  await changeVisibilityInBatches(q.client, q.url, received, 0);
  await q.clock.run({ untilMs: 0 });
  expect(q.sqs.counts(q.url)).toMatchObject({ visible: 23, inflight: 0 });
  expect(q.calls.map((c) => c.entries.length)).toEqual([10, 10, 3]);
  for (const call of q.calls) {
    expect(call.command).toBe('ChangeMessageVisibilityBatchCommand');
    expect(call.entries.map((e) => [e.Id, e.VisibilityTimeout])).toEqual(call.entries.map((_, i) => [String(i), 0]));
  }

  // A timeout other than zero hides them that long.
  const again = await q.receiveAll();
  await changeVisibilityInBatches(q.client, q.url, again, 15);
  await q.clock.run({ untilMs: 14_999 });
  expect(q.sqs.counts(q.url)).toMatchObject({ visible: 0, inflight: 23 });
  await q.clock.run({ untilMs: 15_000 });
  expect(q.sqs.counts(q.url)).toMatchObject({ visible: 23, inflight: 0 });
});

test('sluice failures looks at dead letters without taking them: every one it received is visible again at once', async () => {
  const q = queueOf(25);
  const clients = { sqs: q.client } as unknown as StageClients;

  const peeked = await peekDeadLetters(clients, q.url, 25);
  expect(peeked.map((m) => m.Body).sort()).toEqual(Array.from({ length: 25 }, (_, i) => `body-${i}`).sort());
  await q.clock.run({ untilMs: 0 });
  expect(q.sqs.counts(q.url)).toMatchObject({ visible: 25, inflight: 0, total: 25 });
  expect(q.calls.map((c) => [c.command, c.entries.length])).toEqual([
    ['ChangeMessageVisibilityBatchCommand', 10],
    ['ChangeMessageVisibilityBatchCommand', 10],
    ['ChangeMessageVisibilityBatchCommand', 5],
  ]);
});

test("text for SQS keeps what SQS accepts and turns the rest into U+FFFD (a poison message's reason holds its key: review I5)", () => {
  expect(sqsText('key incoming/ä€😀.csv\ttab\nline\r')).toBe('key incoming/ä€😀.csv\ttab\nline\r');
  expect(sqsText('bad\u0001key\u001b[0m\ufffe\ud800end')).toBe('bad\ufffdkey\ufffd[0m\ufffd\ufffdend');
});
