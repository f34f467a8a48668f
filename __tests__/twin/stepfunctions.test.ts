import { VirtualClock } from '../../twin/engines/clock';
import { DynamoDb } from '../../twin/engines/dynamo';
import { PK_TABLE } from '../support/dynalite';
import { EcsEmulator } from '../../twin/engines/ecs';
import { LambdaEmulator } from '../../twin/engines/lambda';
import { mulberry32 } from '../../twin/engines/random';
import { Recorder } from '../../twin/engines/recorder';
import { SfnEmulator, taskStates, type ExecutionInfo } from '../../twin/engines/stepfunctions';

const ARN = 'arn:aws:states:eu-west-1:111111111111:stateMachine:t';

async function world(exitCode = 0, seed = 1, maxHistoryEvents?: number) {
  const clock = new VirtualClock();
  const recorder = new Recorder(clock);
  const rng = mulberry32(seed);
  const ddb = new DynamoDb(clock, recorder);
  // Each world has its own DynamoDB, so one table name serves every test.
  const table = 'state';
  await ddb.createTable({ TableName: table, ...PK_TABLE });
  const ecs = new EcsEmulator(clock, rng, recorder, {
    vcpuQuota: { FARGATE: 1, FARGATE_SPOT: 1 },
    apiBucket: { burst: 100, refillPerSecond: 40 },
    fargateRunTaskPerSecond: 20,
    launchBucket: { burst: 100, refillPerSecond: 20 },
    capacityErrorRate: 0,
    spotInterruptionRate: 0,
    startupSeconds: () => 0,
    defaultMemoryMiB: 2048,
    sigtermExitSeconds: 1,
    defaultVcpu: 1,
    behaviour: () => ({ durationSeconds: 100, exitCode }),
  });
  const lambda = new LambdaEmulator(clock, recorder);
  const sfn = new SfnEmulator(
    clock,
    rng,
    recorder,
    { ecs, dynamodb: ddb, lambda },
    { startExecutionBucket: { burst: 2, refillPerSecond: 1 }, maxHistoryEvents },
  );
  const ended: ExecutionInfo[] = [];
  sfn.onExecutionEnd((e) => ended.push(e));
  return { clock, recorder, sfn, ddb, table, ended, lambda };
}

const runTaskState = (next: Record<string, unknown>) => ({
  Type: 'Task',
  Resource: 'arn:aws:states:::ecs:runTask.sync',
  Parameters: {
    Cluster: 'c',
    TaskDefinition: 'td',
    Overrides: { ContainerOverrides: [{ Name: 'worker', Environment: [{ Name: 'JOB_ID', 'Value.$': '$.jobId' }] }] },
  },
  ...next,
});

