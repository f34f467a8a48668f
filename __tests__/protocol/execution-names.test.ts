/**
 * Breaks 3 and 4 of explorer/reverted-fixes.md (E4, E5, E7). An execution's name carries the pool's count of
 * admissions: named from the message's round, an old round's message for a job waiting between rounds would reuse a
 * closed execution's name, ExecutionAlreadyExists would be taken for "started", the job's real next round deleted, and
 * the job would end failed without running (or, while the old batch record lived, loop as contention into the DLQ).
 * And a StartExecution whose answer was lost after Step Functions created the execution is settled by asking Step
 * Functions: undone without asking, two executions would run the same jobs.
 */
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ledgerKey } from '../../functions/ledger';
import { inUseVcpu, readPool } from '../../functions/limiter';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { stageConfig } from '../support/synth';
import { capacityError, runExecutionOf } from '../support/execution';
import { intakeWorld, objectCreated } from '../support/intake-world';
import { leasedVcpu } from './support';

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

const noCapacity = async () => {
  throw capacityError();
};
const succeeds = async () => ({ TaskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/sluice-dev/t1' });

test('an old copy of a job given back for capacity starts a new execution of its own; the job runs and succeeds', async () => {
  const config = stageConfig('dev');
  const world = await intakeWorld(moto, { budgetVcpu: 4, ratePerSecond: 2, burst: 4 });
  const upload = objectCreated('incoming/twice.csv');
  world.sqs.sendMessage(world.queueUrl, upload);
  expect((await world.dispatch()).admitted).toBe(1);
  const [first] = world.started;
  const { jobId } = first.jobs[0];
  await runExecutionOf(moto, world, config, first, { runTask: noCapacity }); // its next round waits 60 s in the queue
  first.status = 'SUCCEEDED';

  // S3 delivers the upload's event again; a sweep has removed the first batch's record meanwhile, or not (E5).
  world.sqs.sendMessage(world.queueUrl, upload);
  const again = await world.dispatch();
  expect(again).toMatchObject({ admitted: 1, executionsStarted: 1, stoppedBecause: 'queue-empty' });
  expect(world.started).toHaveLength(2);
  const second = world.started[1];
  expect(second.name).not.toBe(first.name);
  await runExecutionOf(moto, world, config, second, { runTask: succeeds });
  second.status = 'SUCCEEDED';

  // The capacity return's own message comes now: the job has its result, the message is a duplicate.
  await world.advance(61_000);
  expect(await world.dispatch()).toMatchObject({ admitted: 0, duplicates: 1 });
  await world.janitor();
  const row = (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(jobId), ConsistentRead: true }))).Item!;
  expect(row).toMatchObject({ status: 'succeeded', admissions: 2, failedRuns: 0 });
  expect(world.sqs.counts(world.queueUrl).total + world.sqs.counts(world.deadLetterQueueUrl).total).toBe(0);
});

test("a message never lowers the row's counts of admissions and failed runs", async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 4, ratePerSecond: 2, burst: 4 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/counted.csv'));
  expect((await world.dispatch()).admitted).toBe(1);
  const [first] = world.started;
  first.status = 'ABORTED';
  await world.janitor(); // failed runs 1, queued, its next round sent
  const { jobId } = first.jobs[0];
  // An old copy (round 0, no failed runs) is admitted before the requeue (held in flight here meanwhile).
  const held = await world.sqs.send(new ReceiveMessageCommand({ QueueUrl: world.queueUrl, VisibilityTimeout: 600 }));
  expect(JSON.parse(held.Messages[0].Body)).toMatchObject({ sluice: 'requeue', round: 1, failedRuns: 1 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/counted.csv'));
  expect((await world.dispatch()).admitted).toBe(1);
  const row = (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(jobId), ConsistentRead: true }))).Item!;
  expect(row).toMatchObject({ status: 'running', admissions: 2, failedRuns: 1 });
});

test('a StartExecution whose answer was lost after Step Functions created the execution counts as started: its jobs run once', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 4, ratePerSecond: 19, burst: 20 });
  for (const key of ['a1', 'a2']) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/${key}.csv`));
  world.createThenFailNextStart('ServiceUnavailable');
  expect(await world.dispatch()).toMatchObject({ admitted: 2, executionsStarted: 1 });
  expect(world.started).toHaveLength(1);
  expect(await leasedVcpu(moto, world.tableName)).toBe(2);

  // Another upload and time: nothing brings a1 or a2 back for a second execution.
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/c.csv'));
  await world.advance(20_000);
  expect(await world.dispatch()).toMatchObject({ admitted: 1 });
  expect(world.started.map((s) => s.jobs.map((j) => j.key))).toEqual([['incoming/a1.csv', 'incoming/a2.csv'], ['incoming/c.csv']]);
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(3);
  expect(await leasedVcpu(moto, world.tableName)).toBe(3);
});
