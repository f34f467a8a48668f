import { releasedShardKey } from '../../functions/limiter';
import type { PolicyDocument, PolicyStatement } from '../../modules/iam';
import { eachState, integrationResource, INTEGRATIONS, type Integration, type StateMachineDefinition, type TaskState } from '../../modules/run-jobs/asl';
import { fakeAttribute } from '../../twin/synthesized-stage';
import { decide, type SimulatedRequest } from '../support/iam';
import { STAGES, resolveReferences, resourceNamed, resourcesOf, synthStage } from '../support/synth';
import { routedDevConfig } from '../support/routed-stage';
import { packedDevConfig, packedRoutedDevConfig } from '../support/packed-stage';
import { routeQueueName } from '../../environments/names';
import { dispatcherSettingsFromEnv } from '../../functions/environment';
import type { TerraformJson } from '../../synth/output';

/**
 * Generic: the calls each Task state of the synthesized state machine makes, derived from its Resource and
 * Parameters (not from the code that wrote its policy), must each be allowed by the role's policy — and every
 * statement of the policy must be needed by one of them, apart from log delivery (the service's, no state's).
 */

const JOB_ID = '0123456789abcdef0123456789abcdef';
/** A job as the Map hands it to its states, for the key paths in Parameters. */
const SAMPLE_INPUT = { job: { jobId: JOB_ID, releaseShard: releasedShardKey(JOB_ID).pk } };

function valueAt(path: string): string {
  const value = path
    .replace(/^\$\./, '')
    .split('.')
    .reduce<unknown>((v, part) => (v as Record<string, unknown>)?.[part], SAMPLE_INPUT);
  if (typeof value !== 'string') throw new Error(`no sample value for ${path}: extend SAMPLE_INPUT`);
  return value;
}

/** A DynamoDB key attribute as the state writes it: a literal, a path, or States.Format of one path. */
function keyValue(attribute: Record<string, string>): string {
  if (attribute.S !== undefined) return attribute.S;
  const expression = attribute['S.$'];
  const format = /^States\.Format\('([^']*)', (\$[.\w]+)\)$/.exec(expression);
  if (format) return format[1].replace('{}', valueAt(format[2]));
  return valueAt(expression);
}

/**
 * Where the calls go: the account, the roles RunTask passes, and the queues and task definitions a job may name (its
 * route's, on a stage with routes).
 */
type Place = { region: string; account: string; passedRoles: string[]; routeQueueUrls: string[]; routeTaskDefinitionArns: string[] };
type Requests = (state: TaskState, place: Place) => SimulatedRequest[];

/** A Task's Resource in the stages' partition. */
const resource = (integration: Integration) => integrationResource('aws', integration);

/** Per integration (keyed by the Task's Resource): the IAM requests a call makes, per the integration's docs. */
const INTEGRATION_REQUESTS: Record<string, Requests> = {
  [resource(INTEGRATIONS.ecsRunTaskSync)]: (state, { region, account, passedRoles, routeTaskDefinitionArns }) => {
    const parameters = state.Parameters as { Cluster: string; TaskDefinition?: string };
    const task = `arn:aws:ecs:${region}:${account}:task/${parameters.Cluster.split('/').pop()}/0123456789abcdef`;
    // A task definition the job names (its route's) may be any route's.
    const definitions = parameters.TaskDefinition !== undefined ? [parameters.TaskDefinition] : routeTaskDefinitionArns;
    if (definitions.length === 0) throw new Error(`no task definition to run in ${JSON.stringify(parameters)}`);
    return <SimulatedRequest[]>[
      ...definitions.map((definition) => ({ action: 'ecs:RunTask', resource: definition, context: { 'ecs:cluster': parameters.Cluster } })),
      { action: 'ecs:TagResource', resource: task, context: { 'ecs:CreateAction': 'RunTask' } },
      { action: 'ecs:DescribeTasks', resource: task },
      { action: 'ecs:StopTask', resource: task },
      ...passedRoles.map((role) => ({ action: 'iam:PassRole', resource: role, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } })),
      ...['events:PutTargets', 'events:PutRule', 'events:DescribeRule'].map((action) => ({
        action,
        resource: `arn:aws:events:${region}:${account}:rule/StepFunctionsGetEventsForECSTaskRule`,
      })),
    ];
  },
  [resource(INTEGRATIONS.dynamodbTransactWriteItems)]: (state, { region, account }) =>
    (state.Parameters as { TransactItems: Array<Record<string, { TableName: string; Key: { pk: Record<string, string> } }>> }).TransactItems.map((item) => {
      const [[kind, write]] = Object.entries(item);
      const action = { Update: 'dynamodb:UpdateItem', Put: 'dynamodb:PutItem', Delete: 'dynamodb:DeleteItem', ConditionCheck: 'dynamodb:ConditionCheckItem' }[
        kind
      ]!;
      return {
        action,
        resource: `arn:aws:dynamodb:${region}:${account}:table/${write.TableName}`,
        context: { 'dynamodb:LeadingKeys': [keyValue(write.Key.pk)] },
      };
    }),
  [resource(INTEGRATIONS.dynamodbUpdateItem)]: (state, { region, account }) => {
    const write = state.Parameters as { TableName: string; Key: { pk: Record<string, string> } };
    return [
      {
        action: 'dynamodb:UpdateItem',
        resource: `arn:aws:dynamodb:${region}:${account}:table/${write.TableName}`,
        context: { 'dynamodb:LeadingKeys': [keyValue(write.Key.pk)] },
      },
    ];
  },
  [resource(INTEGRATIONS.sqsSendMessage)]: (state, { region, account, routeQueueUrls }) => {
    const parameters = state.Parameters as { QueueUrl?: string; 'QueueUrl.$'?: string };
    // A queue the job names (its route's) may be any route's.
    const urls = parameters.QueueUrl !== undefined ? [parameters.QueueUrl] : routeQueueUrls;
    if (urls.length === 0) throw new Error(`no queue to send to in ${JSON.stringify(parameters)}`);
    return urls.map((url) => ({ action: 'sqs:SendMessage', resource: `arn:aws:sqs:${region}:${account}:${url.split('/').pop()}` }));
  },
  [resource(INTEGRATIONS.lambdaInvoke)]: (state) => [
    { action: 'lambda:InvokeFunction', resource: String((state.Parameters as { FunctionName: string }).FunctionName) },
  ],
};

