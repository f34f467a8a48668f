import { runSimulation } from '@cloud-copilot/iam-simulate';
import { Testing } from 'cdktf';
import { bootstrap } from '../../environments/bootstrap';
import { loadBootstrap } from '../../environments/bootstrap';
import { validateBootstrap, type BootstrapAccount, type BootstrapConfig } from '../../environments/bootstrap-schema';
import { BootstrapStack, bootstrapStackName } from '../../modules/bootstrap';
import { githubOidcProviderArn } from '../../modules/ci-roles';
import type { PolicyDocument } from '../../modules/iam';
import type { TerraformJson } from '../../scripts/synth-output';
import { decide } from '../support/iam';
import { resolveReferences, stageConfig } from '../support/synth';
import { assumeRoleWithWebIdentity } from '../support/web-identity';

const config = loadBootstrap();
const dev = config.accounts.find((a) => a.stages.some((s) => s.stage === 'dev'))!;

function synthBootstrap(account: BootstrapAccount, cfg: BootstrapConfig = config): TerraformJson {
  const stack = new BootstrapStack(Testing.app(), bootstrapStackName(account.accountId), {
    config: cfg,
    account,
    localStatePath: `../../../../bootstrap-state/${bootstrapStackName(account.accountId)}.tfstate`,
  });
  return JSON.parse(Testing.synth(stack)) as TerraformJson;
}

const json = synthBootstrap(dev);
const resource = (type: string, name: string) => {
  // Resources inside a construct carry a hash suffix: `state_bucket_1A2B3C4D`.
  const byName = json.resource?.[type] ?? {};
  const found = byName[name] ?? Object.entries(byName).find(([logical]) => new RegExp(`^${name}_[A-F0-9]{8}$`).test(logical))?.[1];
  if (!found) throw new Error(`no ${type}.${name}`);
  return found;
};
const providerArn = githubOidcProviderArn(dev.accountId, dev.region);
/** Resolves `${aws_iam_openid_connect_provider.github-oidc.arn}` and `${aws_iam_policy.x.arn}` as apply would. */
const resolved = (text: string) =>
  resolveReferences(text, json, (type, _name, attribute, res) => {
    if (type === 'aws_iam_openid_connect_provider' && attribute === 'arn') return providerArn;
    if (type === 'aws_iam_policy' && attribute === 'arn') return `arn:aws:iam::${dev.accountId}:policy/${String(res.name)}`;
    return undefined;
  });
const policyOf = (type: string, name: string, field: string): PolicyDocument => JSON.parse(resolved(resource(type, name)[field] as string));

