import {
  dynamodbUpdateItem,
  ecsRunTaskSync,
  inputKey,
  lambdaInvoke,
  lambdaInvokeAsync,
  literalKey,
  mergeStatements,
  prefixedKey,
  sqsSendMessage,
  transactWrite,
  type WrittenTable,
} from '../../modules/run-jobs/integrations';

const where = { partition: 'aws', region: 'eu-west-1', accountId: '111111111111' };
const tableArn = 'arn:aws:dynamodb:eu-west-1:111111111111:table/t';
const table: WrittenTable = { name: 't', arn: tableArn, statementIds: { Put: 'Puts', Update: 'Updates', ConditionCheck: 'Checks' } };
const keys = (statement: { Condition?: Record<string, Record<string, unknown>> }) => statement.Condition?.['ForAllValues:StringLike']['dynamodb:LeadingKeys'];

test('a key says which leading keys IAM must allow: its value, its prefix, or what its writer declares', () => {
  expect(literalKey('pk', 'POOL')).toEqual({ Key: { pk: { S: 'POOL' } }, leadingKey: 'POOL' });
  expect(prefixedKey('pk', 'JOB#', '$.job.jobId')).toEqual({ Key: { pk: { 'S.$': "States.Format('JOB#{}', $.job.jobId)" } }, leadingKey: 'JOB#*' });
  expect(inputKey('pk', '$.job.shard', 'RELEASED#*')).toEqual({ Key: { pk: { 'S.$': '$.job.shard' } }, leadingKey: 'RELEASED#*' });
});

test('a transaction’s statements follow from its items: each action on its table, for the keys its items write', () => {
  const step = transactWrite(
    where,
    'Write',
    {
      clientRequestToken: { ClientRequestToken: 'token' },
      items: [
        { action: 'Update', table, key: prefixedKey('pk', 'JOB#', '$.id'), write: { UpdateExpression: 'SET a = :a' } },
        { action: 'Put', table, key: literalKey('pk', 'POOL'), write: { Item: { n: { N: '1' } } } },
        { action: 'Update', table, key: inputKey('pk', '$.shard', 'RELEASED#*'), write: { UpdateExpression: 'ADD n :n' } },
        { action: 'ConditionCheck', table, key: literalKey('pk', 'LOCK'), write: { ConditionExpression: 'attribute_exists(pk)' } },
      ],
    },
    { ResultPath: null },
  );
  expect(step.state).toEqual({
    Type: 'Task',
    Resource: 'arn:aws:states:::aws-sdk:dynamodb:transactWriteItems',
    Parameters: {
      ClientRequestToken: 'token',
      TransactItems: [
        { Update: { TableName: 't', Key: { pk: { 'S.$': "States.Format('JOB#{}', $.id)" } }, UpdateExpression: 'SET a = :a' } },
        { Put: { TableName: 't', Key: { pk: { S: 'POOL' } }, Item: { n: { N: '1' } } } },
        { Update: { TableName: 't', Key: { pk: { 'S.$': '$.shard' } }, UpdateExpression: 'ADD n :n' } },
        { ConditionCheck: { TableName: 't', Key: { pk: { S: 'LOCK' } }, ConditionExpression: 'attribute_exists(pk)' } },
      ],
    },
    ResultPath: null,
    End: true,
  });
  expect(step.statements.map((s) => [s.Sid, s.Action, s.Resource, keys(s)])).toEqual([
    ['Updates', 'dynamodb:UpdateItem', tableArn, ['JOB#*', 'RELEASED#*']],
    ['Puts', 'dynamodb:PutItem', tableArn, ['POOL']],
    ['Checks', 'dynamodb:ConditionCheckItem', tableArn, ['LOCK']],
  ]);
});

test('a write whose action the table has not named a statement for is refused', () => {
  const item = { action: 'Delete' as const, table, key: literalKey('pk', 'POOL'), write: {} };
  expect(() => transactWrite(where, 'Write', { items: [item] }, {})).toThrow(
    "a state writes Delete items to t: name its statement in the table's statementIds",
  );
});

test('an update of one item needs UpdateItem on its table, for its key only', () => {
  const step = dynamodbUpdateItem(
    where,
    'Record',
    { table, key: prefixedKey('pk', 'JOB#', '$.id'), write: { UpdateExpression: 'SET a = :a' } },
    { Comment: 'c', next: 'Next' },
  );
  expect(Object.keys(step.state)).toEqual(['Type', 'Comment', 'Resource', 'Parameters', 'Next']);
  expect(step.state.Resource).toBe('arn:aws:states:::dynamodb:updateItem');
  expect(step.statements).toEqual([
    {
      Sid: 'Updates',
      Effect: 'Allow',
      Action: 'dynamodb:UpdateItem',
      Resource: tableArn,
      Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['JOB#*'] } },
    },
  ]);
});

