import { runSimulation } from '@cloud-copilot/iam-simulate';
import { Testing } from 'cdktf';
import { bootstrap } from '../../environments/bootstrap';
import { loadBootstrap } from '../../environments/bootstrap';
import { validateBootstrap, type BootstrapAccount, type BootstrapConfig } from '../../environments/bootstrap-schema';
import { awsServiceOf } from '../../modules/aws-services';
import { BootstrapStack, bootstrapStackName, PLAN_SERVICES } from '../../modules/bootstrap';
import { githubOidcProviderArn } from '../../environments/ci-roles';
import type { PolicyDocument } from '../../modules/iam';
import type { TerraformJson } from '../../synth/output';
import { decide } from '../support/iam';
import { resolveReferences, STAGES, stageConfig, synthStage } from '../support/synth';
import { packedDevConfig } from '../support/packed-stage';
import { fakeAttribute } from '../../twin/synthesized-stage';
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
    expect(dev.stages).toEqual([
      {
        stage: 'dev',
        region: 'eu-west-1',
        stateKey: 'sluice/dev.tfstate',
        namePrefix: 'sluice-dev',
        imageRepository: 'sluice-dev-worker',
        smoke: { bucket: 'sluice-dev-111111111111-eu-west-1', inputPrefix: 'incoming/', resultsPrefix: 'results/' },
        pullRequestPlans: true,
      },
    ]);
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
    [
      'pull-request stage',
      (c: any) => (c.github.pullRequestPlans = ['dev', 'qa']),
      /github\.pullRequestPlans\.1: must name a stage \(dev, stg, prod\) \(got "qa"\)/,
    ],
    ['approval stage', (c: any) => (c.github.approvals = ['production']), /github\.approvals\.0: must name a stage/],
  ])('rejects a bad %s, naming the field and what is allowed', (_what, change, message) => {
    expect(problems(withChange(change))).toMatch(message);
  });

  test("no stage's name prefix may start with another's in the same account (each deploy role edits only its own roles)", () => {
    const qa = { ...stageConfig('dev'), stage: 'qa', namePrefix: 'sluice-dev-qa', backend: { ...stageConfig('dev').backend, key: 'sluice/qa.tfstate' } };
    expect(problems(bootstrap, [...stages, qa])).toMatch(/environments\/qa\.ts namePrefix: must not start with "sluice-dev-" \(stage dev's prefix/);
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
  // GitHub's sub with the repository's subject template set to repo, context, job_workflow_ref.
  const sub = (context: string, workflow: string, ref: string, inRepo = repo) =>
    `repo:${inRepo}:${context}:job_workflow_ref:${inRepo}/.github/workflows/${workflow}@${ref}`;
  const main = 'refs/heads/main';

  test('creates the GitHub OIDC provider for STS', () => {
    expect(resource('aws_iam_openid_connect_provider', 'github-oidc')).toMatchObject({
      url: 'https://token.actions.githubusercontent.com',
      client_id_list: ['sts.amazonaws.com'],
    });
  });

  test.each([
    ["a pull request's plan job", sub('pull_request', 'pull-request.yml', 'refs/pull/42/merge'), 'Allowed', 'ImplicitlyDenied'],
    ["the rollout's plan job, on main", sub('ref:refs/heads/main', 'apply-stage.yml', main), 'Allowed', 'ImplicitlyDenied'],
    ['the drift check, on main', sub('ref:refs/heads/main', 'drift.yml', main), 'Allowed', 'ImplicitlyDenied'],
    ["the rollout's apply job in the dev environment, main's apply-stage.yml", sub('environment:dev', 'apply-stage.yml', main), 'ImplicitlyDenied', 'Allowed'],
    // H2: the environment name alone does not admit; the workflow file and its ref must be main's apply-stage.yml.
    ['the dev environment from a branch', sub('environment:dev', 'apply-stage.yml', 'refs/heads/feature'), 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['the dev environment in another workflow file', sub('environment:dev', 'backdoor.yml', main), 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ["GitHub's default sub for the dev environment (template not set)", `repo:${repo}:environment:dev`, 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ["GitHub's default sub for a pull request (template not set)", `repo:${repo}:pull_request`, 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['the prod environment', sub('environment:prod', 'apply-stage.yml', main), 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['a pull request running another workflow file', sub('pull_request', 'other.yml', 'refs/pull/42/merge'), 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['another branch without environment', sub('ref:refs/heads/feature', 'drift.yml', 'refs/heads/feature'), 'ImplicitlyDenied', 'ImplicitlyDenied'],
    ['main, another workflow file', sub('ref:refs/heads/main', 'anything.yml', main), 'ImplicitlyDenied', 'ImplicitlyDenied'],
    [
      'a pull request of another repository',
      sub('pull_request', 'pull-request.yml', 'refs/pull/1/merge', 'example-org/other'),
      'ImplicitlyDenied',
      'ImplicitlyDenied',
    ],
    ['a name that only starts like ours', sub('environment:dev', 'apply-stage.yml', main, `${repo}-fork`), 'ImplicitlyDenied', 'ImplicitlyDenied'],
  ])('%s: plan %s / deploy %s', (_who, subject, planDecision, deployDecision) => {
    expect(assumeRoleWithWebIdentity(plan, providerArn, token(subject))).toBe(planDecision);
    expect(assumeRoleWithWebIdentity(deploy, providerArn, token(subject))).toBe(deployDecision);
  });

  test('a token for another audience is refused', () => {
    expect(assumeRoleWithWebIdentity(plan, providerArn, token(sub('pull_request', 'pull-request.yml', 'refs/pull/42/merge'), 'sigstore'))).toBe(
      'ImplicitlyDenied',
    );
    expect(assumeRoleWithWebIdentity(deploy, providerArn, token(sub('environment:dev', 'apply-stage.yml', main), 'https://github.com/example-org'))).toBe(
      'ImplicitlyDenied',
    );
  });

  // H1: a pull request runs its own code with the plan role; prod is planned on main only.
  test('pull requests plan only the stages listed in github.pullRequestPlans: prod is planned from main', () => {
    const prodAccount = config.accounts.find((a) => a.stages.some((s) => s.stage === 'prod'))!;
    const prodJson = synthBootstrap(prodAccount);
    const prodProvider = githubOidcProviderArn(prodAccount.accountId, prodAccount.region);
    const withProvider = JSON.parse(
      resolveReferences(prodJson.resource!.aws_iam_role['prod-plan-role'].assume_role_policy as string, prodJson, (type, _name, attribute) =>
        type === 'aws_iam_openid_connect_provider' && attribute === 'arn' ? prodProvider : undefined,
      ),
    ) as PolicyDocument;
    expect(assumeRoleWithWebIdentity(withProvider, prodProvider, token(sub('pull_request', 'pull-request.yml', 'refs/pull/42/merge')))).toBe(
      'ImplicitlyDenied',
    );
    expect(assumeRoleWithWebIdentity(withProvider, prodProvider, token(sub('ref:refs/heads/main', 'apply-stage.yml', main)))).toBe('Allowed');
    expect(config.github.pullRequestPlans).toEqual(['dev', 'stg']);
  });

  test('a repository whose subjects carry immutable ids: the roles trust that form (and only it)', () => {
    const withIds: BootstrapConfig = { ...config, github: { ...config.github, subjectIds: { owner: 1234, repository: 5678 } } };
    const trust = JSON.parse(resolved(synthBootstrap(dev, withIds).resource!.aws_iam_role['dev-deploy-role'].assume_role_policy as string)) as PolicyDocument;
    const immutable = `repo:example-org@1234/sluice@5678:environment:dev:job_workflow_ref:${repo}/.github/workflows/apply-stage.yml@${main}`;
    expect(assumeRoleWithWebIdentity(trust, providerArn, token(immutable))).toBe('Allowed');
    expect(assumeRoleWithWebIdentity(trust, providerArn, token(sub('environment:dev', 'apply-stage.yml', main)))).toBe('ImplicitlyDenied');
  });

  test('only tokens through this account’s GitHub provider, and only with both claims', () => {
    const other = githubOidcProviderArn('999999999999', 'eu-west-1');
    expect(assumeRoleWithWebIdentity(deploy, other, token(sub('environment:dev', 'apply-stage.yml', main)))).toBe('ImplicitlyDenied');
    expect(assumeRoleWithWebIdentity(deploy, providerArn, { 'token.actions.githubusercontent.com:sub': sub('environment:dev', 'apply-stage.yml', main) })).toBe(
      'ImplicitlyDenied',
    );
  });

  test('uses an existing provider instead of creating one', () => {
    const existing = { ...dev, oidcProvider: { kind: 'existing' as const, arn: providerArn } };
    const other = synthBootstrap(existing);
    expect(other.resource?.aws_iam_openid_connect_provider).toBeUndefined();
    const trust = JSON.parse(other.resource!.aws_iam_role['dev-deploy-role'].assume_role_policy as string) as PolicyDocument;
    expect(assumeRoleWithWebIdentity(trust, providerArn, token(sub('environment:dev', 'apply-stage.yml', main)))).toBe('Allowed');
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
          contextVariables: token(sub('environment:dev', 'apply-stage.yml', main)),
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
    // What ReadOnlyAccess grants that matters here (zoph-io/MAMIP policies/ReadOnlyAccess, as the 2026-12-07 security
    // review used it): iam-simulate has no copy of AWS managed policies, so this stands in for it beside the role's own
    // policy. The real policy is a superset: "Allowed" below holds for it, and "denied" rests on the explicit denies.
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
            'ecr:BatchGetImage',
            'ecr:GetDownloadUrlForLayer',
            'ecr:Describe*',
            'ec2:Describe*',
            'ec2:GetConsoleOutput',
            'ssm:Get*',
            'ssm:Describe*',
            'iam:Get*',
            'iam:List*',
            'cloudtrail:LookupEvents',
            'athena:GetQueryResults',
            'codebuild:BatchGetBuilds',
            'cloudformation:GetTemplate',
            'secretsmanager:DescribeSecret',
            'sts:GetCallerIdentity',
          ],
          Resource: '*',
        },
      ],
    };
    const asPlanRole = (action: string, res: string, context?: Record<string, string>) =>
      decide(
        { Version: '2012-10-17', Statement: [...readOnlyAccess.Statement, ...statePolicy.Statement] },
        { action, resource: res, accountId: dev.accountId, context },
      );

    test('attaches ReadOnlyAccess, nothing broader', () => {
      expect(resource('aws_iam_role_policy_attachment', 'dev-plan-readonly').policy_arn).toBe('arn:aws:iam::aws:policy/ReadOnlyAccess');
      const attachments = Object.values(json.resource!.aws_iam_role_policy_attachment).filter((a) => String(a.role).includes('dev-plan-role'));
      expect(attachments.map((a) => a.policy_arn)).toEqual(['arn:aws:iam::aws:policy/ReadOnlyAccess']);
    });

    test.each([
      ['s3:ListBucket', `arn:aws:s3:::${bucket}`, 'Allowed'],
      ['s3:GetObject', object('sluice/dev.tfstate'), 'Allowed'],
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
    // Each row denied with ReadOnlyAccess attached: the review's rows (H1) and the data reads before them.
    test.each([
      ['s3:GetObject', `arn:aws:s3:::${stageBucket}/incoming/upload.csv`],
      ['s3:GetObjectVersion', `arn:aws:s3:::${stageBucket}/results/upload.csv.json`],
      ['s3:GetObjectTagging', `arn:aws:s3:::${stageBucket}/incoming/upload.csv`],
      ['s3:GetObject', 'arn:aws:s3:::another-workloads-bucket/secret.txt'],
      // Another stage's state, in a bucket several stages may share, and the bootstrap's.
      ['s3:GetObject', object('sluice/stg.tfstate')],
      ['s3:GetObject', object('sluice/bootstrap.tfstate')],
      ['s3:ListBucketVersions', `arn:aws:s3:::${stageBucket}`],
      ['sqs:ReceiveMessage', arn('sqs', 'sluice-dev-intake')],
      ['dynamodb:GetItem', arn('dynamodb', 'table/sluice-dev-state')],
      ['dynamodb:Query', arn('dynamodb', 'table/sluice-dev-state')],
      ['dynamodb:Scan', arn('dynamodb', 'table/sluice-dev-state')],
      ['states:GetExecutionHistory', arn('states', 'execution:sluice-dev-jobs:batch1-x')],
      ['states:DescribeExecution', arn('states', 'execution:sluice-dev-jobs:batch1-x')],
      ['logs:GetLogEvents', arn('logs', 'log-group:/sluice/sluice-dev/worker:log-stream:worker/x')],
      ['logs:FilterLogEvents', arn('logs', 'log-group:/sluice/sluice-dev/worker')],
      ['ecs:DescribeTasks', arn('ecs', 'task/sluice-dev/abc')],
      ['cloudtrail:LookupEvents', '*'],
      ['ssm:GetParameterHistory', arn('ssm', 'parameter/any')],
      ['lambda:GetFunction', arn('lambda', 'function:other-workload')],
      ['ecr:BatchGetImage', arn('ecr', 'repository/other-workload')],
      ['athena:GetQueryResults', arn('athena', 'workgroup/primary')],
      ['codebuild:BatchGetBuilds', arn('codebuild', 'project/other')],
      ['ec2:GetConsoleOutput', arn('ec2', 'instance/i-0123')],
      ['cloudformation:GetTemplate', arn('cloudformation', 'stack/other/x')],
      ['lambda:ListFunctions', '*'],
      ['lambda:GetFunctionConfiguration', arn('lambda', 'function:other-workload')],
      ['ec2:DescribeInstanceAttribute', arn('ec2', 'instance/i-0123')],
    ])('with ReadOnlyAccess, %s on %s is still denied', async (action, res) => {
      expect(await asPlanRole(action, res)).toBe('ExplicitlyDenied');
    });

    test("keys under a prefix are not listed outside the state bucket; the backend's own listing is", async () => {
      expect(await asPlanRole('s3:ListBucket', `arn:aws:s3:::${stageBucket}`, { 's3:prefix': 'incoming/' })).toBe('ExplicitlyDenied');
      expect(await asPlanRole('s3:ListBucket', `arn:aws:s3:::${bucket}`, { 's3:prefix': 'env:/' })).toBe('Allowed');
      // HeadBucket, which refresh needs, is the same action without a prefix: it stays (docs/rolling-out.md says so).
      expect(await asPlanRole('s3:ListBucket', `arn:aws:s3:::${stageBucket}`)).toBe('Allowed');
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
      ['ec2:DescribeVpcs', '*'],
      ['ecr:DescribeRepositories', arn('ecr', 'repository/sluice-dev-worker')],
      ['iam:GetRolePolicy', `arn:aws:iam::${dev.accountId}:role/sluice-dev-task`],
      ['sts:GetCallerIdentity', '*'],
    ])('with ReadOnlyAccess, what plan reads (%s on %s) stays allowed', async (action, res) => {
      expect(await asPlanRole(action, res)).toBe('Allowed');
    });

    test('the plan role may call every service a stage has a resource of (a new resource type needs its service here)', () => {
      const types = new Set(STAGES.flatMap((stage) => Object.keys(synthStage(stage).json.resource ?? {})));
      const unknown = [...types].filter((type) => awsServiceOf(type) === undefined);
      expect(unknown).toEqual([]);
      const missing = [...types].filter((type) => !(PLAN_SERVICES as readonly string[]).includes(awsServiceOf(type)!.iam));
      expect(missing).toEqual([]);
    });

    test('the explicit deny also wins over a policy that allows everything', async () => {
      const everything: PolicyDocument = { Version: '2012-10-17', Statement: [...statePolicy.Statement, { Effect: 'Allow', Action: '*', Resource: '*' }] };
      expect(await decide(everything, { action: 's3:PutObject', resource: object('sluice/dev.tfstate'), accountId: dev.accountId })).toBe('ExplicitlyDenied');
      expect(await decide(everything, { action: 'sqs:ReceiveMessage', resource: arn('sqs', 'sluice-dev-intake'), accountId: dev.accountId })).toBe(
        'ExplicitlyDenied',
      );
      expect(await decide(everything, { action: 'iam:CreateRole', resource: `arn:aws:iam::${dev.accountId}:role/x`, accountId: dev.accountId })).toBe(
        'Allowed', // not a read: ReadOnlyAccess never grants it, and the plan role has nothing else
      );
    });
  });

  describe('deploy role: AdministratorAccess within a permissions boundary', () => {
    const boundary = policyOf('aws_iam_policy', 'dev-deploy-boundary', 'policy');
    const administrator: PolicyDocument = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
    const asDeploy = (action: string, res: string, context?: Record<string, string>) =>
      decide(administrator, { action, resource: res, accountId: dev.accountId, context }, undefined, { permissionBoundary: boundary });
    const role = (name: string) => `arn:aws:iam::${dev.accountId}:role/${name}`;
    const workloadBoundary = `arn:aws:iam::${dev.accountId}:policy/sluice-dev-workload-boundary`;

    test('is AdministratorAccess, bounded', () => {
      expect(resource('aws_iam_role_policy_attachment', 'dev-deploy-admin').policy_arn).toBe('arn:aws:iam::aws:policy/AdministratorAccess');
      expect(resource('aws_iam_role', 'dev-deploy-role').permissions_boundary).toBe('${aws_iam_policy.dev-deploy-boundary.arn}');
    });

    test.each([
      ['ecs:CreateCluster', `arn:aws:ecs:eu-west-1:${dev.accountId}:cluster/sluice-dev`, 'Allowed'],
      ['s3:PutObject', object('sluice/dev.tfstate'), 'Allowed'],
      ['s3:PutObject', object('sluice/dev.tfstate.tflock'), 'Allowed'],
      ['iam:PutRolePolicy', role('sluice-dev-task'), 'Allowed'],
      ['iam:PassRole', role('sluice-dev-task'), 'Allowed'],
      ['iam:UpdateAssumeRolePolicy', role('sluice-dev-deploy'), 'ExplicitlyDenied'],
      ['iam:AttachRolePolicy', role('sluice-dev-plan'), 'ExplicitlyDenied'],
      ['iam:DeleteRolePermissionsBoundary', role('sluice-dev-deploy'), 'ExplicitlyDenied'],
      ['iam:CreatePolicyVersion', `arn:aws:iam::${dev.accountId}:policy/sluice-dev-deploy-boundary`, 'ExplicitlyDenied'],
      ['iam:CreatePolicyVersion', workloadBoundary, 'ExplicitlyDenied'],
      ['iam:DeleteOpenIDConnectProvider', providerArn, 'ExplicitlyDenied'],
      ['s3:DeleteBucket', `arn:aws:s3:::${bucket}`, 'ExplicitlyDenied'],
      ['s3:PutBucketPolicy', `arn:aws:s3:::${bucket}`, 'ExplicitlyDenied'],
      ['s3:DeleteObjectVersion', object('sluice/dev.tfstate'), 'ExplicitlyDenied'],
      ['iam:CreateAccessKey', `arn:aws:iam::${dev.accountId}:user/someone`, 'ExplicitlyDenied'],
      // M1, the review's rows: escalation and persistence.
      ['iam:AttachRolePolicy', role('backdoor'), 'ExplicitlyDenied'],
      ['iam:UpdateAssumeRolePolicy', role('sluice-prod-task'), 'ExplicitlyDenied'],
      ['iam:CreateOpenIDConnectProvider', `arn:aws:iam::${dev.accountId}:oidc-provider/attacker.example`, 'ExplicitlyDenied'],
      ['sts:AssumeRole', role('OrganizationAccountAccessRole'), 'ExplicitlyDenied'],
      ['iam:PutUserPolicy', `arn:aws:iam::${dev.accountId}:user/existing-user`, 'ExplicitlyDenied'],
      ['iam:CreateServiceSpecificCredential', `arn:aws:iam::${dev.accountId}:user/existing-user`, 'ExplicitlyDenied'],
      ['iam:UploadSSHPublicKey', `arn:aws:iam::${dev.accountId}:user/existing-user`, 'ExplicitlyDenied'],
      ['s3:PutReplicationConfiguration', `arn:aws:s3:::${bucket}`, 'ExplicitlyDenied'],
      ['s3:PutInventoryConfiguration', `arn:aws:s3:::${bucket}`, 'ExplicitlyDenied'],
      ['s3:PutBucketObjectLockConfiguration', `arn:aws:s3:::${bucket}`, 'ExplicitlyDenied'],
      ['cloudtrail:StopLogging', `arn:aws:cloudtrail:eu-west-1:${dev.accountId}:trail/org-trail`, 'ExplicitlyDenied'],
      ['guardduty:DeleteDetector', `arn:aws:guardduty:eu-west-1:${dev.accountId}:detector/x`, 'ExplicitlyDenied'],
      ['config:StopConfigurationRecorder', '*', 'ExplicitlyDenied'],
      ['iam:PassRole', role('OrganizationAccountAccessRole'), 'ExplicitlyDenied'],
      ['iam:PutRolePolicy', role('sluice-dev-deploy'), 'ExplicitlyDenied'],
      ['iam:PassRole', role('sluice-dev-deploy'), 'ExplicitlyDenied'],
      ['iam:PutRolePolicy', role('sluice-dev-smoke'), 'ExplicitlyDenied'],
      // Another workload's code and data stay out of an apply's reach.
      ['lambda:UpdateFunctionCode', `arn:aws:lambda:eu-west-1:${dev.accountId}:function:other-workload`, 'ExplicitlyDenied'],
      ['lambda:InvokeFunction', `arn:aws:lambda:eu-west-1:${dev.accountId}:function:other-workload`, 'ExplicitlyDenied'],
      ['lambda:UpdateFunctionCode', `arn:aws:lambda:eu-west-1:${dev.accountId}:function:sluice-dev-dispatcher`, 'Allowed'],
      ['s3:GetObject', 'arn:aws:s3:::another-workloads-bucket/secret.txt', 'ExplicitlyDenied'],
      ['s3:DeleteObjectVersion', `arn:aws:s3:::sluice-dev-${dev.accountId}-eu-west-1/incoming/a.csv`, 'Allowed'],
      ['s3:GetObject', object('sluice/dev.tfstate'), 'Allowed'],
    ])('%s on %s is %s', async (action, res, expected) => {
      expect(await asDeploy(action, res)).toBe(expected);
    });

    test("lets ECS create its service-linked role (a new account's first deploy), and no other service's", async () => {
      const slr = `arn:aws:iam::${dev.accountId}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS`;
      expect(await asDeploy('iam:CreateServiceLinkedRole', slr, { 'iam:AWSServiceName': 'ecs.amazonaws.com' })).toBe('Allowed');
      expect(await asDeploy('iam:CreateServiceLinkedRole', slr, { 'iam:AWSServiceName': 'organizations.amazonaws.com' })).toBe('ExplicitlyDenied');
    });

    test('creates roles only with the workload boundary, and only named with the stage prefix', async () => {
      expect(await asDeploy('iam:CreateRole', role('sluice-dev-task'), { 'iam:PermissionsBoundary': workloadBoundary })).toBe('Allowed');
      expect(await asDeploy('iam:CreateRole', role('sluice-dev-task'))).toBe('ExplicitlyDenied');
      expect(
        await asDeploy('iam:CreateRole', role('sluice-dev-task'), {
          'iam:PermissionsBoundary': `arn:aws:iam::${dev.accountId}:policy/sluice-dev-deploy-boundary`,
        }),
      ).toBe('ExplicitlyDenied');
      expect(await asDeploy('iam:CreateRole', role('backdoor'), { 'iam:PermissionsBoundary': workloadBoundary })).toBe('ExplicitlyDenied');
      expect(await asDeploy('iam:PutRolePermissionsBoundary', role('sluice-dev-task'), { 'iam:PermissionsBoundary': workloadBoundary })).toBe('Allowed');
      expect(await asDeploy('iam:DeleteRolePermissionsBoundary', role('sluice-dev-task'))).toBe('ExplicitlyDenied');
    });

    test("in an account with two stages, neither may write the other's state", async () => {
      const shared: BootstrapAccount = {
        ...dev,
        stages: [
          ...dev.stages,
          {
            stage: 'qa',
            region: 'eu-west-1',
            stateKey: 'sluice/qa.tfstate',
            namePrefix: 'sluice-qa',
            imageRepository: 'sluice-qa-worker',
            smoke: { bucket: 'sluice-qa-bucket', inputPrefix: 'incoming/', resultsPrefix: 'results/' },
            pullRequestPlans: true,
          },
        ],
      };
      const two = synthBootstrap(shared);
      const qaBoundary = JSON.parse(two.resource!.aws_iam_policy['qa-deploy-boundary'].policy as string) as PolicyDocument;
      const asQa = (action: string, res: string) =>
        decide(administrator, { action, resource: res, accountId: dev.accountId }, undefined, { permissionBoundary: qaBoundary });
      expect(await asQa('s3:PutObject', object('sluice/qa.tfstate'))).toBe('Allowed');
      expect(await asQa('s3:PutObject', object('sluice/dev.tfstate'))).toBe('ExplicitlyDenied');
      expect(await asQa('s3:DeleteObject', object('sluice/dev.tfstate.tflock'))).toBe('ExplicitlyDenied');
      expect(await asQa('iam:PutRolePolicy', role('sluice-dev-deploy'))).toBe('ExplicitlyDenied');
      expect(await asQa('iam:PutRolePolicy', role('sluice-dev-task'))).toBe('ExplicitlyDenied');
      expect(await asQa('iam:PutRolePolicy', role('sluice-qa-task'))).toBe('Allowed');
    });
  });

  describe("smoke role: a canary in, its job's record out, nothing else", () => {
    const smokePolicy = policyOf('aws_iam_role_policy', 'dev-smoke-policy', 'policy');
    const stageBucket = `arn:aws:s3:::sluice-dev-${dev.accountId}-eu-west-1`;
    const arn = (service: string, rest: string) => `arn:aws:${service}:eu-west-1:${dev.accountId}:${rest}`;
    const asSmoke = (action: string, res: string, context?: Record<string, string | string[]>) =>
      decide(smokePolicy, { action, resource: res, accountId: dev.accountId, context });

    test('trusted by main’s apply-stage.yml only (the job after the apply)', () => {
      const trust = policyOf('aws_iam_role', 'dev-smoke-role', 'assume_role_policy');
      const sub = (context: string, workflow: string, ref: string) =>
        `repo:example-org/sluice:${context}:job_workflow_ref:example-org/sluice/.github/workflows/${workflow}@${ref}`;
      const claims = (subject: string) => ({
        'token.actions.githubusercontent.com:sub': subject,
        'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
      });
      expect(assumeRoleWithWebIdentity(trust, providerArn, claims(sub('ref:refs/heads/main', 'apply-stage.yml', 'refs/heads/main')))).toBe('Allowed');
      expect(assumeRoleWithWebIdentity(trust, providerArn, claims(sub('pull_request', 'pull-request.yml', 'refs/pull/1/merge')))).toBe('ImplicitlyDenied');
      expect(assumeRoleWithWebIdentity(trust, providerArn, claims(sub('ref:refs/heads/feature', 'apply-stage.yml', 'refs/heads/feature')))).toBe(
        'ImplicitlyDenied',
      );
    });

    test.each([
      ['s3:PutObject', `${stageBucket}/incoming/_sluice-smoke/2026-12-07.jsonl`, undefined, 'Allowed'],
      ['s3:PutObject', `${stageBucket}/incoming/someone.csv`, undefined, 'ImplicitlyDenied'],
      ['s3:PutObject', `${stageBucket}/results/incoming/_sluice-smoke/x.jsonl.json`, undefined, 'ImplicitlyDenied'],
      ['s3:GetObject', `${stageBucket}/results/incoming/_sluice-smoke/x.jsonl.json`, undefined, 'Allowed'],
      ['s3:GetObject', `${stageBucket}/results/incoming/someone.csv.json`, undefined, 'ImplicitlyDenied'],
      ['s3:GetObject', `${stageBucket}/incoming/someone.csv`, undefined, 'ImplicitlyDenied'],
      ['dynamodb:BatchGetItem', arn('dynamodb', 'table/sluice-dev-state'), { 'dynamodb:LeadingKeys': ['JOB#abc'] }, 'Allowed'],
      ['dynamodb:BatchGetItem', arn('dynamodb', 'table/sluice-dev-state'), { 'dynamodb:LeadingKeys': ['POOL'] }, 'ImplicitlyDenied'],
      ['dynamodb:UpdateItem', arn('dynamodb', 'table/sluice-dev-state'), { 'dynamodb:LeadingKeys': ['JOB#abc'] }, 'ImplicitlyDenied'],
      ['sqs:GetQueueAttributes', arn('sqs', 'sluice-dev-intake-dlq'), undefined, 'Allowed'],
      ['sqs:ReceiveMessage', arn('sqs', 'sluice-dev-intake-dlq'), undefined, 'ImplicitlyDenied'],
      ['states:GetExecutionHistory', arn('states', 'execution:sluice-dev-jobs:batch-1'), undefined, 'Allowed'],
      ['states:StartExecution', arn('states', 'stateMachine:sluice-dev-jobs'), undefined, 'ImplicitlyDenied'],
    ])('%s on %s (%j): %s', async (action, res, context, expected) => {
      expect(await asSmoke(action, res, context)).toBe(expected);
    });
  });

  describe("workload boundary: what the stage's own roles can ever be given", () => {
    const boundary = policyOf('aws_iam_policy', 'dev-workload-boundary', 'policy');
    // dev as shipped, and packing (the finisher's role and the worker's batch-record statements).
    const devStacks = [synthStage('dev').json, synthStage('dev', packedDevConfig()).json];

    test('every role of every stage carries it', () => {
      for (const name of STAGES) {
        const roles = Object.values(synthStage(name).json.resource!.aws_iam_role);
        expect(roles.length).toBeGreaterThan(0);
        for (const r of roles) expect(r.permissions_boundary).toMatch(new RegExp(`^arn:aws:iam::\\d{12}:policy/sluice-${name}-workload-boundary$`));
      }
      const packedRoles = Object.entries(devStacks[1].resource!.aws_iam_role);
      expect(packedRoles.map(([name]) => name)).toContainEqual(expect.stringContaining('finish-task'));
      for (const [, r] of packedRoles) expect(r.permissions_boundary).toMatch(/^arn:aws:iam::\d{12}:policy\/sluice-dev-workload-boundary$/);
    });

    test("cuts nothing the stage's roles are given: every action on every resource of every role policy is within it", async () => {
      const denied: string[] = [];
      let checked = 0;
      const rolePolicies = devStacks.flatMap((stack) => Object.entries(stack.resource!.aws_iam_role_policy).map(([name, policy]) => ({ name, policy, stack })));
      for (const { name, policy: rolePolicy, stack } of rolePolicies) {
        const document = JSON.parse(resolveReferences(rolePolicy.policy as string, stack, fakeAttribute)) as PolicyDocument;
        for (const statement of document.Statement.filter((st) => st.Effect === 'Allow')) {
          for (const action of [statement.Action ?? []].flat()) {
            for (const pattern of [statement.Resource ?? '*'].flat()) {
              checked++;
              // A concrete resource the statement matches: a wildcard inside an ARN stands for any name (a log group's
              // trailing `:*` for its streams). The boundary alone is asked: the role's own conditions are its tests'.
              const res = pattern === '*' ? '*' : pattern.replace(/:log-group:([^:]+):\*$/, ':log-group:$1:log-stream:x').replaceAll('*', 'x');
              const decision = await decide(boundary, { action, resource: res, accountId: dev.accountId }).catch((error: Error) => error.message);
              if (decision !== 'Allowed') denied.push(`${name}: ${action} on ${res} → ${decision}`);
            }
          }
        }
      }
      expect(checked).toBeGreaterThan(30);
      expect(denied).toEqual([]);
    });

    test.each([
      ['s3:GetObject', 'arn:aws:s3:::another-workloads-bucket/secret.txt'],
      ['s3:GetObject', `arn:aws:s3:::${bucket}/sluice/dev.tfstate`],
      ['lambda:UpdateFunctionCode', `arn:aws:lambda:eu-west-1:${dev.accountId}:function:other-workload`],
      ['dynamodb:Scan', `arn:aws:dynamodb:eu-west-1:${dev.accountId}:table/other-workload`],
      ['sqs:ReceiveMessage', `arn:aws:sqs:eu-west-1:${dev.accountId}:other-queue`],
      ['iam:CreateRole', `arn:aws:iam::${dev.accountId}:role/backdoor`],
      ['iam:AttachRolePolicy', `arn:aws:iam::${dev.accountId}:role/sluice-dev-task`],
      ['iam:PassRole', `arn:aws:iam::${dev.accountId}:role/OrganizationAccountAccessRole`],
      ['sts:AssumeRole', `arn:aws:iam::${dev.accountId}:role/OrganizationAccountAccessRole`],
      ['organizations:LeaveOrganization', '*'],
      ['ec2:RunInstances', '*'],
      ['secretsmanager:GetSecretValue', '*'],
    ])('a stage role given everything still may not %s on %s', async (action, res) => {
      const everything: PolicyDocument = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
      expect(await decide(everything, { action, resource: res, accountId: dev.accountId }, undefined, { permissionBoundary: boundary })).not.toBe('Allowed');
    });
  });
});
