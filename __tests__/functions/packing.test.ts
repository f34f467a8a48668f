import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { readBatchRecord, recordObjectOutcome } from '../../functions/batches';
import { containerStopped, finishTask, OBJECT_NOT_RECORDED, parseFinishEvent, type TaskOutcome } from '../../functions/finish-task';
import { inUseVcpu, POOL_KEY, readPool } from '../../functions/limiter';
import { ledgerKey, OBJECT_BAD_INPUT } from '../../functions/ledger';
import { OUTCOMES_ATTRIBUTE, tasksPerAdmission, type ObjectOutcome } from '../../functions/packing';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';
import { intakeWorld, objectCreated } from '../support/intake-world';

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

/** `objects` uploads dispatched on a stage whose tasks run `objectsPerTask` each, on a budget of `budgetVcpu` 1-vCPU tasks. */
async function packedWorld(objects: number, objectsPerTask: number, budgetVcpu = 10) {
  const world = await intakeWorld(moto, { budgetVcpu, ratePerSecond: 19, burst: 100 });
  for (let i = 0; i < objects; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/o-${i}.csv`));
  const summary = await world.dispatch({ objectsPerTask });
  const row = async (jobId: string) => (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: ledgerKey(jobId), ConsistentRead: true }))).Item!;
  const finisher = {
    ddb: moto.ddb,
    sqs: world.sqs,
    clock: world.clock,
    settings: {
      tableName: world.tableName,
      batchesTableName: world.batchesTableName,
      queueUrl: world.queueUrl,
      capacityRetryDelaySeconds: 30,
      maxExecutionAttempts: 3,
    },
  };
  /** Records an object's end on the batch record, as the worker does. */
  const record = (execution: string, jobId: string, outcome: ObjectOutcome) => recordObjectOutcome(moto.ddb, world.batchesTableName, execution, jobId, outcome);
  const finish = (execution: string, task: number, outcome: TaskOutcome) => {
    const lead = world.started.find((s) => s.name === execution)!.jobs.find((j) => j.pack?.task === task)!;
    return finishTask(finisher, { execution, job: { ...lead, pack: lead.pack! }, outcome });
  };
  const inUse = async () => inUseVcpu(await readPool(moto.ddb, world.tableName));
  return { world, summary, row, record, finish, inUse };
}

const AT = '2026-12-08T01:00:00.000Z';

test('a packed batch: one item per task, its lead leasing the task vCPU and the others none, every object on the batch record', async () => {
  const { world, summary, row, inUse } = await packedWorld(7, 3);
  expect(summary.admitted).toBe(7);
  expect(world.started).toHaveLength(1);
  const [execution] = world.started;
  expect(execution.jobs.map((j) => j.pack)).toEqual([
    { task: 0, objects: 3 },
    { task: 1, objects: 3 },
    { task: 2, objects: 1 },
  ]);
  expect(new Set(execution.jobs.map((j) => j.releaseShard)).size).toBe(3);
  // Three tasks of 1 vCPU, and three launches.
  expect(await inUse()).toBe(3);
  const record = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!;
  expect(record.jobs.map((j) => [j.task, j.vcpu])).toEqual([
    [0, 1],
    [0, 0],
    [0, 0],
    [1, 1],
    [1, 0],
    [1, 0],
    [2, 1],
  ]);
  expect(record.jobs.map((j) => j.key)).toEqual(Array.from({ length: 7 }, (_, i) => `incoming/o-${i}.csv`));
  expect(record[OUTCOMES_ATTRIBUTE]).toEqual({});
  for (const job of record.jobs) expect(await row(job.jobId)).toMatchObject({ status: 'running', lease: { execution: execution.name, vcpu: job.vcpu } });
});

test('packing admits by the task: a budget of 2 tasks takes 6 objects of 3 a task, and the rest wait unreceived', async () => {
  const { world, summary, inUse } = await packedWorld(10, 3, 2);
  expect(summary.admitted).toBe(6);
  expect(await inUse()).toBe(2);
  expect(world.sqs.counts(world.queueUrl)).toMatchObject({ visible: 4, inflight: 0 });
});

test("a task that ran: each object's result from what the worker recorded, the task's vCPU given back once", async () => {
  const { world, row, record, finish, inUse } = await packedWorld(6, 3);
  const [execution] = world.started;
  const task0 = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!.jobs.filter((j) => j.task === 0);
  await record(execution.name, task0[0].jobId, { status: 'succeeded', at: AT });
  await record(execution.name, task0[1].jobId, { status: 'failed', reason: 'not a CSV file', at: AT });
  await record(execution.name, task0[2].jobId, { status: 'succeeded', at: AT });
  const summary = await finish(execution.name, 0, { kind: 'ran', taskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/c/t0' });
  expect(summary).toEqual({ objects: 3, succeeded: 2, failed: 1, returned: 0, alreadyGivenBack: 0 });
  expect(await row(task0[0].jobId)).toMatchObject({ status: 'succeeded', taskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/c/t0' });
  expect(await row(task0[1].jobId)).toMatchObject({ status: 'failed', error: OBJECT_BAD_INPUT, cause: 'not a CSV file' });
  expect(await row(task0[1].jobId)).not.toHaveProperty('lease');
  expect(await inUse()).toBe(1);
  // Called again (a retried Lambda call): nothing moves.
  expect(await finish(execution.name, 0, { kind: 'ran', taskArn: 'arn:x' })).toMatchObject({ alreadyGivenBack: 3, succeeded: 0 });
  expect(await inUse()).toBe(1);
});

test('a task that failed for good (not its container stopping transiently): an object it finished stays succeeded, the others fail with the task error', async () => {
  const { world, row, record, finish, inUse } = await packedWorld(3, 3);
  const [execution] = world.started;
  const jobs = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!.jobs;
  await record(execution.name, jobs[1].jobId, { status: 'succeeded', at: AT });
  const summary = await finish(execution.name, 0, { kind: 'failed', error: 'States.TaskFailed', cause: '{"exit":75}' });
  expect(summary).toMatchObject({ succeeded: 1, failed: 2 });
  expect(await row(jobs[0].jobId)).toMatchObject({ status: 'failed', error: 'States.TaskFailed', failedDay: expect.any(String) });
  expect(await row(jobs[1].jobId)).toMatchObject({ status: 'succeeded' });
  expect(await row(jobs[1].jobId)).not.toHaveProperty('taskArn');
  expect(await inUse()).toBe(0);
});

/** A container that stopped transiently, as RecordFailure sends it: the failure as JSON, its Cause the stopped task as JSON. */
const stoppedWith = (exitCode: number) => ({
  kind: 'failed' as const,
  error: 'States.TaskFailed',
  cause: JSON.stringify({ Error: 'States.TaskFailed', Cause: JSON.stringify({ TaskArn: 'arn:t', Containers: [{ Name: 'worker', ExitCode: exitCode }] }) }),
});

test('a task whose container kept stopping: the object it stopped on counts a failed run, the ones it never reached go back uncounted', async () => {
  const { world, row, record, finish, inUse } = await packedWorld(3, 3);
  const [execution] = world.started;
  const jobs = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!.jobs;
  await record(execution.name, jobs[0].jobId, { status: 'succeeded', at: AT });
  const summary = await finish(execution.name, 0, stoppedWith(75));
  expect(summary).toMatchObject({ succeeded: 1, failed: 0, returned: 2 });
  expect(await row(jobs[1].jobId)).toMatchObject({ status: 'queued', failedRuns: 1, lastError: expect.stringContaining('stopped on it') });
  expect(await row(jobs[2].jobId)).toMatchObject({ status: 'queued', failedRuns: 0, lastError: 'its task stopped before reaching it' });
  expect(await inUse()).toBe(0);
  // Both are back at once, each as its next round; the one it stopped on carries its failed run.
  const back = world.sqs.messages(world.queueUrl).map((m) => JSON.parse(m.body));
  expect(back.map((m) => [m.jobId, m.failedRuns]).sort()).toEqual(
    [
      [jobs[1].jobId, 1],
      [jobs[2].jobId, 0],
    ].sort(),
  );
  expect(world.sqs.counts(world.queueUrl)).toMatchObject({ visible: 2, delayed: 0 });
});

test('an object a packed task stopped on as many times as a job may end without a result is failed, with the task error', async () => {
  const { world, row, finish } = await packedWorld(2, 2);
  const [execution] = world.started;
  const jobs = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!.jobs;
  await moto.ddb.send(
    new UpdateCommand({
      TableName: world.tableName,
      Key: ledgerKey(jobs[0].jobId),
      UpdateExpression: 'SET failedRuns = :two',
      ExpressionAttributeValues: { ':two': 2 },
    }),
  );
  await finish(execution.name, 0, stoppedWith(75));
  expect(await row(jobs[0].jobId)).toMatchObject({ status: 'failed', error: 'States.TaskFailed' });
  expect(await row(jobs[1].jobId)).toMatchObject({ status: 'queued' });
});

test("a container's ending is told by its exit code, escaped or not: stopped (75, or killed: none), or refusing its environment (65)", () => {
  expect(containerStopped(stoppedWith(75))).toBe('transiently');
  expect(containerStopped(stoppedWith(65))).toBe('on-its-environment');
  // aws-local-stepfunctions leaves the nested quotes unescaped in States.JsonToString's text.
  expect(containerStopped({ error: 'States.TaskFailed', cause: '{"Error":"States.TaskFailed","Cause":"{"Containers":[{"ExitCode":65}]}"}' })).toBe(
    'on-its-environment',
  );
  expect(containerStopped({ error: 'States.TaskFailed', cause: JSON.stringify({ Cause: JSON.stringify({ Containers: [{ Name: 'worker' }] }) }) })).toBe(
    'transiently',
  );
  expect(containerStopped({ error: 'States.Timeout', cause: '{}' })).toBe('not-a-container-ending');
  expect(containerStopped({ error: 'ECS.InvalidParameterException', cause: '{"Cause":"subnet not found"}' })).toBe('not-a-container-ending');
});

test('a packed task that refused its own environment (exit 65: a deploy error) read no object: each goes back, counting the run', async () => {
  const { world, row, finish } = await packedWorld(2, 2);
  const [execution] = world.started;
  const jobs = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!.jobs;
  expect(await finish(execution.name, 0, stoppedWith(65))).toMatchObject({ failed: 0, returned: 2 });
  for (const job of jobs) expect(await row(job.jobId)).toMatchObject({ status: 'queued', failedRuns: 1, lastError: expect.stringContaining('exit 65') });
});

/** Before the janitor's first ListExecutions, `meanwhile` happens (the worker, the execution's end). */
function beforeListingExecutions(world: Awaited<ReturnType<typeof packedWorld>>['world'], meanwhile: () => Promise<void>): void {
  const send = world.sfn.send.bind(world.sfn);
  let done = false;
  world.sfn.send = async (command: { constructor: { name: string }; input: any }) => {
    if (!done && command.constructor.name === 'ListExecutionsCommand') {
      done = true;
      await meanwhile();
    }
    return send(command);
  };
}

test("the janitor reads a packed batch's record again before it settles it: ends the worker recorded after the sweep's scan stand", async () => {
  const { world, row, record } = await packedWorld(2, 2);
  const [execution] = world.started;
  const jobs = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!.jobs;
  // Between the sweep's scan and its look at the executions: the worker records both ends; the finisher then gives up
  // (LeaveToJanitor) and the execution ends SUCCEEDED.
  beforeListingExecutions(world, async () => {
    for (const job of jobs) await record(execution.name, job.jobId, { status: 'succeeded', at: AT });
    execution.status = 'SUCCEEDED';
  });
  expect(await world.janitor()).toMatchObject({ released: 2, requeued: 0, jobsSucceeded: 2, drift: 0 });
  for (const job of jobs) expect(await row(job.jobId)).toMatchObject({ status: 'succeeded' });
});

test('an aborted packed execution whose stopping worker recorded an end inside the stop grace: that object stays done', async () => {
  const { world, row, record } = await packedWorld(2, 2);
  const [execution] = world.started;
  const jobs = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!.jobs;
  const stopGraceMs = 120_000;
  execution.status = 'ABORTED';
  execution.stoppedAt = world.clock.now();
  await world.advance(stopGraceMs - 1_000);
  beforeListingExecutions(world, async () => {
    await world.clock.track(() => record(execution.name, jobs[1].jobId, { status: 'succeeded', at: AT }));
    await world.clock.sleep(2_000);
  });
  await world.janitor({ stopGraceMs, maxExecutionAttempts: 1 });
  expect(await row(jobs[1].jobId)).toMatchObject({ status: 'succeeded' });
  expect(await row(jobs[0].jobId)).toMatchObject({ status: 'failed', error: 'ExecutionABORTED' });
});

test('a packed execution that succeeded with objects still leased (its finisher gave up) counts each a failed run: a broken finisher cannot loop an object forever', async () => {
  const { world, row } = await packedWorld(2, 2);
  const [execution] = world.started;
  const jobs = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!.jobs;
  execution.status = 'SUCCEEDED';
  expect(await world.janitor()).toMatchObject({ released: 2, requeued: 2 });
  for (const job of jobs) expect(await row(job.jobId)).toMatchObject({ status: 'queued', failedRuns: 1 });
});

test('a task that exited 0 without recording an object fails that object, visibly', async () => {
  const { world, row, record, finish } = await packedWorld(2, 2);
  const [execution] = world.started;
  const jobs = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!.jobs;
  await record(execution.name, jobs[0].jobId, { status: 'succeeded', at: AT });
  await finish(execution.name, 0, { kind: 'ran', taskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/c/t' });
  expect(await row(jobs[1].jobId)).toMatchObject({ status: 'failed', error: OBJECT_NOT_RECORDED });
});

test('a task that could not start: every object back to its queue first, then its lease, and the vCPU-limit hold set', async () => {
  const { world, row, finish, inUse } = await packedWorld(3, 3);
  const [execution] = world.started;
  const jobs = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!.jobs;
  const summary = await finish(execution.name, 0, { kind: 'returned', why: 'hold', reason: '{"Cause":"limit on the number of vCPUs"}' });
  expect(summary).toMatchObject({ returned: 3 });
  for (const job of jobs) expect(await row(job.jobId)).toMatchObject({ status: 'queued', capacityReturns: 1, admissions: 1 });
  expect(await inUse()).toBe(0);
  const pool = (await moto.ddb.send(new GetCommand({ TableName: world.tableName, Key: POOL_KEY, ConsistentRead: true }))).Item!;
  expect(pool.capacityLimitAt).toEqual(expect.any(String));
  // Each object is back as its next round, given back by this execution, after the capacity delay.
  expect(world.sqs.counts(world.queueUrl)).toMatchObject({ delayed: 3, visible: 0 });
  const back = world.sqs.messages(world.queueUrl).map((m) => ({ body: JSON.parse(m.body), by: m.attributes?.returnedBy?.StringValue }));
  expect(back.map((m) => m.body.jobId).sort()).toEqual(jobs.map((j) => j.jobId).sort());
  expect(back.every((m) => m.body.sluice === 'requeue' && m.body.round === 1 && m.by === execution.name)).toBe(true);
});

test("a packed batch whose StartExecution was refused gives back one task's vCPU per task, not one per object", async () => {
  const world = await intakeWorld(moto, { budgetVcpu: 10, ratePerSecond: 19, burst: 100 });
  for (let i = 0; i < 6; i++) world.sqs.sendMessage(world.queueUrl, objectCreated(`incoming/r-${i}.csv`));
  world.failStartsWith('ThrottlingException');
  await world.dispatch({ objectsPerTask: 3 });
  const pool = await readPool(moto.ddb, world.tableName);
  // Two tasks were admitted, and exactly their 2 vCPU given back.
  expect(pool.admittedVcpu).toBe(2);
  expect(pool.releasedVcpu).toBe(2);
});

test('the janitor settles a dead packed execution: every object queued again, the counters back where they were', async () => {
  const { world, row, inUse } = await packedWorld(5, 3);
  const [execution] = world.started;
  const { jobs } = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!;
  expect(jobs).toHaveLength(5);
  execution.status = 'ABORTED';
  const summary = await world.janitor();
  expect(summary).toMatchObject({ released: 5, requeued: 5, drift: 0 });
  expect(await inUse()).toBe(0);
  for (const job of jobs) expect(await row(job.jobId)).toMatchObject({ status: 'queued' });
});

test("the janitor keeps what a dead packed execution's worker recorded: a finished object is not run again", async () => {
  const { world, row, record, inUse } = await packedWorld(3, 3);
  const [execution] = world.started;
  const { jobs } = (await readBatchRecord(moto.ddb, world.batchesTableName, execution.name))!;
  await record(execution.name, jobs[0].jobId, { status: 'succeeded', at: AT });
  await record(execution.name, jobs[1].jobId, { status: 'failed', reason: 'empty file', at: AT });
  execution.status = 'ABORTED';
  const summary = await world.janitor();
  // The bad input is the worker's verdict, not the janitor's giving up: counted among jobs failed only.
  expect(summary).toMatchObject({ released: 3, requeued: 1, failed: 0, jobsFailed: 1, jobsSucceeded: 1, drift: 0 });
  expect(await row(jobs[0].jobId)).toMatchObject({ status: 'succeeded' });
  expect(await row(jobs[1].jobId)).toMatchObject({ status: 'failed', error: OBJECT_BAD_INPUT, cause: 'empty file' });
  expect(await row(jobs[2].jobId)).toMatchObject({ status: 'queued' });
  expect(world.sqs.counts(world.queueUrl).total).toBe(1);
  expect(await inUse()).toBe(0);
});

test('one admission holds no more objects than one transaction takes', () => {
  expect(tasksPerAdmission(40, 1)).toBe(40);
  expect(tasksPerAdmission(40, 20)).toBe(4);
  expect(tasksPerAdmission(40, 50)).toBe(1);
  expect(tasksPerAdmission(40, 98)).toBe(1);
});

test('the finisher refuses a malformed call, naming every problem', () => {
  expect(() => parseFinishEvent({ execution: '', job: { jobId: 'j' }, outcome: { kind: 'ran' } })).toThrow(/execution: .*job\.pack: .*outcome\.taskArn/s);
});
