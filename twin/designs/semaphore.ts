import { INTEGRATIONS, integrationResource } from '../../modules/run-jobs/asl';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { EventBridgeRule } from '../engines/eventbridge';
import { s3Event, type Design, type World } from '../world';
import { NAIVE_RETRY, jobIdOfKey, runTaskParameters } from './common';

/**
 * The usual fix: a DynamoDB counter as a semaphore, after the AWS sample "Controlling concurrency in distributed
 * systems using AWS Step Functions". Each execution acquires `vcpu` units with one conditional update
 * (`SET inUse = inUse + :v` if `inUse <= :limitMinusV`, recording itself as owner), and on
 * ConditionalCheckFailed waits 3 s and tries again — a polling loop that costs two state transitions and one
 * DynamoDB write per waiting execution every 3 s, and grows its history toward the 25,000-event limit.
 * It releases after the task on both paths (success and Catch). A cleanup Lambda on FAILED/TIMED_OUT/ABORTED
 * executions releases a slot the execution still owns.
 */
const TABLE = 'semaphore';
const LOCK = 'sluice-semaphore';

export function semaphoreDefinition(world: World) {
  const v = String(world.taskVcpu);
  const key = { LockName: { S: LOCK } };
  return {
    Comment: 'semaphore: acquire a DynamoDB counter (Wait 3 s and retry when full), RunTask .sync, release',
    StartAt: 'Acquire',
    States: {
      Acquire: acquireState(key, v, String(world.stage.capacity.vcpuBudget - world.taskVcpu)),
      WaitForSlot: { Type: 'Wait', Seconds: 3, Next: 'Acquire' },
      RunTask: {
        Type: 'Task',
        Resource: integrationResource('aws', INTEGRATIONS.ecsRunTaskSync),
        Parameters: runTaskParameters(world),
        Retry: NAIVE_RETRY,
        ResultPath: null,
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'ReleaseAfterFailure' }],
        Next: 'Release',
      },
      Release: releaseState(key, v, { Next: 'Done' }),
      ReleaseAfterFailure: releaseState(key, v, { Next: 'Failed' }),
      Done: { Type: 'Succeed' },
      Failed: { Type: 'Fail', Error: 'TaskFailed', Cause: 'RunTask failed after its retries' },
    },
  };
}

type LockKey = { LockName: { S: string } };

/** Takes `v` units if at most `limitMinusV` are in use, recording the execution as owner; when full, waits and retries. */
function acquireState(key: LockKey, v: string, limitMinusV: string) {
  return {
    Type: 'Task',
    Resource: integrationResource('aws', INTEGRATIONS.dynamodbUpdateItem),
    Parameters: {
      TableName: TABLE,
      Key: key,
      ExpressionAttributeNames: { '#inUse': 'inUse', '#owner.$': '$$.Execution.Id' },
      ExpressionAttributeValues: { ':v': { N: v }, ':limitMinusV': { N: limitMinusV }, ':since': { 'S.$': '$$.Execution.StartTime' } },
      UpdateExpression: 'SET #inUse = #inUse + :v, #owner = :since',
      ConditionExpression: '#inUse <= :limitMinusV',
    },
    ResultPath: null,
    Catch: [{ ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], ResultPath: null, Next: 'WaitForSlot' }],
    Next: 'RunTask',
  };
}

/** Gives back `v` units the execution owns, then goes on to `next` (the success and the failure path each have one). */
function releaseState(key: LockKey, v: string, next: Record<string, unknown>) {
  return {
    Type: 'Task',
    Resource: integrationResource('aws', INTEGRATIONS.dynamodbUpdateItem),
    Parameters: {
      TableName: TABLE,
      Key: key,
      ExpressionAttributeNames: { '#inUse': 'inUse', '#owner.$': '$$.Execution.Id' },
      ExpressionAttributeValues: { ':v': { N: v } },
      UpdateExpression: 'SET #inUse = #inUse - :v REMOVE #owner',
      ConditionExpression: 'attribute_exists(#owner)',
    },
    ResultPath: null,
    Retry: [
      {
        ErrorEquals: ['DynamoDB.AmazonDynamoDBException', 'DynamoDB.ProvisionedThroughputExceededException'],
        IntervalSeconds: 1,
        MaxAttempts: 5,
        BackoffRate: 2,
      },
    ],
    ...next,
  };
}

