/**
 * Every AWS call the functions make in explored schedules is allowed by their synthesized roles. The explorer runs the
 * real code but no IAM: a call path a change adds (a re-send to the intake queue, a repair of POOL) must come with its
 * permission, and this finds the one that does not, whatever the path. The calls are recorded as the explorer releases
 * them — across schedules that drift the counters both ways, so the janitor's repairs run too — and each is evaluated
 * with @cloud-copilot/iam-simulate against the role of the function that made it (operators use their own credentials,
 * and the state machine's calls are checked from its definition, in modules/state-machine-iam.test.ts).
 */
import { LibraryBinding } from '../../explorer/engines';
import type { Actor } from '../../explorer/gates';
import { drainOption, RandomChooser, randomLeanings, randomScript, runSchedule, type Chooser, type Context } from '../../explorer/search';
import { explorerStage } from '../../explorer/stage';
import type { ExplorerWorld, Option } from '../../explorer/world';
import type { PolicyDocument } from '../../modules/iam';
import { resolveReferences } from '../../synth/output';
import { fakeAttribute } from '../../twin/synthesized-stage';
import { decide, type SimulatedRequest } from '../support/iam';

const es = explorerStage();
const { id: account, region } = es.config.account;
const ROLE_OF: Partial<Record<Actor['kind'], string>> = {
  dispatcher: 'admission_dispatcher_policy',
  janitor: 'janitor_policy',
  capacity: 'admission_capacity_policy',
  'configure-pool': 'admission_configure-pool_policy',
};

function policyOf(prefix: string): PolicyDocument {
  const [, resource] = Object.entries((es.json.resource?.aws_iam_role_policy ?? {}) as Record<string, { policy: string }>).find(([name]) =>
    name.startsWith(prefix),
  )!;
  return JSON.parse(resolveReferences(resource.policy, es.json, fakeAttribute)) as PolicyDocument;
}

const tableArn = (name: string) => `arn:aws:dynamodb:${region}:${account}:table/${name}`;
const queueArn = (url: string) => `arn:aws:sqs:${region}:${account}:${url.slice(url.lastIndexOf('/') + 1)}`;
/** The item's partition key, for the `dynamodb:LeadingKeys` conditions (the batches table is keyed by `execution`). */
const leading = (key: Record<string, unknown>): string => String(Object.values(key)[0]);

const DYNAMODB_ITEM_ACTION: Record<string, string> = { Update: 'UpdateItem', Put: 'PutItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' };
const SQS_ACTION: Record<string, string> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

/** The IAM requests one call makes: a transaction's items and a batch's keys are each authorized on their own. */
function requestsOf(service: string, operation: string, input: any): SimulatedRequest[] {
  switch (service) {
    case 'dynamodb': {
      if (operation === 'TransactWrite')
        return (input.TransactItems as Array<Record<string, any>>).map((item) => {
          const [kind, op] = Object.entries(item)[0];
          return {
            action: `dynamodb:${DYNAMODB_ITEM_ACTION[kind]}`,
            resource: tableArn(op.TableName),
            context: { 'dynamodb:LeadingKeys': [leading(op.Key ?? op.Item)] },
          };
        });
      if (operation === 'BatchGet')
        return Object.entries(input.RequestItems as Record<string, { Keys: Array<Record<string, unknown>> }>).map(([table, { Keys }]) => ({
          action: 'dynamodb:BatchGetItem',
          resource: tableArn(table),
          context: { 'dynamodb:LeadingKeys': Keys.map(leading) },
        }));
      const action = `dynamodb:${operation === 'Get' || operation === 'Update' || operation === 'Put' || operation === 'Delete' ? `${operation}Item` : operation}`;
      const resource = input.IndexName ? `${tableArn(input.TableName)}/index/${input.IndexName}` : tableArn(input.TableName);
      return [{ action, resource, ...(input.Key ? { context: { 'dynamodb:LeadingKeys': [leading(input.Key)] } } : {}) }];
    }
    case 'sqs':
      return [{ action: `sqs:${SQS_ACTION[operation] ?? operation}`, resource: queueArn(input.QueueUrl ?? `/${input.QueueName}`) }];
    case 'sfn':
      return [{ action: `states:${operation}`, resource: input.executionArn ?? input.stateMachineArn }];
    case 'lambda':
      return [{ action: 'lambda:InvokeFunction', resource: `arn:aws:lambda:${region}:${account}:function:${input.FunctionName}` }];
    case 'account':
      return operation === 'GetMetricData'
        ? [{ action: 'cloudwatch:GetMetricData', resource: '*' }]
        : [{ action: `servicequotas:${operation}`, resource: `arn:aws:servicequotas:${region}:${account}:fargate/${input.QuotaCode}` }];
    default:
      throw new Error(`no IAM mapping for ${service} ${operation}`);
  }
}

