/**
 * The stage the twin runs, read from its synthesized `cdk.tf.json`: the state machine definition, the queues and
 * their redrive policy, the tables, the Lambda functions' environment, memory and reserved concurrency, and the
 * EventBridge rules, with Terraform references resolved to stand-ins for what only `terraform apply` knows.
 */
import { resolveReferences, type TerraformJson } from '../synth/output';
import { queueUrl } from './engines/sqs';
import { tableInput } from './table-input';
import { eventRules } from './wiring';

/**
 * Where the stage deploys, from its provider block. The stack builds some ARNs itself from the stage's account
 * and Region (the state machine's, in the dispatcher's environment), so the stand-ins must name the same ones.
 */
function placeOf(json: TerraformJson): { account: string; region: string } {
  const aws = (json.provider as { aws?: Array<{ allowed_account_ids?: string[]; region?: string }> } | undefined)?.aws?.[0];
  const account = aws?.allowed_account_ids?.[0];
  if (!account || !aws?.region) throw new Error('sluice twin: the synthesized stage names no aws provider with its account and region');
  return { account, region: aws.region };
}

/** Concrete stand-ins for what only `terraform apply` knows (ARNs, URLs, ids), in the stage's account and Region. */
export function fakeAttribute(
  type: string,
  logicalName: string,
  attribute: string,
  resource: Record<string, unknown>,
  json: TerraformJson,
): string | undefined {
  const { account, region } = placeOf(json);
  const name = String(resource.name ?? resource.function_name ?? resource.family ?? logicalName);
  switch (`${type}.${attribute}`) {
    case 'aws_sqs_queue.url':
    case 'aws_sqs_queue.id':
      return queueUrl(name);
    case 'aws_sqs_queue.arn':
      return `arn:aws:sqs:${region}:${account}:${name}`;
    case 'aws_sfn_state_machine.arn':
    case 'aws_sfn_state_machine.id':
      return `arn:aws:states:${region}:${account}:stateMachine:${name}`;
    case 'aws_lambda_function.arn':
    case 'aws_lambda_function.invoke_arn':
    case 'aws_lambda_function.qualified_arn':
      return `arn:aws:lambda:${region}:${account}:function:${String(resource.function_name)}`;
    case 'aws_dynamodb_table.arn':
      return `arn:aws:dynamodb:${region}:${account}:table/${name}`;
    case 'aws_ecs_cluster.arn':
    case 'aws_ecs_cluster.id':
      return `arn:aws:ecs:${region}:${account}:cluster/${name}`;
    case 'aws_ecs_task_definition.arn':
      return `arn:aws:ecs:${region}:${account}:task-definition/${String(resource.family)}:1`;
    case 'aws_ecs_task_definition.arn_without_revision':
      return `arn:aws:ecs:${region}:${account}:task-definition/${String(resource.family)}`;
    case 'aws_subnet.id':
      return `subnet-0${hex(logicalName)}`;
    case 'aws_security_group.id':
      return `sg-0${hex(logicalName)}`;
    case 'aws_iam_role.arn':
      return `arn:aws:iam::${account}:role/${name}`;
    case 'aws_ecr_repository.arn':
      return `arn:aws:ecr:${region}:${account}:repository/${name}`;
    case 'aws_cloudwatch_log_group.arn':
      return `arn:aws:logs:${region}:${account}:log-group:${name}`;
    case 'aws_s3_bucket.bucket':
    case 'aws_s3_bucket.id':
      return String(resource.bucket);
  }
  return undefined;
}

function hex(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16).padStart(8, '0') + '0abc1234';
}

function resolveDeep<T>(value: T, json: TerraformJson): T {
  let text = JSON.stringify(value);
  for (let i = 0; i < 3 && text.includes('${'); i++) {
    text = resolveReferences(text, json, fakeAttribute);
  }
  return JSON.parse(text) as T;
}

function resources(json: TerraformJson, type: string): Array<[string, Record<string, any>]> {
  return Object.entries(json.resource?.[type] ?? {}).map(([name, r]) => [name, resolveDeep(r, json) as Record<string, any>]);
}