const keyOf = (input: any): string => input.detail.object.key;
const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:111111111111:stateMachine:semaphore';

export const semaphore: Design = {
  name: 'semaphore',
  jobIdOf: jobIdOfKey,
  async setup(world) {
    await createCounter(world);
    world.sfn.createStateMachine(STATE_MACHINE_ARN, semaphoreDefinition(world));
    recordAdmitsAndReleases(world);
    registerCleanup(world);
    world.sfn.onExecutionEnd((execution) => {
      world.jobEnded(keyOf(JSON.parse(execution.input)), { error: execution.error ?? 'ExecutionFailed' });
      if (execution.status !== 'SUCCEEDED') {
        world.lambda.invokeAsync('semaphore-cleanup', { detail: { executionArn: execution.executionArn, status: execution.status, input: execution.input } });
      }
    });
    const rule = new EventBridgeRule(
      world.clock,
      world.rng('eventbridge'),
      world.recorder,
      [
        async (event) => {
          world.sfn.startExecution({ stateMachineArn: STATE_MACHINE_ARN, input: JSON.stringify(event) });
        },
      ],
      {
        duplicateRate: world.scenario.rates.duplicate,
        onDropped: (event) => world.jobEnded(keyOf(event), { error: 'EventBridge.Dropped' }),
      },
    );
    return { upload: (object) => rule.put(s3Event(object, new Date(world.clock.now()).toISOString())) };
  },
};

/** The semaphore's table, with its one counter at zero. */
async function createCounter({ ddb }: World): Promise<void> {
  await ddb.createTable({
    TableName: TABLE,
    KeySchema: [{ AttributeName: 'LockName', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'LockName', AttributeType: 'S' }],
    BillingMode: 'PAY_PER_REQUEST',
  });
  await ddb.documentClient.send(
    new UpdateCommand({ TableName: TABLE, Key: { LockName: LOCK }, UpdateExpression: 'SET inUse = :zero', ExpressionAttributeValues: { ':zero': 0 } }),
  );
}

/** `admit` when an acquire succeeds and `release` when a release does: the report's admission latency reads them. */
function recordAdmitsAndReleases(world: World): void {
  world.sfn.onTaskEnd(({ stateName, execution, error }) => {
    if (error) return;
    const jobId = keyOf(JSON.parse(execution.input));
    if (stateName === 'Acquire') world.recorder.emit('admit', { jobId });
    if (stateName === 'Release' || stateName === 'ReleaseAfterFailure') world.recorder.emit('release', { jobId, vcpu: world.taskVcpu });
  });
}

/**
 * Cleanup: an EventBridge rule on this state machine's FAILED/TIMED_OUT/ABORTED executions invokes a Lambda
 * that gives back a slot the execution still owns (the invocation is setup's onExecutionEnd).
 */
function registerCleanup(world: World): void {
  world.lambda.register({
    name: 'semaphore-cleanup',
    memoryMB: 128,
    handler: (event: any) => releaseOwnedSlot(world, event),
  });
}

/** The cleanup Lambda: releases the execution's slot if the counter still records it as owner. */
async function releaseOwnedSlot(world: World, event: any): Promise<{ released: boolean }> {
  const { documentClient } = world.ddb;
  const executionArn = event.detail.executionArn as string;
  const item = (await documentClient.send(new GetCommand({ TableName: TABLE, Key: { LockName: LOCK }, ConsistentRead: true }))).Item;
  if (!item || !(executionArn in item)) return { released: false };
  try {
    await documentClient.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { LockName: LOCK },
        ExpressionAttributeNames: { '#inUse': 'inUse', '#owner': executionArn },
        ExpressionAttributeValues: { ':v': world.taskVcpu },
        UpdateExpression: 'SET #inUse = #inUse - :v REMOVE #owner',
        ConditionExpression: 'attribute_exists(#owner)',
      }),
    );
  } catch (error) {
    if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
    return { released: false };
  }
  world.recorder.emit('release', { jobId: keyOf(JSON.parse(event.detail.input)), vcpu: world.taskVcpu, by: 'cleanup' });
  return { released: true };
}