/** The drain's choices, with `tamper` run once at the first step. */
function tampering(tamper: (world: ExplorerWorld) => Promise<unknown>): Chooser {
  let done = false;
  let last: number | undefined;
  return {
    choose(options: Option[], world: ExplorerWorld) {
      if (!done) {
        done = true;
        void world.clock.track(() => tamper(world));
      }
      const option = drainOption(options, last);
      if (option?.kind === 'release') last = option.gate.actor.id;
      return option;
    },
  };
}

test('every call the dispatcher, janitor, capacity reader and configure-pool make is allowed by their roles', async () => {
  const calls = new Map<string, { kind: Actor['kind']; role: string; request: SimulatedRequest; what: string }>();
  const binding = new LibraryBinding();
  const ctx: Context = {
    es,
    binding,
    machine: binding.machine(es.stage.stateMachine.definition),
    onCall: (actor, service, operation, input) => {
      const role = ROLE_OF[actor.kind];
      if (!role) return;
      for (const request of requestsOf(service, operation, input)) {
        const key = JSON.stringify([role, request]);
        if (!calls.has(key)) calls.set(key, { kind: actor.kind, role, request, what: `${actor.label} ${service} ${operation}` });
      }
    },
  };
  for (let seed = 1; seed <= 40; seed++) await runSchedule(ctx, randomScript(seed), seed, new RandomChooser(seed, randomLeanings(seed)));
  // Counters edited by hand, both ways: the janitor repairs them (a released shard, or admitted on POOL).
  const drift = (field: string, pk: string) => (world: ExplorerWorld) =>
    world.ddb.call('UpdateItem', {
      TableName: es.dispatcher.tableName,
      Key: { pk: { S: pk } },
      UpdateExpression: `ADD ${field} :one`,
      ExpressionAttributeValues: { ':one': { N: '1' } },
    });
  // An abort wakes the janitor at once (its sweep checks the counters); a re-seed runs configure-pool.
  const script = [{ kind: 'upload' as const, object: 1 }, { kind: 'abort' as const }, { kind: 'operator' as const, command: 'reseed' as const }];
  const pastViolations = { ...ctx, runPastViolations: true };
  await runSchedule(pastViolations, script, 1, tampering(drift('admittedVcpu', 'POOL')));
  await runSchedule(pastViolations, script, 1, tampering(drift('releasedVcpu', 'RELEASED#7')));

  const actions = new Set([...calls.values()].map((c) => `${c.kind} ${c.request.action}`));
  // Not vacuous: the paths that were missing their permissions ran.
  expect([...actions]).toEqual(expect.arrayContaining(['dispatcher sqs:SendMessage', 'janitor dynamodb:UpdateItem', 'capacity servicequotas:GetServiceQuota']));
  const denied: string[] = [];
  for (const { role, request, what } of calls.values()) {
    if ((await decide(policyOf(role), request)) !== 'Allowed')
      denied.push(`${what}: ${request.action} on ${request.resource} ${JSON.stringify(request.context ?? {})}`);
  }
  expect(denied).toEqual([]);
}, 120_000);