function one<T>(items: T[], what: string): T {
  if (items.length !== 1) throw new Error(`sluice twin: expected one ${what} in the synthesized stage, found ${items.length}`);
  return items[0];
}

/** Everything the twin needs from a synthesized stage. */
/** A stage that packs has a finisher (functions/finish-task.ts); the others none. */
function finisherOf<F extends { env: Record<string, string> }>(functions: F[]): F | undefined {
  const finishers = functions.filter((f) => 'CAPACITY_RETRY_DELAY_SECONDS' in f.env);
  if (finishers.length > 1) throw new Error(`expected at most one finisher function, found ${finishers.length}`);
  return finishers[0];
}

export function readStage(json: TerraformJson) {
  const [, machine] = one(resources(json, 'aws_sfn_state_machine'), 'aws_sfn_state_machine');
  const functions = resources(json, 'aws_lambda_function').map(([, f]) => ({
    name: String(f.function_name),
    memoryMB: Number(f.memory_size ?? 128),
    timeoutSeconds: Number(f.timeout ?? 3),
    reservedConcurrency:
      f.reserved_concurrent_executions === undefined || f.reserved_concurrent_executions < 0 ? undefined : Number(f.reserved_concurrent_executions),
    env: (f.environment?.variables ?? {}) as Record<string, string>,
  }));
  const dispatcher = one(
    functions.filter((f) => 'DEAD_LETTER_QUEUE_URL' in f.env && 'STATE_MACHINE_ARN' in f.env),
    'dispatcher function',
  );
  const janitor = one(
    functions.filter((f) => 'DISPATCHER_FUNCTION_NAME' in f.env),
    'janitor function',
  );
  const configurePool = one(
    functions.filter((f) => f.name.endsWith('-configure-pool')),
    'configure-pool function',
  );
  const capacity = one(
    functions.filter((f) => f.name.endsWith('-capacity')),
    'capacity function',
  );
  // What `terraform apply` seeds the pool with: the aws_lambda_invocation of configure-pool.
  const [, seed] = one(resources(json, 'aws_lambda_invocation'), 'pool seed invocation');
  const queues = resources(json, 'aws_sqs_queue').map(([, q]) => {
    const redrive = q.redrive_policy ? (JSON.parse(q.redrive_policy) as { deadLetterTargetArn: string; maxReceiveCount: number }) : undefined;
    return {
      name: String(q.name),
      visibilityTimeoutSeconds: q.visibility_timeout_seconds !== undefined ? Number(q.visibility_timeout_seconds) : undefined,
      delaySeconds: q.delay_seconds !== undefined ? Number(q.delay_seconds) : undefined,
      redrive: redrive ? { deadLetterQueueName: redrive.deadLetterTargetArn.split(':').pop()!, maxReceiveCount: Number(redrive.maxReceiveCount) } : undefined,
    };
  });
  const tables = resources(json, 'aws_dynamodb_table').map(([, t]) => tableInput(t));
  // The size ECS gives a task is its task definition's: a route may run its own.
  const taskDefinitions = resources(json, 'aws_ecs_task_definition').map(([name, t]) => ({
    arn: fakeAttribute('aws_ecs_task_definition', name, 'arn', t, json)!,
    vcpu: Number(t.cpu) / 1024,
    memoryMiB: Number(t.memory),
  }));
  const rules = eventRules(json, (text) => resolveDeep(text, json));
  return {
    rules,
    stateMachine: {
      name: String(machine.name),
      arn: fakeAttribute('aws_sfn_state_machine', '', 'arn', machine, json)!,
      definition: JSON.parse(String(machine.definition)),
    },
    dispatcher,
    janitor,
    finisher: finisherOf(functions),
    configurePool: { ...configurePool, seed: JSON.parse(String(seed.input)) as unknown },
    capacity,
    queues,
    tables,
    taskDefinitions,
  };
}

export type Stage = ReturnType<typeof readStage>;
