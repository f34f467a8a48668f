/**
 * The service integrations the state machine calls, each with the IAM statements that call needs — what aws-cdk
 * calls a task's policies. A Task state is built with its integration's statements beside it; the role's policy is
 * their union (`mergeStatements`), so a state cannot call what its role was not given, and the role holds nothing no
 * state calls.
 */
import type { PolicyStatement } from '../iam';
import { leadingKeys } from '../state-table';

/** What the statements are scoped to: the ARNs known at synth (built from names, or references Terraform resolves). */
interface IntegrationScope {
  readonly partition: string;
  readonly region: string;
  readonly accountId: string;
}

/** `ecs:runTask.sync`: RunTask on the worker's family in this cluster only, then watch (and on timeout stop) the task. */
export function ecsRunTaskSyncStatements(
  scope: IntegrationScope,
  worker: { readonly clusterArn: string; readonly clusterName: string; readonly taskDefinitionFamilyArn: string; readonly roleArns: readonly string[] },
): PolicyStatement[] {
  const { partition, region, accountId } = scope;
  const tasks = `arn:${partition}:ecs:${region}:${accountId}:task/${worker.clusterName}/*`;
  return [
    {
      Sid: 'RunWorkerTasks',
      Effect: 'Allow',
      Action: 'ecs:RunTask',
      Resource: worker.taskDefinitionFamilyArn,
      Condition: { ArnEquals: { 'ecs:cluster': worker.clusterArn } },
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
      Resource: [...worker.roleArns],
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

/**
 * `dynamodb:updateItem` and `aws-sdk:dynamodb:transactWriteItems` of Update items: UpdateItem on the table, for the
 * items whose keys match `keys` only (a transaction's Update needs the same action as a single update).
 */
export function dynamodbUpdateStatements(table: { readonly arn: string }, keys: readonly string[]): PolicyStatement[] {
  return [{ Sid: 'LedgerRowsAndCounters', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: table.arn, Condition: leadingKeys(keys) }];
}

/** `sqs:sendMessage` to one queue. */
export function sqsSendMessageStatements(queue: { readonly arn: string }): PolicyStatement[] {
  return [{ Sid: 'BackToTheQueue', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queue.arn }];
}

/** `lambda:invoke` of one function. */
export function lambdaInvokeStatements(fn: { readonly arn: string }): PolicyStatement[] {
  return [{ Sid: 'WakeTheDispatcher', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: fn.arn }];
}

/** Statements delivering the execution log: CloudWatch Logs delivery for Step Functions has no resource-level permissions. */
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
