/**
 * The service integrations the state machine calls. Each builder takes what its call touches (the cluster and task
 * definition, the table and each item's key, the queue, the function) and returns the Task state together with the IAM
 * statements that call needs, both derived from the same parameters — as aws-cdk's stepfunctions-tasks do. The role's
 * policy is the union of what the states return (`mergeStatements`): a state cannot call what its role was not given,
 * and the role holds nothing no state calls.
 */
import type { PolicyStatement } from '../iam';
import { leadingKeys } from '../state-table';
import { INTEGRATIONS, integrationResource, task, type Step, type TaskState } from './asl';

/** Where the calls are made: what the ARNs built from names need. */
export interface AwsPlace {
  readonly partition: string;
  readonly region: string;
  readonly accountId: string;
}

type Payload = Readonly<Record<string, unknown>>;

/** A Task state's fields the builder does not write itself (it writes Resource and Parameters). */
type TaskFields = Omit<TaskState, 'Type' | 'Resource' | 'Parameters' | 'Next' | 'End'> & { readonly next?: string };

/** The Task state: its Comment first, then the call (Resource, Parameters), then the rest in the order given. */
function integrationTask(
  name: string,
  call: { resource: string; parameters: Payload },
  fields: TaskFields,
  statements: readonly PolicyStatement[],
): Step<TaskState> {
  const { Comment, ...rest } = fields;
  return task(name, { ...(Comment !== undefined ? { Comment } : {}), Resource: call.resource, Parameters: { ...call.parameters }, ...rest }, statements);
}

/**
 * The task definition RunTask names: one (`arn`), or the one the input names at `arnPath`, a revision of one of
 * `familyArns`. RunTask is allowed on the family (or families), any revision.
 */
export type RunTaskDefinition = { readonly arn: string; readonly familyArn: string } | { readonly arnPath: string; readonly familyArns: readonly string[] };

/** The worker task RunTask starts: what the call names and what the statements are scoped to. */
export interface EcsTaskTarget {
  readonly clusterArn: string;
  readonly clusterName: string;
  readonly taskDefinition: RunTaskDefinition;
  /** The task and execution roles: the only roles RunTask may pass. */
  readonly roleArns: readonly string[];
}

/**
 * `ecs:runTask.sync`: RunTask on the family in this cluster only, then watch (and on timeout stop) the task.
 * https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html
 * IAM: https://docs.aws.amazon.com/step-functions/latest/dg/ecs-iam.html
 */
export function ecsRunTaskSync(where: AwsPlace, name: string, call: { target: EcsTaskTarget; parameters: Payload }, fields: TaskFields): Step<TaskState> {
  const { target } = call;
  const { taskDefinition } = target;
  const named = 'arn' in taskDefinition ? { TaskDefinition: taskDefinition.arn } : { 'TaskDefinition.$': taskDefinition.arnPath };
  return integrationTask(
    name,
    {
      resource: integrationResource(where.partition, INTEGRATIONS.ecsRunTaskSync),
      parameters: { Cluster: target.clusterArn, ...named, ...call.parameters },
    },
    fields,
    ecsRunTaskSyncStatements(where, target),
  );
}

function ecsRunTaskSyncStatements(where: AwsPlace, target: EcsTaskTarget): PolicyStatement[] {
  const { partition, region, accountId } = where;
  const tasks = `arn:${partition}:ecs:${region}:${accountId}:task/${target.clusterName}/*`;
  const { taskDefinition } = target;
  return [
    {
      Sid: 'RunWorkerTasks',
      Effect: 'Allow',
      Action: 'ecs:RunTask',
      Resource: 'familyArn' in taskDefinition ? taskDefinition.familyArn : [...taskDefinition.familyArns],
      Condition: { ArnEquals: { 'ecs:cluster': target.clusterArn } },
    },
    // Tags on RunTask (the job id, propagated tags) need TagResource, for that call only.
    {
      Sid: 'TagWorkerTasksAtLaunch',
      Effect: 'Allow',
      Action: 'ecs:TagResource',
      Resource: tasks,
      Condition: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
    },
    { Sid: 'WatchAndStopWorkerTasks', Effect: 'Allow', Action: ['ecs:DescribeTasks', 'ecs:StopTask'], Resource: tasks },
    {
      Sid: 'PassOnlyTheWorkerRoles',
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: [...target.roleArns],
      Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    },
    {
      // How .sync learns that a task stopped: Step Functions' managed rule.
      Sid: 'SyncRunTaskManagedRule',
      Effect: 'Allow',
      Action: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
      Resource: `arn:${partition}:events:${region}:${accountId}:rule/StepFunctionsGetEventsForECSTaskRule`,
    },
  ];
}