test('RunTask.sync names the cluster and task definition it is allowed on, passes the worker roles only and watches through the managed rule', () => {
  const target = {
    clusterArn: 'arn:aws:ecs:eu-west-1:111111111111:cluster/c',
    clusterName: 'c',
    taskDefinition: { arn: 'arn:aws:ecs:eu-west-1:111111111111:task-definition/w:3', familyArn: 'arn:aws:ecs:eu-west-1:111111111111:task-definition/w:*' },
    roleArns: ['arn:aws:iam::111111111111:role/task', 'arn:aws:iam::111111111111:role/exec'],
  };
  const step = ecsRunTaskSync(where, 'Run', { target, parameters: { StartedBy: 'me' } }, { Comment: 'c', TimeoutSeconds: 60 });
  expect(step.state).toEqual({
    Type: 'Task',
    Comment: 'c',
    Resource: 'arn:aws:states:::ecs:runTask.sync',
    Parameters: { Cluster: target.clusterArn, TaskDefinition: target.taskDefinition.arn, StartedBy: 'me' },
    TimeoutSeconds: 60,
    End: true,
  });
  const bySid = Object.fromEntries(step.statements.map((s) => [s.Sid, s]));
  expect(bySid.RunWorkerTasks).toMatchObject({
    Action: 'ecs:RunTask',
    Resource: target.taskDefinition.familyArn,
    Condition: { ArnEquals: { 'ecs:cluster': target.clusterArn } },
  });
  expect(bySid.PassOnlyTheWorkerRoles).toMatchObject({ Action: 'iam:PassRole', Resource: target.roleArns });
  expect(bySid.WatchAndStopWorkerTasks.Resource).toBe('arn:aws:ecs:eu-west-1:111111111111:task/c/*');
  expect(bySid.SyncRunTaskManagedRule.Resource).toBe('arn:aws:events:eu-west-1:111111111111:rule/StepFunctionsGetEventsForECSTaskRule');

  // A task definition the input names: the ARN read from the path, RunTask on every family it may be of.
  const familyArns = [target.taskDefinition.familyArn, 'arn:aws:ecs:eu-west-1:111111111111:task-definition/w-bulk:*'];
  const routed = { ...target, taskDefinition: { arnPath: '$.job.taskDefinitionArn', familyArns } };
  const named = ecsRunTaskSync(where, 'Run', { target: routed, parameters: { StartedBy: 'me' } }, {});
  expect(named.state.Parameters).toEqual({ Cluster: target.clusterArn, 'TaskDefinition.$': '$.job.taskDefinitionArn', StartedBy: 'me' });
  expect(named.statements.find((s) => s.Sid === 'RunWorkerTasks')).toMatchObject({ Resource: familyArns, Condition: bySid.RunWorkerTasks.Condition });
});

test('a message to a queue needs SendMessage on it; an asynchronous invocation, InvokeFunction on the function', () => {
  const queue = { url: 'https://sqs.eu-west-1.amazonaws.com/111111111111/q', arn: 'arn:aws:sqs:eu-west-1:111111111111:q', statementId: 'ToQ' };
  const send = sqsSendMessage(where, 'Send', { queue, message: { MessageBody: { a: 1 } } }, {});
  expect(send.state.Parameters).toEqual({ QueueUrl: queue.url, MessageBody: { a: 1 } });
  expect(send.statements).toEqual([{ Sid: 'ToQ', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queue.arn }]);
  // A queue the input names: the URL read from the path, SendMessage on every queue it may be.
  const routes = { urlPath: '$.job.intakeQueueUrl', arns: [queue.arn, `${queue.arn}-bulk`], statementId: 'ToQ' };
  const sendToRoute = sqsSendMessage(where, 'Send', { queue: routes, message: { MessageBody: { a: 1 } } }, {});
  expect(sendToRoute.state.Parameters).toEqual({ 'QueueUrl.$': '$.job.intakeQueueUrl', MessageBody: { a: 1 } });
  expect(sendToRoute.statements).toEqual([{ Sid: 'ToQ', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: routes.arns }]);

  const fn = { arn: 'arn:aws:lambda:eu-west-1:111111111111:function:f', statementId: 'Wake' };
  const invoke = lambdaInvokeAsync(where, 'Wake', { fn, payload: { reason: 'r' } }, {});
  expect(invoke.state.Parameters).toEqual({ FunctionName: fn.arn, InvocationType: 'Event', Payload: { reason: 'r' } });
  expect(invoke.statements).toEqual([{ Sid: 'Wake', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: fn.arn }]);
  // The same call waiting for the function's answer: the same statement.
  const waited = lambdaInvoke(where, 'Finish', { fn, payload: { kind: 'ran' } }, { ResultPath: null, next: 'Next' });
  expect(waited.state).toEqual({
    Type: 'Task',
    Resource: 'arn:aws:states:::lambda:invoke',
    Parameters: { FunctionName: fn.arn, InvocationType: 'RequestResponse', Payload: { kind: 'ran' } },
    ResultPath: null,
    Next: 'Next',
  });
  expect(waited.statements).toEqual(invoke.statements);
});

test('statements of one Sid are one statement, their keys united; two different statements under one Sid are refused', () => {
  const update = (key: string) => dynamodbUpdateItem(where, 'U', { table, key: literalKey('pk', key), write: {} }, {}).statements[0];
  expect(mergeStatements([update('A'), update('B'), update('A')]).map(keys)).toEqual([['A', 'B']]);
  const other = { ...update('A'), Resource: 'arn:aws:dynamodb:eu-west-1:111111111111:table/other' };
  expect(() => mergeStatements([update('A'), other])).toThrow('two different IAM statements share the Sid Updates');
});
