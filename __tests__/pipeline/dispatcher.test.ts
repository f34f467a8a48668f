import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { ledgerKey } from '../../functions/ledger';
import { POOL_KEY, readPool, releaseCommand, tryUpdate } from '../../functions/pool';
import { startDynalite, type LocalDynamo } from '../support/dynalite';
import { BUCKET, intakeWorld, objectCreated } from '../support/intake-world';

let dynamo: LocalDynamo;
beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(() => dynamo.close());

/** As if the dispatcher had stopped before marking the job running. */
async function ledgerSaysQueued(tableName: string, jobId: string) {
  await dynamo.ddb.send(
    new UpdateCommand({
      TableName: tableName,
      Key: ledgerKey(jobId),
      UpdateExpression: 'SET #s = :q',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':q': 'queued' },
    }),
  );
}

const roomy = { budgetVcpu: 100, ratePerSecond: 19, burst: 100 };

test('poison goes to the DLQ with its reason and never holds up the good messages', async () => {
  const world = await intakeWorld(dynamo, roomy);
  const poison: Array<[string, RegExp]> = [
    ['{not json', /not JSON/],
    [JSON.stringify({ source: 'aws.s3', 'detail-type': 'Object Deleted', detail: {} }), /not an S3 Object Created event/],
    [objectCreated('incoming/a.csv', 'v1', 'someone-elses-bucket'), /is not this pipeline's bucket/],
    [objectCreated('results/a.csv.json'), /outside the input prefix "incoming\/"/],
  ];
  for (const [body] of poison) world.sqs.sendMessage(world.queueUrl, body);
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/good-1.csv'));
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/good-2.csv'));

  const summary = await world.dispatch();
  expect(summary).toMatchObject({ poison: 4, admitted: 2, executionsStarted: 1, stoppedBecause: 'queue-empty' });
  expect(world.started[0].jobs.map((j) => j.key).sort()).toEqual(['incoming/good-1.csv', 'incoming/good-2.csv']);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);

  const { Messages = [] } = await world.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: world.deadLetterQueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }),
  );
  expect(Messages).toHaveLength(4);
  for (const [body, reason] of poison) {
    const dead = Messages.find((m: { Body: string }) => m.Body === body);
    expect(dead).toBeDefined();
    expect(dead.MessageAttributes.reason.StringValue).toMatch(reason);
  }
});

test('the same object delivered three times starts one execution', async () => {
  const world = await intakeWorld(dynamo, roomy);
  for (let i = 0; i < 3; i++) world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/twice.csv', 'v7'));
  const first = await world.dispatch();
  // One more copy arrives after the job started: the ledger knows it.
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/twice.csv', 'v7'));
  const second = await world.dispatch();

  expect(world.started).toHaveLength(1);
  expect(world.started[0].jobs).toHaveLength(1);
  expect(first.duplicates + second.duplicates).toBe(3);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);
  const jobId = world.started[0].jobs[0].jobId;
  const row = (await dynamo.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(jobId) }))).Item!;
  expect(row).toMatchObject({ status: 'running', attempts: 1, executionName: world.started[0].name, bucket: BUCKET });
});