/** The write actions of a DynamoDB transaction, and the IAM action each is allowed by (transaction-apis-iam). */
const IAM_ACTION_OF_WRITE = {
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  ConditionCheck: 'dynamodb:ConditionCheckItem',
} as const;

type WriteAction = keyof typeof IAM_ACTION_OF_WRITE;

/** A table the states write. Its policy holds one statement per write action, named here, the keys united under it. */
export interface WrittenTable {
  readonly name: string;
  readonly arn: string;
  readonly statementIds: Partial<Record<WriteAction, string>>;
}

/** An item's key as a state writes it (the Key parameter), and the `dynamodb:LeadingKeys` pattern (StringLike) every value it takes matches. */
export interface ItemKey {
  readonly Key: Payload;
  readonly leadingKey: string;
}

/** A key written as it is: IAM allows that value. */
export function literalKey(attribute: string, value: string): ItemKey {
  return { Key: { [attribute]: { S: value } }, leadingKey: value };
}

/** A key made of a prefix and a value of the input (States.Format): IAM allows the prefix. */
export function prefixedKey(attribute: string, prefix: string, path: string): ItemKey {
  return { Key: { [attribute]: { 'S.$': `States.Format('${prefix}{}', ${path})` } }, leadingKey: `${prefix}*` };
}

/** A key read from the input as it is: what it can be is known to its writer only, who says so in `leadingKey`. */
export function inputKey(attribute: string, path: string, leadingKey: string): ItemKey {
  return { Key: { [attribute]: { 'S.$': path } }, leadingKey };
}

/** One write of a transaction: what it does, to which table and item; `write` is the rest of it as the API takes it. */
export interface TransactItem {
  readonly action: WriteAction;
  readonly table: WrittenTable;
  readonly key: ItemKey;
  readonly write: Payload;
}

/** The statement an item's write needs: its action on its table, for its key only. */
function writeStatement(item: Omit<TransactItem, 'write'>): PolicyStatement {
  const { action, table, key } = item;
  const sid = table.statementIds[action];
  if (sid === undefined) throw new Error(`a state writes ${action} items to ${table.name}: name its statement in the table's statementIds`);
  return { Sid: sid, Effect: 'Allow', Action: IAM_ACTION_OF_WRITE[action], Resource: table.arn, Condition: leadingKeys([key.leadingKey]) };
}

/**
 * `aws-sdk:dynamodb:transactWriteItems`: the items in one transaction; each item's action on its table, for its key.
 * https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
 * IAM: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
 */
export function transactWrite(
  where: AwsPlace,
  name: string,
  call: { items: readonly TransactItem[]; clientRequestToken?: Payload },
  fields: TaskFields,
): Step<TaskState> {
  const TransactItems = call.items.map(({ action, table, key, write }) => ({ [action]: { TableName: table.name, Key: key.Key, ...write } }));
  return integrationTask(
    name,
    { resource: integrationResource(where.partition, INTEGRATIONS.dynamodbTransactWriteItems), parameters: { ...call.clientRequestToken, TransactItems } },
    fields,
    mergeStatements(call.items.map(writeStatement)),
  );
}

/**
 * `dynamodb:updateItem`: one item's update; UpdateItem on its table, for its key.
 * https://docs.aws.amazon.com/step-functions/latest/dg/connect-ddb.html
 * IAM: https://docs.aws.amazon.com/step-functions/latest/dg/dynamo-iam.html
 */
export function dynamodbUpdateItem(where: AwsPlace, name: string, item: Omit<TransactItem, 'action'>, fields: TaskFields): Step<TaskState> {
  return integrationTask(
    name,
    {
      resource: integrationResource(where.partition, INTEGRATIONS.dynamodbUpdateItem),
      parameters: { TableName: item.table.name, Key: item.key.Key, ...item.write },
    },
    fields,
    [writeStatement({ ...item, action: 'Update' })],
  );
}

/** A queue or function a state calls, and the Sid of the one statement that allows it. */
interface Called {
  readonly arn: string;
  readonly statementId: string;
}

/**
 * A queue a state sends to: one queue (its URL), or the one the input names at `urlPath`, which is one of `arns`.
 */