const SYNTHESIZED = [
  ...STAGES.map((stage) => [stage, () => synthStage(stage)] as const),
  ['dev with routes', () => synthStage('dev', routedDevConfig())] as const,
  ['dev packing 4 objects a task', () => synthStage('dev', packedDevConfig())] as const,
  ['dev with routes, bulk packing 10', () => synthStage('dev', packedRoutedDevConfig())] as const,
];

function dispatcherRoutes(json: TerraformJson) {
  const [, dispatcher] = resourcesOf(json, 'aws_lambda_function').find(([name]) => name.includes('dispatcher_function'))!;
  const variables = (dispatcher.environment as { variables: Record<string, string> }).variables;
  return dispatcherSettingsFromEnv(JSON.parse(resolveReferences(JSON.stringify(variables), json, fakeAttribute))).routes;
}

describe.each(SYNTHESIZED)('the %s state machine’s role', (_name, synthesize) => {
  const { json, config } = synthesize();
  const resolve = (text: string) => resolveReferences(text, json, fakeAttribute);
  const definition = JSON.parse(resolve(String(resourceNamed(json, 'aws_sfn_state_machine', 'state-machine').definition))) as StateMachineDefinition;
  const policy = JSON.parse(resolve(String(resourceNamed(json, 'aws_iam_role_policy', 'pipeline_policy').policy))) as PolicyDocument;
  const [[, taskDefinition]] = resourcesOf(json, 'aws_ecs_task_definition');
  const place = {
    region: config.account.region,
    account: config.account.id,
    passedRoles: [resolve(String(taskDefinition.task_role_arn)), resolve(String(taskDefinition.execution_role_arn))],
    routeQueueUrls: (config.routes ?? []).map(
      (route) => `https://sqs.${config.account.region}.amazonaws.com/${config.account.id}/${routeQueueName(config, route.name)}`,
    ),
    // What the dispatcher hands its jobs: each route's task definition, as its environment names them.
    routeTaskDefinitionArns: (dispatcherRoutes(json) ?? []).map((route) => route.taskDefinitionArn!),
  };
  const requests = [...eachState(definition)].flatMap(({ name, state }) => {
    if (state.Type !== 'Task') return [];
    const derive = INTEGRATION_REQUESTS[state.Resource];
    if (!derive) throw new Error(`state ${name} calls ${state.Resource}: say which IAM requests it makes in INTEGRATION_REQUESTS`);
    return [{ name, requests: derive(state, place) }];
  });

  test('allows every call of every Task state', async () => {
    const denied: string[] = [];
    for (const { name, requests: calls } of requests) {
      for (const call of calls)
        if ((await decide(policy, call)) !== 'Allowed') denied.push(`${name}: ${call.action} on ${call.resource} ${JSON.stringify(call.context ?? {})}`);
    }
    expect(denied).toEqual([]);
    // At the least two RunTasks, five endings and the wake-up (a packed graph's ends are the finisher's).
    expect(requests.length).toBeGreaterThanOrEqual(8);
  });

  test('grants nothing no state needs: without any one statement, some call is denied (log delivery apart)', async () => {
    const unneeded: string[] = [];
    const allowed: SimulatedRequest[] = [];
    for (const call of requests.flatMap((r) => r.requests)) if ((await decide(policy, call)) === 'Allowed') allowed.push(call);
    for (const statement of policy.Statement) {
      const without: PolicyDocument = { ...policy, Statement: policy.Statement.filter((s: PolicyStatement) => s !== statement) };
      let needed = false;
      for (const call of allowed) if ((await decide(without, call)) !== 'Allowed') needed = true;
      if (!needed) unneeded.push(statement.Sid ?? JSON.stringify(statement));
    }
    expect(unneeded).toEqual(['DeliverExecutionLogs']);
  });
});