test('a backlog larger than the budget: what fits is admitted, the rest waits unreceived', async () => {
  const world = await intakeWorld(dynamo, { budgetVcpu: 4, ratePerSecond: 19, burst: 100 }, 1);
  for (let i = 0; i < 10; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/backlog-${i}.csv`));

  const send = jest.spyOn(dynamo.ddb, 'send');
  const first = await world.dispatch();
  const poolReads = send.mock.calls.filter(([command]) => command instanceof GetCommand && (command.input.Key as { pk: string }).pk === POOL_KEY.pk);
  send.mockRestore();
  // Out of budget it stops rather than poll: the next lease release wakes it.
  expect(first).toMatchObject({ admitted: 4, stoppedBecause: 'no-budget', waits: 0 });
  // One read: the plan after the admission, which finds the budget spent, starts from the pool the admission returned.
  expect(poolReads).toHaveLength(1);
  const pool = await readPool(dynamo.ddb, world.tableName);
  expect(pool.inUseVcpu).toBe(4);
  // The six waiting were never received: with maxReceiveCount 1, one receive too many would have
  // sent them to the DLQ by now.
  expect(world.sqs.counts(world.queueUrl)).toMatchObject({ visible: 6, inflight: 0 });

  // Two jobs finish and release their leases; the next run admits exactly two more.
  const finished = world.started[0].jobs.slice(0, 2);
  const released = releaseCommand(world.tableName, finished.map((j) => ({ jobId: j.jobId, vcpu: 1, execution: world.started[0].name })), world.clock.now());
  expect(await tryUpdate(dynamo.ddb, released)).toBe(true);
  const second = await world.dispatch();
  expect(second.admitted).toBe(2);
  expect(world.sqs.counts(world.queueUrl).visible).toBe(4);
  expect(world.sqs.counts(world.deadLetterQueueUrl).total).toBe(0);
});

test('a failed StartExecution gives back its leases and leaves the messages queued', async () => {
  const world = await intakeWorld(dynamo, roomy);
  for (let i = 0; i < 3; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/fail-${i}.csv`));
  world.failStartsWith('ServiceUnavailable');

  const summary = await world.dispatch();
  expect(summary).toMatchObject({ admitted: 0, stoppedBecause: 'start-failed' });
  expect(await readPool(dynamo.ddb, world.tableName)).toMatchObject({ inUseVcpu: 0, leases: {} });
  expect(world.sqs.counts(world.queueUrl).total).toBe(3);

  // Once Step Functions answers again, the same messages start their jobs.
  world.failStartsWith(undefined);
  await world.advance(20_000);
  const retry = await world.dispatch();
  expect(retry.admitted).toBe(3);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);
});

test('ExecutionAlreadyExists counts as started: the message is deleted and nothing new starts', async () => {
  const world = await intakeWorld(dynamo, roomy);
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/again.csv'));
  await world.dispatch();
  // The execution ran and released its lease, but the dispatcher had stopped before it marked the job
  // running and deleted the message: the ledger still says queued and the message comes back.
  const [execution] = world.started;
  await tryUpdate(dynamo.ddb, releaseCommand(world.tableName, [{ jobId: execution.jobs[0].jobId, vcpu: 1, execution: execution.name }], world.clock.now()));
  await ledgerSaysQueued(world.tableName, execution.jobs[0].jobId);
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/again.csv'));
  const summary = await world.dispatch();
  expect(summary.admitted).toBe(1);
  expect(world.started).toHaveLength(1);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);
  // The new lease names an execution that has ended: the janitor reclaims it (see janitor.test.ts).
  expect(Object.values((await readPool(dynamo.ddb, world.tableName)).leases).map((l) => l.execution)).toEqual([execution.name]);
});

test('a job whose lease is still held is not started twice: its message waits for the janitor', async () => {
  const world = await intakeWorld(dynamo, roomy);
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/held.csv'));
  await world.dispatch();
  // As if the dispatcher had stopped right after StartExecution: ledger queued, message back, lease held.
  const [execution] = world.started;
  await ledgerSaysQueued(world.tableName, execution.jobs[0].jobId);
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/held.csv'));
  const summary = await world.dispatch();
  expect(summary).toMatchObject({ admitted: 0, deferred: 1 });
  expect(world.started).toHaveLength(1);
  expect(world.sqs.counts(world.queueUrl)).toMatchObject({ inflight: 1 }); // hidden, not lost
});

test('launches are shaped by the token bucket: never more than burst + rate × elapsed', async () => {
  const world = await intakeWorld(dynamo, { budgetVcpu: 100, ratePerSecond: 2, burst: 3 });
  for (let i = 0; i < 20; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/rate-${i}.csv`));
  const startedAt = world.clock.seconds();
  const summary = await world.dispatch({ maxRunMs: 5_000 });
  const elapsed = world.clock.seconds() - startedAt;
  expect(summary.admitted).toBeGreaterThanOrEqual(3 + 2 * 4);
  expect(summary.admitted).toBeLessThanOrEqual(3 + 2 * Math.ceil(elapsed));
});
