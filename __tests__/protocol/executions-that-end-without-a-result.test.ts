/**
 * Break 5 of explorer/reverted-fixes.md (E6), and what follows for executions that end without a result: a job is
 * never failed for lack of capacity, a job is charged a failed run only by an execution that died under it, and its
 * next round never starts while a task of an execution that died may still be stopping.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ledgerKey } from '../../functions/ledger';
import { inUseVcpu, readPool } from '../../functions/limiter';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { stageConfig } from '../support/synth';
import { capacityError, runExecutionOf } from '../support/execution';
import { intakeWorld, objectCreated } from '../support/intake-world';

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

async function rowOf(tableName: string, jobId: string) {
  return (await moto.ddb.send(new GetCommand({ TableName: tableName, Key: ledgerKey(jobId), ConsistentRead: true }))).Item!;
}

test('no capacity and SQS refusing the requeue: the job keeps its lease, and the janitor re-queues it without a failed run', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 4, ratePerSecond: 2, burst: 4 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/sqs-down.csv'));
  expect((await world.dispatch()).admitted).toBe(1);
  const [execution] = world.started;
  const { jobId } = execution.jobs[0];
  let sends = 0;
  await runExecutionOf(moto, world, stageConfig('dev'), execution, {
    runTask: async () => {
      throw capacityError();
    },
    sendMessage: async () => {
      sends++;
      throw Object.assign(new Error('Service Unavailable'), { name: 'SQS.AmazonSQSException' });
    },
  });
  execution.status = 'SUCCEEDED';
  expect(sends).toBe(6);
  expect(await rowOf(world.tableName, jobId)).toMatchObject({ status: 'running', lease: expect.objectContaining({ execution: execution.name }) });

  expect(await world.janitor()).toMatchObject({ released: 1, requeued: 1, failed: 0 });
  expect(await rowOf(world.tableName, jobId)).toMatchObject({ status: 'queued', failedRuns: 0 });
  expect((await world.dispatch()).admitted).toBe(1);
  expect(await rowOf(world.tableName, jobId)).toMatchObject({ status: 'running', admissions: 2, failedRuns: 0 });
});

test('an aborted execution is settled only once its tasks have had their stop timeout: its leases hold till then', async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 4, ratePerSecond: 2, burst: 4 });
  world.sqs.sendMessage(world.queueUrl, objectCreated('incoming/stopping.csv'));
  expect((await world.dispatch()).admitted).toBe(1);
  const [execution] = world.started;
  const { jobId } = execution.jobs[0];
  execution.status = 'ABORTED';
  execution.stoppedAt = world.clock.now();
  const endedEvent = {
    detail: { executionArn: `${world.settings.stateMachineArn.replace(':stateMachine:', ':execution:')}:${execution.name}`, status: 'ABORTED' },
  };

  // Told at once by the execution's end: its task may still be stopping (SIGTERM, then SIGKILL after 30 s).
  expect(await world.janitor({ stopGraceMs: 60_000 }, endedEvent)).toMatchObject({ released: 0, stillRunning: 1 });
  expect(inUseVcpu(await readPool(moto.ddb, world.tableName))).toBe(1);
  expect(world.sqs.counts(world.queueUrl).total).toBe(0);

  await world.advance(61_000);
  expect(await world.janitor({ stopGraceMs: 60_000 })).toMatchObject({ released: 1, requeued: 1 });
  expect(await rowOf(world.tableName, jobId)).toMatchObject({ status: 'queued', failedRuns: 1 });
  expect(world.sqs.counts(world.queueUrl).total).toBe(1);
});
