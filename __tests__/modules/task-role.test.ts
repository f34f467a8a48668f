import type { PolicyDocument } from '../../modules/iam';
import { decide } from '../support/iam';
import { resolveReferences, resourceNamed, synthStage } from '../support/synth';
import { packedDevConfig } from '../support/packed-stage';
import { batchesTableName, stateTableName } from '../../environments/names';
import { BATCHES_KEY } from '../../modules/state-table';
import { OUTCOMES_ATTRIBUTE } from '../../functions/packing';
import { outcomeUpdate } from '../../task-image/src/batch-record';

const { json, config } = synthStage('dev');
const bucket = `${config.namePrefix}-${config.account.id}-${config.account.region}`;
const object = (key: string) => `arn:aws:s3:::${bucket}/${key}`;

function rolePolicy(fragment: string): PolicyDocument {
  const policy = resourceNamed(json, 'aws_iam_role_policy', fragment).policy as string;
  return JSON.parse(resolveReferences(policy, json));
}

describe('task role (simulated with iam-simulate against the synthesized policy)', () => {
  const policy = rolePolicy('task-policy');

  test.each([
    ['s3:GetObject', object('incoming/a/b.csv'), 'Allowed'],
    ['s3:GetObjectVersion', object('incoming/a/b.csv'), 'Allowed'],
    ['s3:PutObject', object('results/a/b.csv.json'), 'Allowed'],
    ['s3:GetObject', object('results/a/b.csv.json'), 'Allowed'],
    ['s3:PutObject', object('incoming/a/b.csv'), 'ImplicitlyDenied'],
    ['s3:DeleteObject', object('incoming/a/b.csv'), 'ImplicitlyDenied'],
    ['s3:DeleteObject', object('results/a/b.csv.json'), 'ImplicitlyDenied'],
    ['s3:GetObject', object('private/secrets.txt'), 'ImplicitlyDenied'],
    ['s3:PutObject', object('elsewhere/x.json'), 'ImplicitlyDenied'],
    ['s3:GetObject', 'arn:aws:s3:::another-bucket/incoming/a.csv', 'ImplicitlyDenied'],
  ])('%s on %s is %s', async (action, resource, expected) => {
    expect(await decide(policy, { action, resource })).toBe(expected);
  });

  test('may list only its own prefixes', async () => {
    const list = (prefix: string) => decide(policy, { action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}`, context: { 's3:prefix': prefix } });
    expect(await list('incoming/')).toBe('Allowed');
    expect(await list('results/x')).toBe('Allowed');
    expect(await list('')).toBe('ImplicitlyDenied');
    expect(await list('private/')).toBe('ImplicitlyDenied');
  });

  test('grants nothing beyond S3 object access', () => {
    const actions = policy.Statement.flatMap((s) => [s.Action].flat());
    expect(new Set(actions)).toEqual(new Set(['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject', 's3:ListBucket']));
  });
});

describe('execution role', () => {
  const policy = rolePolicy('execution-policy');

  test('pulls only the worker repository and writes only the worker log group', async () => {
    const repo = resolveReferences(resourceNamed(json, 'aws_iam_role_policy', 'execution-policy').policy as string, json);
    expect(repo).toContain('aws_ecr_repository.');
    const pull = policy.Statement.find((s) => s.Sid === 'PullWorkerImage')!;
    const logs = policy.Statement.find((s) => s.Sid === 'WriteWorkerLogs')!;
    expect(pull.Resource).toMatch(/^aws_ecr_repository\.compute_repository_[A-F0-9]+\.arn$/);
    expect(logs.Resource).toMatch(/^aws_cloudwatch_log_group\.compute_logs_[A-F0-9]+\.arn:\*$/);
    expect(policy.Statement.filter((s) => s.Resource === '*').map((s) => s.Action)).toEqual(['ecr:GetAuthorizationToken']);
  });

  test('both roles trust only ECS tasks of this account (SourceAccount and SourceArn: review L1)', () => {
    for (const fragment of ['execution-role', 'task-role']) {
      const trust = JSON.parse(resourceNamed(json, 'aws_iam_role', fragment).assume_role_policy as string);
      expect(trust.Statement).toEqual([
        {
          Effect: 'Allow',
          Principal: { Service: 'ecs-tasks.amazonaws.com' },
          Action: 'sts:AssumeRole',
          Condition: {
            StringEquals: { 'aws:SourceAccount': config.account.id },
            ArnLike: { 'aws:SourceArn': `arn:aws:ecs:${config.account.region}:${config.account.id}:*` },
          },
        },
      ]);
    }
  });

  test('the container runs as the image’s unprivileged user, with every Linux capability dropped (review L5)', () => {
    const [container] = JSON.parse(resourceNamed(json, 'aws_ecs_task_definition', 'task-definition_').container_definitions as string);
    expect(container.user).toBe('1000:1000');
    expect(container.linuxParameters).toEqual({ initProcessEnabled: true, capabilities: { drop: ['ALL'] } });
  });
});

describe('the bucket policy: only the worker writes results (security review L8)', () => {
  const bucketPolicy = JSON.parse(
    resolveReferences(resourceNamed(json, 'aws_s3_bucket_policy', 'bucket_private_policy').policy as string, json),
  ) as PolicyDocument;
  const everything: PolicyDocument = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
  const role = (name: string) => `arn:aws:iam::${config.account.id}:role/${name}`;
  const put = (principal: string, key: string) =>
    decide(
      everything,
      { action: 's3:PutObject', resource: object(key), principal, context: { 'aws:SecureTransport': 'true', 'aws:PrincipalArn': principal } },
      bucketPolicy,
    );

  test.each([
    [role(`${config.namePrefix}-task`), 'results/a/b.csv.json', 'Allowed'],
    [`arn:aws:iam::${config.account.id}:root`, 'results/a/b.csv.json', 'Allowed'],
    [role('some-admin'), 'results/a/b.csv.json', 'ExplicitlyDenied'],
    [role(`${config.namePrefix}-dispatcher-fn`), 'results/a/b.csv.json', 'ExplicitlyDenied'],
    [role('some-admin'), 'incoming/a/b.csv', 'Allowed'],
  ])('%s writing %s: %s', async (principal, key, expected) => {
    expect(await put(principal, key)).toBe(expected);
  });
});

/** Words of an update or condition expression that name no attribute. */
const EXPRESSION_WORDS = new Set([
  'SET',
  'REMOVE',
  'ADD',
  'DELETE',
  'AND',
  'OR',
  'NOT',
  'BETWEEN',
  'IN',
  'attribute_exists',
  'attribute_not_exists',
  'attribute_type',
  'begins_with',
  'contains',
  'size',
  'if_not_exists',
  'list_append',
]);

/** What dynamodb:Attributes holds for an UpdateItem: its key's attributes, and the top-level attribute of each path its expressions name. */
function attributesNamedBy(update: {
  Key: object;
  UpdateExpression: string;
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
}): string[] {
  const paths = [update.UpdateExpression, update.ConditionExpression ?? '']
    .flatMap((expression) => expression.split(/[\s=(),+<>-]+/))
    .filter((word) => word !== '' && !word.startsWith(':') && !EXPRESSION_WORDS.has(word));
  const topLevel = paths.map((path) => path.split(/[.[]/)[0]).map((name) => update.ExpressionAttributeNames?.[name] ?? name);
  return [...new Set([...Object.keys(update.Key), ...topLevel])];
}

describe('the task role of a stage that packs: its list from the batch record, and only its outcomes written back', () => {
  const packed = synthStage('dev', packedDevConfig()).json;
  const policy = JSON.parse(resolveReferences(resourceNamed(packed, 'aws_iam_role_policy', 'task-policy').policy as string, packed)) as PolicyDocument;
  const table = (name: string) => `arn:aws:dynamodb:${config.account.region}:${config.account.id}:table/${name}`;
  const batches = table(batchesTableName(config.namePrefix));
  // What UpdateItem names (dynamodb:Attributes): the attributes it sets and those its condition reads, the key among them.
  const update = (attributes: string[], resource = batches) =>
    decide(policy, { action: 'dynamodb:UpdateItem', resource, context: { 'dynamodb:Attributes': attributes } });

  test("reads its batch record, and records an object's end: SET outcomes.#job with attribute_exists(execution)", async () => {
    expect(await decide(policy, { action: 'dynamodb:GetItem', resource: batches })).toBe('Allowed');
    expect(await update([BATCHES_KEY, OUTCOMES_ATTRIBUTE])).toBe('Allowed');
    expect(await update([OUTCOMES_ATTRIBUTE, BATCHES_KEY])).toBe('Allowed');
  });

  test("the worker's own outcome write (task-image/src/batch-record.ts) names only what the role allows", async () => {
    const write = outcomeUpdate('sluice-dev-batches', 'batch-1', 'a'.repeat(32), { status: 'succeeded', at: new Date(0).toISOString() });
    expect(attributesNamedBy(write)).toEqual([BATCHES_KEY, OUTCOMES_ATTRIBUTE]);
    expect(await update(attributesNamedBy(write))).toBe('Allowed');
  });

  test.each([
    ['its list', ['execution', 'outcomes', 'jobs']],
    ['another attribute alone', ['execution', 'admittedAt']],
    ['when the record expires', ['execution', 'expiresAt']],
  ])('may not change %s', async (_what, attributes) => {
    expect(await update(attributes)).toBe('ImplicitlyDenied');
  });

  test.each([
    ['dynamodb:PutItem', batches],
    ['dynamodb:DeleteItem', batches],
    ['dynamodb:Scan', batches],
    ['dynamodb:GetItem', table(stateTableName(config.namePrefix))],
    ['dynamodb:GetItem', table('another-workload-batches')],
  ])('may not %s on %s', async (action, resource) => {
    expect(await decide(policy, { action, resource })).toBe('ImplicitlyDenied');
  });

  test('a stage that does not pack gives its tasks no DynamoDB at all', async () => {
    expect(await decide(rolePolicy('task-policy'), { action: 'dynamodb:GetItem', resource: batches })).toBe('ImplicitlyDenied');
    expect(JSON.stringify(rolePolicy('task-policy'))).not.toContain('dynamodb');
  });
});