describe('Step Functions runner on the virtual clock', () => {
  it('finds Task states nested in Map and Parallel states', () => {
    const found = taskStates({
      States: {
        A: { Type: 'Task', Resource: 'x' },
        M: {
          Type: 'Map',
          ItemProcessor: {
            States: { B: { Type: 'Task', Resource: 'y' }, P: { Type: 'Parallel', Branches: [{ States: { C: { Type: 'Task', Resource: 'z' } } }] } },
          },
        },
      },
    });
    expect(found.map((s) => s.name)).toEqual(['A', 'B', 'C']);
  });

  it('refuses a state machine with a Task whose Resource it does not run, naming the state and the Resource', async () => {
    const w = await world();
    expect(() =>
      w.sfn.createStateMachine(ARN, { StartAt: 'Scan', States: { Scan: { Type: 'Task', Resource: 'arn:aws:states:::dynamodb:scan', End: true } } }),
    ).toThrow(/^state Scan: the twin does not run Task resource arn:aws:states:::dynamodb:scan \(it runs arn:aws:states:::ecs:runTask.sync, /);
  });

  it('fails an execution over the history limit with States.Runtime, as AWS does, and counts its transitions', async () => {
    const w = await world(0, 1, 30);
    w.sfn.createStateMachine(ARN, {
      StartAt: 'Tick',
      // A loop that would end only if its Choice ever saw `done`.
      States: {
        Tick: { Type: 'Wait', Seconds: 1, Next: 'Done?' },
        'Done?': { Type: 'Choice', Choices: [{ Variable: '$.done', IsPresent: true, Next: 'End' }], Default: 'Tick' },
        End: { Type: 'Succeed' },
      },
    });
    w.sfn.startExecution({ stateMachineArn: ARN, name: 'forever', input: '{}' });
    await w.clock.run();
    expect(w.ended.map((e) => [e.name, e.status, e.error, e.cause])).toEqual([
      ['forever', 'FAILED', 'States.Runtime', 'The execution reached the maximum number of history events (30).'],
    ]);
    // Two history events for the execution, two per state entered: the 15th state takes it over 30.
    expect(w.ended[0].transitions).toBe(15);
  });

  it('retries the second vCPU-limited RunTask on virtual time (3 s, then 6 s) and runs it when the first task ends', async () => {
    const w = await world();
    w.sfn.createStateMachine(ARN, {
      StartAt: 'Run',
      States: {
        Run: runTaskState({ Retry: [{ ErrorEquals: ['ECS.AmazonECSException'], IntervalSeconds: 3, MaxAttempts: 10, BackoffRate: 2 }], End: true }),
      },
    });
    w.sfn.startExecution({ stateMachineArn: ARN, name: 'a', input: '{"jobId":"a"}' });
    w.sfn.startExecution({ stateMachineArn: ARN, name: 'b', input: '{"jobId":"b"}' });
    const started = Date.now();
    await w.clock.run();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(w.ended.map((e) => [e.name, e.status])).toEqual([
      ['a', 'SUCCEEDED'],
      ['b', 'SUCCEEDED'],
    ]);
    const b = w.recorder.events.filter((e) => e.jobId === 'b' && e.type === 'runTask').map((e) => e.t);
    // 0, 3, 9, 21, 45, 93, 189 s: the 7th attempt (189 s) comes after the first task ended at 100 s.
    expect(b).toEqual([0, 3, 9, 21, 45, 93, 189]);
    expect(w.ended[1].transitions).toBe(1 + 6);
  });

  it('honours JitterStrategy FULL and MaxDelaySeconds with the seeded PRNG', async () => {
    const times = async (seed: number) => {
      const w = await world(0, seed);
      w.sfn.createStateMachine(ARN, {
        StartAt: 'Run',
        States: {
          Run: runTaskState({
            Retry: [
              { ErrorEquals: ['ECS.AmazonECSException'], IntervalSeconds: 10, MaxAttempts: 20, BackoffRate: 2, MaxDelaySeconds: 30, JitterStrategy: 'FULL' },
            ],
            End: true,
          }),
        },
      });
      w.sfn.startExecution({ stateMachineArn: ARN, name: 'a', input: '{"jobId":"a"}' });
      w.sfn.startExecution({ stateMachineArn: ARN, name: 'b', input: '{"jobId":"b"}' });
      await w.clock.run();
      return w.recorder.events.filter((e) => e.jobId === 'b' && e.type === 'runTask').map((e) => e.t);
    };
    const first = await times(5);
    const gaps = first.slice(1).map((t, i) => t - first[i]);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(30);
    expect(new Set(gaps.map((g) => Math.round(g))).size).toBeGreaterThan(2);
    expect(await times(5)).toEqual(first);
  });

  it('maps ConditionalCheckFailed to DynamoDB.ConditionalCheckFailedException and exit codes to States.TaskFailed', async () => {
    const w = await world(65);
    w.sfn.createStateMachine(ARN, {
      StartAt: 'Acquire',
      States: {
        Acquire: {
          Type: 'Task',
          Resource: 'arn:aws:states:::dynamodb:updateItem',
          Parameters: {
            TableName: w.table,
            Key: { pk: { S: 'pool' } },
            UpdateExpression: 'SET inUse = if_not_exists(inUse, :zero) + :one',
            ConditionExpression: 'attribute_not_exists(inUse) OR inUse < :one',
            ExpressionAttributeValues: { ':one': { N: '1' }, ':zero': { N: '0' } },
          },
          ResultPath: null,
          Catch: [{ ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], ResultPath: '$.error', Next: 'Full' }],
          Next: 'Wait',
        },
        Wait: { Type: 'Wait', Seconds: 3, Next: 'Run' },
        Run: runTaskState({ Catch: [{ ErrorEquals: ['States.TaskFailed'], ResultPath: '$.error', Next: 'Failed' }], End: true }),
        Full: { Type: 'Fail', Error: 'Full' },
        Failed: { Type: 'Fail', Error: 'TaskFailed' },
      },
    });
    w.sfn.startExecution({ stateMachineArn: ARN, name: 'one', input: '{"jobId":"one"}' });
    w.sfn.startExecution({ stateMachineArn: ARN, name: 'two', input: '{"jobId":"two"}' });
    await w.clock.run();
    const byName = Object.fromEntries(w.ended.map((e) => [e.name, e]));
    expect(byName.two).toMatchObject({ status: 'FAILED', error: 'Full' });
    expect(byName.one).toMatchObject({ status: 'FAILED', error: 'TaskFailed' });
    expect(byName.one.stopDate! - byName.one.startDate).toBe(103_000);
  });

  it('keeps execution names idempotent for the same input and rejects reuse with another', async () => {
    const w = await world();
    w.sfn.createStateMachine(ARN, { StartAt: 'W', States: { W: { Type: 'Wait', Seconds: 10, End: true } } });
    const first = w.sfn.startExecution({ stateMachineArn: ARN, name: 'n', input: '{"a":1}' });
    await w.clock.run({ untilMs: 1500 });
    expect(w.sfn.startExecution({ stateMachineArn: ARN, name: 'n', input: '{"a":1}' }).executionArn).toBe(first.executionArn);
    expect(() => w.sfn.startExecution({ stateMachineArn: ARN, name: 'n', input: '{"a":2}' })).toThrow(
      expect.objectContaining({ name: 'ExecutionAlreadyExists' }),
    );
    // Every call spends a token of the StartExecution bucket (burst 2 here): the third call in the same instant is throttled.
    expect(() => w.sfn.startExecution({ stateMachineArn: ARN, name: 'm', input: '{}' })).toThrow(expect.objectContaining({ name: 'ThrottlingException' }));
    await w.clock.run();
    expect(() => w.sfn.startExecution({ stateMachineArn: ARN, name: 'n', input: '{"a":1}' })).toThrow(
      expect.objectContaining({ name: 'ExecutionAlreadyExists' }),
    );
  });
});