describe('bootstrap configuration', () => {
  test('derives each account’s state bucket, Region and stages from the stage configs', () => {
    expect(config.accounts.map((a) => [a.accountId, a.stateBucket, a.region, a.stages.map((s) => s.stage)])).toEqual([
      ['111111111111', stageConfig('dev').backend.bucket, 'eu-west-1', ['dev']],
      ['222222222222', stageConfig('stg').backend.bucket, 'eu-west-1', ['stg']],
      ['333333333333', stageConfig('prod').backend.bucket, 'eu-west-1', ['prod']],
    ]);
    expect(dev.stages).toEqual([{ stage: 'dev', region: 'eu-west-1', stateKey: 'sluice/dev.tfstate' }]);
  });

  const stages = ['dev', 'stg', 'prod'].map((s) => stageConfig(s as 'dev'));
  const problems = (input: unknown, withStages = stages) => {
    try {
      validateBootstrap(input, withStages);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('expected the bootstrap configuration to be rejected');
  };
  const withChange = (change: (c: any) => void) => {
    const copy = structuredClone(bootstrap) as any;
    change(copy);
    return copy;
  };

  test.each([
    ['owner', (c: any) => (c.github.owner = 'bad owner'), /github\.owner: must be a GitHub user or organization name.*got "bad owner"/],
    ['repository', (c: any) => (c.github.repository = ''), /github\.repository: must be a GitHub repository name/],
    ['account id', (c: any) => (c.accounts['12'] = { oidcProvider: { kind: 'create' } }), /accounts\.12: keys must be 12-digit AWS account ids \(got "12"\)/],
    [
      'provider kind',
      (c: any) => (c.accounts['111111111111'].oidcProvider = { kind: 'maybe' }),
      /accounts\.111111111111\.oidcProvider\.kind: kind must be 'create' or 'existing'/,
    ],
    [
      'provider arn',
      (c: any) => (c.accounts['111111111111'].oidcProvider = { kind: 'existing', arn: 'arn:aws:iam::111111111111:oidc-provider/example.com' }),
      /oidcProvider\.arn: must be the ARN of the GitHub OIDC provider/,
    ],
    [
      'provider in another account',
      (c: any) => (c.accounts['111111111111'].oidcProvider = { kind: 'existing', arn: githubOidcProviderArn('999999999999', 'eu-west-1') }),
      /accounts\.111111111111\.oidcProvider\.arn: must be the provider in account 111111111111/,
    ],
    ['missing account', (c: any) => delete c.accounts['222222222222'], /accounts: must list account 222222222222 \(stage stg deploys there\)/],
    [
      'account without stage',
      (c: any) => (c.accounts['444444444444'] = { oidcProvider: { kind: 'create' } }),
      /accounts\.444444444444: no stage deploys to this account/,
    ],
    ['retention', (c: any) => (c.state.noncurrentVersionRetentionDays = 0), /state\.noncurrentVersionRetentionDays: must be a whole number from 1 to 3650/],
    ['unknown field', (c: any) => (c.stateBucket = 'x'), /\(root\): Unrecognized key/],
  ])('rejects a bad %s, naming the field and what is allowed', (_what, change, message) => {
    expect(problems(withChange(change))).toMatch(message);
  });

  test('two stages in one account must share its one state bucket', () => {
    const qa = { ...stageConfig('dev'), stage: 'qa', backend: { ...stageConfig('dev').backend, bucket: 'another-bucket', key: 'sluice/qa.tfstate' } };
    expect(problems(bootstrap, [...stages, qa])).toMatch(
      /environments\/qa\.ts backend\.bucket: must equal environments\/dev\.ts backend\.bucket \("sluice-tfstate-111111111111"\).*got "another-bucket"/,
    );
  });
});

describe('bootstrap stack: the state bucket', () => {
  test('is versioned, encrypted, private, TLS-only, never destroyed, and expires old versions', () => {
    const bucket = resource('aws_s3_bucket', 'state_bucket');
    expect(bucket.bucket).toBe(stageConfig('dev').backend.bucket);
    expect(bucket.lifecycle).toEqual({ prevent_destroy: true });
    expect(resource('aws_s3_bucket_versioning', 'state_versioning').versioning_configuration).toEqual({ status: 'Enabled' });
    expect(resource('aws_s3_bucket_server_side_encryption_configuration', 'state_encryption').rule).toEqual([
      { apply_server_side_encryption_by_default: { sse_algorithm: 'AES256' }, bucket_key_enabled: true },
    ]);
    expect(resource('aws_s3_bucket_public_access_block', 'state_public-access')).toMatchObject({
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    expect(policyOf('aws_s3_bucket_policy', 'state_policy', 'policy').Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Principal: '*', Action: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
    expect(resource('aws_s3_bucket_lifecycle_configuration', 'state-lifecycle').rule).toEqual([
      expect.objectContaining({
        status: 'Enabled',
        noncurrent_version_expiration: [{ noncurrent_days: 90, newer_noncurrent_versions: 10 }],
      }),
    ]);
  });

  test('keeps its own state locally, outside cdktf.out, with the pinned Terraform', () => {
    expect(json.terraform.backend).toEqual({ local: { path: '../../../../bootstrap-state/sluice-bootstrap-111111111111.tfstate' } });
    expect((json.terraform as Record<string, unknown>).required_version).toMatch(/^= \d+\.\d+\.\d+$/);
    expect(json.provider!.aws[0]).toMatchObject({ region: 'eu-west-1', allowed_account_ids: ['111111111111'] });
  });
});

describe('bootstrap stack: who may assume the roles (trust policies)', () => {
  const plan = policyOf('aws_iam_role', 'dev-plan-role', 'assume_role_policy');
  const deploy = policyOf('aws_iam_role', 'dev-deploy-role', 'assume_role_policy');
  const repo = 'example-org/sluice';
  const token = (sub: string, aud = 'sts.amazonaws.com') => ({
    'token.actions.githubusercontent.com:sub': sub,
    'token.actions.githubusercontent.com:aud': aud,
  });

  test('creates the GitHub OIDC provider for STS', () => {
    expect(resource('aws_iam_openid_connect_provider', 'github-oidc')).toMatchObject({
      url: 'https://token.actions.githubusercontent.com',
      client_id_list: ['sts.amazonaws.com'],
    });
  });

  test.each([
    ['a pull request of the repository', `repo:${repo}:pull_request`, 'sts.amazonaws.com', 'Allowed', 'ImplicitlyDenied'],
    ['the main branch without an environment (drift check)', `repo:${repo}:ref:refs/heads/main`, 'sts.amazonaws.com', 'Allowed', 'ImplicitlyDenied'],
    ['a job in the dev environment', `repo:${repo}:environment:dev`, 'sts.amazonaws.com', 'ImplicitlyDenied', 'Allowed'],
    ['a job in the prod environment', `repo:${repo}:environment:prod`, 'sts.amazonaws.com', 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['another branch', `repo:${repo}:ref:refs/heads/feature`, 'sts.amazonaws.com', 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['a pull request of another repository', 'repo:example-org/other:pull_request', 'sts.amazonaws.com', 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['the dev environment of another repository', 'repo:evil-org/sluice:environment:dev', 'sts.amazonaws.com', 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['a name that only starts like ours', `repo:${repo}-fork:environment:dev`, 'sts.amazonaws.com', 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['a pull request token for another audience', `repo:${repo}:pull_request`, 'https://github.com/example-org', 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['a dev-environment token for another audience', `repo:${repo}:environment:dev`, 'sigstore', 'ImplicitlyDenied', 'ImplicitlyDenied'],
  ])('%s: plan %s / deploy %s', (_who, sub, aud, planDecision, deployDecision) => {
    expect(assumeRoleWithWebIdentity(plan, providerArn, token(sub, aud))).toBe(planDecision);
    expect(assumeRoleWithWebIdentity(deploy, providerArn, token(sub, aud))).toBe(deployDecision);
  });

  test('only tokens through this account’s GitHub provider, and only with both claims', () => {
    const other = githubOidcProviderArn('999999999999', 'eu-west-1');
    expect(assumeRoleWithWebIdentity(deploy, other, token(`repo:${repo}:environment:dev`))).toBe('ImplicitlyDenied');
    expect(assumeRoleWithWebIdentity(deploy, providerArn, { 'token.actions.githubusercontent.com:sub': `repo:${repo}:environment:dev` })).toBe(
      'ImplicitlyDenied',
    );
  });

  test('uses an existing provider instead of creating one', () => {
    const existing = { ...dev, oidcProvider: { kind: 'existing' as const, arn: providerArn } };
    const other = synthBootstrap(existing);
    expect(other.resource?.aws_iam_openid_connect_provider).toBeUndefined();
    const trust = JSON.parse(other.resource!.aws_iam_role['dev-deploy-role'].assume_role_policy as string) as PolicyDocument;
    expect(assumeRoleWithWebIdentity(trust, providerArn, token(`repo:${repo}:environment:dev`))).toBe('Allowed');
  });

  // Why the trust tests above use assumeRoleWithWebIdentity (see its comment) and not decide(). When this fails,
  // iam-simulate has learned the GitHub sub/aud keys: move the trust tests to decide().
  test('iam-simulate 0.1.173 drops the GitHub sub/aud keys, so it cannot evaluate these trust policies', async () => {
    const response = await runSimulation(
      {
        identityPolicies: [],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: deploy,
        request: {
          action: 'sts:AssumeRoleWithWebIdentity',
          principal: providerArn,
          resource: { accountId: dev.accountId, resource: `arn:aws:iam::${dev.accountId}:role/sluice-dev-deploy` },
          contextVariables: token(`repo:${repo}:environment:dev`),
        },
      },
      {},
    );
    expect(response.resultType).toBe('single');
    expect(response.resultType === 'single' && response.result.ignoredContextKeys).toEqual(
      expect.arrayContaining(['token.actions.githubusercontent.com:sub', 'token.actions.githubusercontent.com:aud']),
    );
  });
});

describe('bootstrap stack: what the roles may do (simulated with iam-simulate)', () => {
  const bucket = dev.stateBucket;
  const object = (key: string) => `arn:aws:s3:::${bucket}/${key}`;

  describe('plan role: ReadOnlyAccess, its stage state read-only, no data', () => {
    const statePolicy = policyOf('aws_iam_role_policy', 'dev-plan-state', 'policy');
    const asPlan = (action: string, res: string) => decide(statePolicy, { action, resource: res, accountId: dev.accountId });
    // What ReadOnlyAccess grants that matters here (zoph-io/MAMIP policies/ReadOnlyAccess, v178): iam-simulate has
    // no copy of AWS managed policies, so this stands in for it beside the role's own policy.
    const readOnlyAccess: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: [
            's3:Get*',
            's3:List*',
            'sqs:Get*',
            'sqs:List*',
            'sqs:Receive*',
            'dynamodb:BatchGet*',
            'dynamodb:Describe*',
            'dynamodb:Get*',
            'dynamodb:List*',
            'dynamodb:Query',
            'dynamodb:Scan',
            'states:Describe*',
            'states:GetExecutionHistory',
            'states:List*',
            'logs:Describe*',
            'logs:Get*',
            'logs:FilterLogEvents',
            'logs:StartQuery',
            'lambda:Get*',
            'lambda:List*',
            'ecs:Describe*',
            'ecs:List*',
            'ssm:Get*',
            'iam:Get*',
            'iam:List*',
          ],
          Resource: '*',
        },
      ],
    };
    const asPlanRole = (action: string, res: string) =>
      decide(
        { Version: '2012-10-17', Statement: [...readOnlyAccess.Statement, ...statePolicy.Statement] },
        { action, resource: res, accountId: dev.accountId },
      );

    test('attaches ReadOnlyAccess, nothing broader', () => {
      expect(resource('aws_iam_role_policy_attachment', 'dev-plan-readonly').policy_arn).toBe('arn:aws:iam::aws:policy/ReadOnlyAccess');
      const attachments = Object.values(json.resource!.aws_iam_role_policy_attachment).filter((a) => String(a.role).includes('dev-plan-role'));
      expect(attachments.map((a) => a.policy_arn)).toEqual(['arn:aws:iam::aws:policy/ReadOnlyAccess']);
    });

    test.each([
      ['s3:ListBucket', `arn:aws:s3:::${bucket}`, 'Allowed'],
      ['s3:GetObject', object('sluice/dev.tfstate'), 'Allowed'],
      ['s3:GetObject', object('sluice/stg.tfstate'), 'ImplicitlyDenied'],
      // Plans run with -lock=false: not even the lock object may be written.
      ['s3:PutObject', object('sluice/dev.tfstate.tflock'), 'ExplicitlyDenied'],
      ['s3:DeleteObject', object('sluice/dev.tfstate.tflock'), 'ExplicitlyDenied'],
      ['s3:PutObject', object('sluice/dev.tfstate'), 'ExplicitlyDenied'],
      ['s3:DeleteObject', object('sluice/dev.tfstate'), 'ExplicitlyDenied'],
      ['s3:DeleteObjectVersion', object('sluice/dev.tfstate'), 'ExplicitlyDenied'],
      ['s3:PutObject', object('sluice/stg.tfstate'), 'ExplicitlyDenied'],
    ])('%s on %s is %s', async (action, res, expected) => {
      expect(await asPlan(action, res)).toBe(expected);
    });

    const stageBucket = `sluice-dev-${dev.accountId}-eu-west-1`;
    const arn = (service: string, rest: string) => `arn:aws:${service}:eu-west-1:${dev.accountId}:${rest}`;
    test.each([
      ['s3:GetObject', `arn:aws:s3:::${stageBucket}/incoming/upload.csv`],
      ['s3:GetObjectVersion', `arn:aws:s3:::${stageBucket}/results/upload.csv.json`],
      ['s3:GetObject', 'arn:aws:s3:::another-workloads-bucket/secret.txt'],
      ['sqs:ReceiveMessage', arn('sqs', 'sluice-dev-intake')],
      ['dynamodb:GetItem', arn('dynamodb', 'table/sluice-dev-state')],
      ['dynamodb:Query', arn('dynamodb', 'table/sluice-dev-state')],
      ['dynamodb:Scan', arn('dynamodb', 'table/sluice-dev-state')],
      ['states:GetExecutionHistory', arn('states', 'execution:sluice-dev-jobs:batch1-x')],
      ['states:DescribeExecution', arn('states', 'execution:sluice-dev-jobs:batch1-x')],
      ['logs:GetLogEvents', arn('logs', 'log-group:/sluice/sluice-dev/worker:log-stream:worker/x')],
      ['logs:FilterLogEvents', arn('logs', 'log-group:/sluice/sluice-dev/worker')],
    ])('with ReadOnlyAccess, %s on %s is still denied (data, not configuration)', async (action, res) => {
      expect(await asPlanRole(action, res)).toBe('ExplicitlyDenied');
    });

    test.each([
      ['s3:GetObject', object('sluice/dev.tfstate')],
      ['s3:GetBucketPolicy', `arn:aws:s3:::${stageBucket}`],
      ['s3:GetLifecycleConfiguration', `arn:aws:s3:::${stageBucket}`],
      ['sqs:GetQueueAttributes', arn('sqs', 'sluice-dev-intake')],
      ['dynamodb:DescribeTable', arn('dynamodb', 'table/sluice-dev-state')],
      ['dynamodb:DescribeContinuousBackups', arn('dynamodb', 'table/sluice-dev-state')],
      ['states:DescribeStateMachine', arn('states', 'stateMachine:sluice-dev-jobs')],
      ['lambda:GetFunction', arn('lambda', 'function:sluice-dev-dispatcher')],
      ['logs:DescribeLogGroups', '*'],
      ['ecs:DescribeTaskDefinition', '*'],
    ])('with ReadOnlyAccess, what plan reads (%s on %s) stays allowed', async (action, res) => {
      expect(await asPlanRole(action, res)).toBe('Allowed');
    });

    test('the explicit deny also wins over a policy that allows everything', async () => {
      const everything: PolicyDocument = { Version: '2012-10-17', Statement: [...statePolicy.Statement, { Effect: 'Allow', Action: '*', Resource: '*' }] };
      expect(await decide(everything, { action: 's3:PutObject', resource: object('sluice/dev.tfstate'), accountId: dev.accountId })).toBe('ExplicitlyDenied');
      expect(await decide(everything, { action: 'sqs:ReceiveMessage', resource: arn('sqs', 'sluice-dev-intake'), accountId: dev.accountId })).toBe(
        'ExplicitlyDenied',
      );
    });
  });

  describe('deploy role: AdministratorAccess within a permissions boundary', () => {
    const boundary = policyOf('aws_iam_policy', 'dev-deploy-boundary', 'policy');
    const administrator: PolicyDocument = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
    const asDeploy = (action: string, res: string) =>
      decide(administrator, { action, resource: res, accountId: dev.accountId }, undefined, { permissionBoundary: boundary });
    const role = (name: string) => `arn:aws:iam::${dev.accountId}:role/${name}`;

    test('is AdministratorAccess, bounded', () => {
      expect(resource('aws_iam_role_policy_attachment', 'dev-deploy-admin').policy_arn).toBe('arn:aws:iam::aws:policy/AdministratorAccess');
      expect(resource('aws_iam_role', 'dev-deploy-role').permissions_boundary).toBe('${aws_iam_policy.dev-deploy-boundary.arn}');
    });

    test.each([
      ['ecs:CreateCluster', `arn:aws:ecs:eu-west-1:${dev.accountId}:cluster/sluice-dev`, 'Allowed'],
      ['iam:CreateRole', role('sluice-dev-task-role'), 'Allowed'],
      ['s3:PutObject', object('sluice/dev.tfstate'), 'Allowed'],
      ['s3:PutObject', object('sluice/dev.tfstate.tflock'), 'Allowed'],
      ['iam:UpdateAssumeRolePolicy', role('sluice-dev-deploy'), 'ExplicitlyDenied'],
      ['iam:AttachRolePolicy', role('sluice-dev-plan'), 'ExplicitlyDenied'],
      ['iam:DeleteRolePermissionsBoundary', role('sluice-dev-deploy'), 'ExplicitlyDenied'],
      ['iam:CreatePolicyVersion', `arn:aws:iam::${dev.accountId}:policy/sluice-dev-deploy-boundary`, 'ExplicitlyDenied'],
      ['iam:DeleteOpenIDConnectProvider', providerArn, 'ExplicitlyDenied'],
      ['s3:DeleteBucket', `arn:aws:s3:::${bucket}`, 'ExplicitlyDenied'],
      ['s3:PutBucketPolicy', `arn:aws:s3:::${bucket}`, 'ExplicitlyDenied'],
      ['s3:DeleteObjectVersion', object('sluice/dev.tfstate'), 'ExplicitlyDenied'],
      ['iam:CreateAccessKey', `arn:aws:iam::${dev.accountId}:user/someone`, 'ExplicitlyDenied'],
    ])('%s on %s is %s', async (action, res, expected) => {
      expect(await asDeploy(action, res)).toBe(expected);
    });

    test("in an account with two stages, neither may write the other's state", async () => {
      const shared: BootstrapAccount = { ...dev, stages: [...dev.stages, { stage: 'qa', region: 'eu-west-1', stateKey: 'sluice/qa.tfstate' }] };
      const two = synthBootstrap(shared);
      const qaBoundary = JSON.parse(two.resource!.aws_iam_policy['qa-deploy-boundary'].policy as string) as PolicyDocument;
      const asQa = (action: string, res: string) =>
        decide(administrator, { action, resource: res, accountId: dev.accountId }, undefined, { permissionBoundary: qaBoundary });
      expect(await asQa('s3:PutObject', object('sluice/qa.tfstate'))).toBe('Allowed');
      expect(await asQa('s3:PutObject', object('sluice/dev.tfstate'))).toBe('ExplicitlyDenied');
      expect(await asQa('s3:DeleteObject', object('sluice/dev.tfstate.tflock'))).toBe('ExplicitlyDenied');
      expect(await asQa('iam:PutRolePolicy', role('sluice-dev-deploy'))).toBe('ExplicitlyDenied');
    });
  });
});