export type SentTo = (Called & { readonly url: string }) | { readonly urlPath: string; readonly arns: readonly string[]; readonly statementId: string };

/**
 * `sqs:sendMessage` to a queue; SendMessage on it (on each it may be).
 * https://docs.aws.amazon.com/step-functions/latest/dg/connect-sqs.html
 * IAM: https://docs.aws.amazon.com/step-functions/latest/dg/sqs-iam.html
 */
export function sqsSendMessage(where: AwsPlace, name: string, call: { queue: SentTo; message: Payload }, fields: TaskFields): Step<TaskState> {
  const { queue } = call;
  const [queueUrl, resource] = 'url' in queue ? [{ QueueUrl: queue.url }, queue.arn] : [{ 'QueueUrl.$': queue.urlPath }, [...queue.arns]];
  return integrationTask(
    name,
    { resource: integrationResource(where.partition, INTEGRATIONS.sqsSendMessage), parameters: { ...queueUrl, ...call.message } },
    fields,
    [{ Sid: queue.statementId, Effect: 'Allow', Action: 'sqs:SendMessage', Resource: resource }],
  );
}

/**
 * `lambda:invoke` of one function, asynchronously (InvocationType Event); InvokeFunction on it.
 * https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html
 * IAM: https://docs.aws.amazon.com/step-functions/latest/dg/lambda-iam.html
 */
export function lambdaInvokeAsync(where: AwsPlace, name: string, call: { fn: Called; payload: Payload }, fields: TaskFields): Step<TaskState> {
  return lambdaInvokeAs('Event', where, name, call, fields);
}

/**
 * `lambda:invoke` of one function, waiting for its answer (InvocationType RequestResponse): the function's error is
 * the state's; InvokeFunction on it. Docs as lambdaInvokeAsync's.
 */
export function lambdaInvoke(where: AwsPlace, name: string, call: { fn: Called; payload: Payload }, fields: TaskFields): Step<TaskState> {
  return lambdaInvokeAs('RequestResponse', where, name, call, fields);
}

function lambdaInvokeAs(
  invocationType: 'Event' | 'RequestResponse',
  where: AwsPlace,
  name: string,
  call: { fn: Called; payload: Payload },
  fields: TaskFields,
): Step<TaskState> {
  const { fn } = call;
  return integrationTask(
    name,
    {
      resource: integrationResource(where.partition, INTEGRATIONS.lambdaInvoke),
      parameters: { FunctionName: fn.arn, InvocationType: invocationType, Payload: call.payload },
    },
    fields,
    [{ Sid: fn.statementId, Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: fn.arn }],
  );
}

/**
 * Statements delivering the execution log: CloudWatch Logs delivery for Step Functions has no resource-level permissions.
 * https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html
 */
export function executionLogStatements(): PolicyStatement[] {
  return [
    {
      Sid: 'DeliverExecutionLogs',
      Effect: 'Allow',
      Action: [
        'logs:CreateLogDelivery',
        'logs:GetLogDelivery',
        'logs:UpdateLogDelivery',
        'logs:DeleteLogDelivery',
        'logs:ListLogDeliveries',
        'logs:PutResourcePolicy',
        'logs:DescribeResourcePolicies',
        'logs:DescribeLogGroups',
      ],
      Resource: '*',
    },
  ];
}

/**
 * One statement per Sid, in the order first met: the states' statements repeat (each RunTask state brings the same
 * five); statements of one Sid differ only in the DynamoDB keys they allow, which are united. Anything else that
 * differs under one Sid is a mistake, refused.
 */
export function mergeStatements(statements: readonly PolicyStatement[]): PolicyStatement[] {
  const bySid = new Map<string, PolicyStatement>();
  for (const statement of statements) {
    const sid = statement.Sid ?? JSON.stringify(statement);
    const seen = bySid.get(sid);
    if (!seen) {
      bySid.set(sid, statement);
      continue;
    }
    const keysOf = (s: PolicyStatement) => (s.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'] as readonly string[] | undefined) ?? [];
    const withoutKeys = (s: PolicyStatement) => JSON.stringify({ ...s, Condition: keysOf(s).length > 0 ? undefined : s.Condition });
    if (withoutKeys(seen) !== withoutKeys(statement)) throw new Error(`two different IAM statements share the Sid ${sid}`);
    if (keysOf(seen).length > 0) bySid.set(sid, { ...seen, Condition: leadingKeys([...new Set([...keysOf(seen), ...keysOf(statement)])]) });
  }
  return [...bySid.values()];
}
