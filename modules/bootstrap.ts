import { IamOpenidConnectProvider } from '@cdktf/provider-aws/lib/iam-openid-connect-provider';
import { IamPolicy } from '@cdktf/provider-aws/lib/iam-policy';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { IamRolePolicyAttachment } from '@cdktf/provider-aws/lib/iam-role-policy-attachment';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { S3BucketLifecycleConfiguration } from '@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration';
import { LocalBackend, TerraformOutput, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { PrivateBucket } from './private-bucket';
import type { BootstrapAccount, BootstrapConfig } from '../environments/bootstrap-schema';
import {
  GITHUB_OIDC_AUDIENCE,
  GITHUB_OIDC_HOST,
  WORKFLOW_FILES,
  applySubject,
  deployRoleName,
  githubOidcProviderArn,
  mainBranchSubject,
  planRoleName,
  policyArn,
  pullRequestPlanSubject,
  roleArn,
  smokeRoleName,
  stateLockKey,
  workloadBoundaryName,
} from '../environments/ci-roles';
import { intakeDeadLetterQueueName, SMOKE_FOLDER, stateMachineName, stateTableName } from '../environments/names';
import { leadingKeys, STATE_ITEMS } from './state-table';
import { githubActionsTrustPolicy, policyJson, type PolicyStatement } from './iam';
import { requiredTerraformVersion } from './toolchain';

export function bootstrapStackName(accountId: string): string {
  return `sluice-bootstrap-${accountId}`;
}

interface BootstrapStackProps {
  readonly config: BootstrapConfig;
  readonly account: BootstrapAccount;
  /** The local state file, relative to the stack's directory (`terraform -chdir=<stack dir>`). */
  readonly localStatePath: string;
}

/**
 * What must exist before any stage can be planned from CI, applied once per account by an admin with local
 * state: the account's Terraform state bucket, the GitHub OIDC provider, and per stage a plan and a deploy role.
 */
export class BootstrapStack extends TerraformStack {
  readonly stateBucketArn: string;
  readonly oidcProviderArn: string;

  constructor(scope: Construct, id: string, props: BootstrapStackProps) {
    super(scope, id);
    const { config, account } = props;
    this.localStateAndProvider(account, props.localStatePath);
    this.stateBucketArn = this.stateBucket(account, config.state);
    this.oidcProviderArn = this.githubOidcProvider(account);
    for (const stage of account.stages) {
      this.planRole(config.github, account, stage);
      this.smokeRole(config.github, account, stage);
      this.workloadBoundary(account, stage);
      this.deployRole(config.github, account, stage);
    }
    this.outputs(account);
  }

  /** Local state (the state bucket cannot hold its own state before it exists) and a provider pinned to the account. */
  private localStateAndProvider(account: BootstrapAccount, localStatePath: string): void {
    new LocalBackend(this, { path: localStatePath });
    this.addOverride('terraform.required_version', requiredTerraformVersion());
    new AwsProvider(this, 'aws', {
      region: account.region,
      allowedAccountIds: [account.accountId],
      defaultTags: [{ tags: { project: 'sluice', 'sluice:stage': 'bootstrap' } }],
    });
  }

  /** The state bucket, versioned: every apply writes a new version, and a bad state is restored by promoting the previous one. */
  private stateBucket(account: BootstrapAccount, retention: BootstrapConfig['state']): string {
    const { bucket } = new PrivateBucket(this, 'state', {
      bucketName: account.stateBucket,
      lifecycle: { preventDestroy: true }, // it holds every stage's state: destroying it is never a plan's business
    });
    new S3BucketLifecycleConfiguration(this, 'state-lifecycle', {
      bucket: bucket.id,
      rule: [
        {
          id: 'expire-old-state-versions',
          status: 'Enabled',
          filter: [{}],
          noncurrentVersionExpiration: [
            { noncurrentDays: retention.noncurrentVersionRetentionDays, newerNoncurrentVersions: retention.noncurrentVersionsKept },
          ],
          abortIncompleteMultipartUpload: [{ daysAfterInitiation: 7 }],
        },
      ],
    });
    return bucket.arn;
  }

  /** The account's GitHub OIDC provider: created here, or one that exists already (an account has at most one per URL). */
  private githubOidcProvider(account: BootstrapAccount): string {
    if (account.oidcProvider.kind === 'existing') return account.oidcProvider.arn;
    // No thumbprint: IAM verifies GitHub's certificate against its own trusted CAs (thumbprints are ignored for it).
    const provider = new IamOpenidConnectProvider(this, 'github-oidc', {
      url: `https://${GITHUB_OIDC_HOST}`,
      clientIdList: [GITHUB_OIDC_AUDIENCE],
    });
    return provider.arn;
  }

  /**
   * Plan: from main, the rollout's plan of the stage (before its apply is approved) and the drift check; and pull
   * requests, for the stages listed in `github.pullRequestPlans` only (a pull request runs its own code with the role).
   */
  private planRole(github: BootstrapConfig['github'], account: BootstrapAccount, { stage, stateKey, namePrefix, pullRequestPlans }: BootstrapStageOf): void {
    const { bucketArn, objectArn } = stateBucketArns(account);
    const plan = new IamRole(this, `${stage}-plan-role`, {
      name: planRoleName(stage),
      description: `sluice ${stage}: terraform plan from GitHub Actions (rollout, drift check${pullRequestPlans ? ', pull requests' : ''})`,
      assumeRolePolicy: githubActionsTrustPolicy(this.oidcProviderArn, GITHUB_OIDC_HOST, GITHUB_OIDC_AUDIENCE, [
        mainBranchSubject(github, WORKFLOW_FILES.applyStage),
        mainBranchSubject(github, WORKFLOW_FILES.drift),
        ...(pullRequestPlans ? [pullRequestPlanSubject(github)] : []),
      ]),
      maxSessionDuration: 3600,
    });
    // ReadOnlyAccess is the pragmatic choice for `terraform plan`: refresh calls Describe/Get/List on every
    // resource type in the stage, a list that grows with each module; AWS maintains ReadOnlyAccess as services
    // add read APIs, a hand-kept list would break plans silently. It grants no write to anything.
    new IamRolePolicyAttachment(this, `${stage}-plan-readonly`, {
      role: plan.name,
      policyArn: `arn:${account.partition}:iam::aws:policy/ReadOnlyAccess`,
    });
    new IamRolePolicy(this, `${stage}-plan-state`, {
      name: 'terraform-state-read-no-data',
      role: plan.id,
      policy: policyJson(
        ...planStatePolicy({ bucketArn, objectArn, stateKey, functionArns: `arn:${account.partition}:lambda:*:${account.accountId}:function:${namePrefix}-*` }),
      ),
    });
  }

  /**
   * Smoke: the rollout's check after each apply, from main's `apply-stage.yml` (no environment, as its plan): puts a
   * canary in the stage's smoke folder and reads what `sluice smoke` follows — the job's ledger row, the result, the
   * intake DLQ's depth, the execution's history. Nothing else: it runs the project's CLI, so it holds no more.
   */
  private smokeRole(github: BootstrapConfig['github'], account: BootstrapAccount, { stage, namePrefix, smoke }: BootstrapStageOf): void {
    const { partition, accountId } = account;
    const arn = (service: string, resource: string) => `arn:${partition}:${service}:*:${accountId}:${resource}`;
    const role = new IamRole(this, `${stage}-smoke-role`, {
      name: smokeRoleName(stage),
      description: `sluice ${stage}: the rollout's smoke test (sluice smoke) after an apply`,
      assumeRolePolicy: githubActionsTrustPolicy(this.oidcProviderArn, GITHUB_OIDC_HOST, GITHUB_OIDC_AUDIENCE, [
        mainBranchSubject(github, WORKFLOW_FILES.applyStage),
      ]),
      maxSessionDuration: 3600,
    });
    const objects = `arn:${partition}:s3:::${smoke.bucket}`;
    new IamRolePolicy(this, `${stage}-smoke-policy`, {
      name: 'canary-in-record-out',
      role: role.id,
      policy: policyJson(
        { Sid: 'PutTheCanary', Effect: 'Allow', Action: 's3:PutObject', Resource: `${objects}/${smoke.inputPrefix}${SMOKE_FOLDER}*` },
        { Sid: 'ReadItsResult', Effect: 'Allow', Action: 's3:GetObject', Resource: `${objects}/${smoke.resultsPrefix}${smoke.inputPrefix}${SMOKE_FOLDER}*` },
        {
          Sid: 'ReadItsJob',
          Effect: 'Allow',
          Action: 'dynamodb:BatchGetItem',
          Resource: arn('dynamodb', `table/${stateTableName(namePrefix)}`),
          Condition: leadingKeys([STATE_ITEMS.jobs]),
        },
        {
          Sid: 'CountDeadLetters',
          Effect: 'Allow',
          Action: ['sqs:GetQueueUrl', 'sqs:GetQueueAttributes'],
          Resource: arn('sqs', intakeDeadLetterQueueName(namePrefix)),
        },
        {
          Sid: 'ReadItsExecution',
          Effect: 'Allow',
          Action: 'states:GetExecutionHistory',
          Resource: arn('states', `execution:${stateMachineName(namePrefix)}:*`),
        },
      ),
    });
  }

  /** The boundary every role the stage creates must carry (the deploy role may create roles only with it). */
  private workloadBoundary(account: BootstrapAccount, { stage, namePrefix, imageRepository }: BootstrapStageOf): void {
    new IamPolicy(this, `${stage}-workload-boundary`, {
      name: workloadBoundaryName(stage),
      description: `sluice ${stage}: the most any role of the stage (functions, state machine, tasks) can ever be given`,
      policy: policyJson(
        ...workloadBoundaryStatements({
          partition: account.partition,
          accountId: account.accountId,
          namePrefix,
          imageRepository,
          stateBucketArn: stateBucketArns(account).bucketArn,
        }),
      ),
    });
  }

  /** Deploy: only the apply job of main's `apply-stage.yml`, in the stage's GitHub environment. */
  private deployRole(github: BootstrapConfig['github'], account: BootstrapAccount, { stage, namePrefix }: BootstrapStageOf): void {
    const { partition } = account;
    const boundary = new IamPolicy(this, `${stage}-deploy-boundary`, {
      name: `${deployRoleName(stage)}-boundary`,
      description: `sluice ${stage}: what the deploy role may never do, whatever is attached to it`,
      policy: policyJson(...deployBoundaryStatements(deployBoundaryInputs(account, stage, namePrefix))),
    });
    const deploy = new IamRole(this, `${stage}-deploy-role`, {
      name: deployRoleName(stage),
      description: `sluice ${stage}: terraform apply from GitHub Actions (main's apply-stage.yml, environment ${stage})`,
      assumeRolePolicy: githubActionsTrustPolicy(this.oidcProviderArn, GITHUB_OIDC_HOST, GITHUB_OIDC_AUDIENCE, [applySubject(github, stage)]),
      permissionsBoundary: boundary.arn,
      maxSessionDuration: 3600,
    });
    // AdministratorAccess bounded by a permissions boundary rather than a curated list: apply creates, changes
    // and deletes every resource type the stage has (IAM roles, VPC, ECS, Step Functions, Lambda, …) and the
    // list changes with every module; a curated list fails mid-apply and leaves a half-applied stage. The
    // boundary keeps the things that must outlive a bad apply out of its reach (see deployBoundaryStatements);
    // who may apply is decided by the trust policy and the environment's reviewers.
    new IamRolePolicyAttachment(this, `${stage}-deploy-admin`, {
      role: deploy.name,
      policyArn: `arn:${partition}:iam::aws:policy/AdministratorAccess`,
    });
  }

  /** What the stages' backends and the CI workflows are configured with. */
  private outputs(account: BootstrapAccount): void {
    const { accountId, region } = account;
    new TerraformOutput(this, 'state_bucket', { value: account.stateBucket });
    new TerraformOutput(this, 'github_oidc_provider_arn', { value: this.oidcProviderArn });
    new TerraformOutput(this, 'roles', {
      value: Object.fromEntries(
        account.stages.map((s) => [
          s.stage,
          {
            plan: roleArn(accountId, region, planRoleName(s.stage)),
            deploy: roleArn(accountId, region, deployRoleName(s.stage)),
            smoke: roleArn(accountId, region, smokeRoleName(s.stage)),
          },
        ]),
      ),
    });
  }
}

/** The state bucket's ARN and its objects' (by key), built from names so policies need no reference to the bucket resource. */
function stateBucketArns(account: BootstrapAccount): { bucketArn: string; objectArn: (key: string) => string } {
  return {
    bucketArn: `arn:${account.partition}:s3:::${account.stateBucket}`,
    objectArn: (key: string) => `arn:${account.partition}:s3:::${account.stateBucket}/${key}`,
  };
}

type BootstrapStageOf = BootstrapAccount['stages'][number];

/** What one stage's deploy boundary protects: the bootstrap's roles, boundaries and provider, and every other stage's state. */
function deployBoundaryInputs(account: BootstrapAccount, stage: string, namePrefix: string): BoundaryInputs {
  const { accountId, region, partition } = account;
  return {
    ...stateBucketArns(account),
    otherStateKeys: account.stages.filter((s) => s.stage !== stage).map((s) => s.stateKey),
    protectedRoleArns: account.stages.flatMap((s) =>
      [planRoleName(s.stage), deployRoleName(s.stage), smokeRoleName(s.stage)].map((name) => roleArn(accountId, region, name)),
    ),
    boundaryArns: account.stages.flatMap((s) => [
      `arn:${partition}:iam::${accountId}:policy/${deployRoleName(s.stage)}-boundary`,
      policyArn(accountId, region, workloadBoundaryName(s.stage)),
    ]),
    oidcProviderArn: githubOidcProviderArn(accountId, region),
    stageRoleArns: roleArn(accountId, region, `${namePrefix}-*`),
    workloadBoundaryArn: policyArn(accountId, region, workloadBoundaryName(stage)),
    stageFunctionArns: `arn:${partition}:lambda:*:${accountId}:function:${namePrefix}-*`,
    stageBucketObjectArns: `arn:${partition}:s3:::${namePrefix}-*/*`,
  };
}

/**
 * The AWS services `terraform plan` of a stage calls: one per resource type the stages synthesize (see
 * modules/aws-services.ts; a test fails when a stage gains a type whose service is missing here), and STS, which the provider
 * asks for the account. Everything else ReadOnlyAccess grants — CloudTrail's event history, SSM, Athena, CodeBuild,
 * other workloads' data in services sluice does not use — is denied by `OnlyTheStageServices`.
 */
export const PLAN_SERVICES = ['cloudwatch', 'dynamodb', 'ec2', 'ecr', 'ecs', 'events', 'iam', 'lambda', 'logs', 's3', 'sns', 'sqs', 'states'] as const;

/**
 * Data-plane reads ReadOnlyAccess grants in the stage's own services that `terraform plan` never needs: a refresh
 * reads resources' configuration, not their contents. A receive is not even read-only — it hides the message and
 * counts toward the DLQ — so a plan role that could receive could push live jobs to the dead-letter queue.
 */
const PLAN_DENIED_DATA_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:Scan',
  'dynamodb:GetRecords',
  'dynamodb:GetShardIterator',
  'dynamodb:PartiQLSelect',
  'sqs:ReceiveMessage',
  'states:DescribeExecution',
  'states:GetExecutionHistory',
  'states:DescribeMapRun',
  'logs:GetLogEvents',
  'logs:FilterLogEvents',
  'logs:StartQuery',
  'logs:GetQueryResults',
  'logs:StartLiveTail',
  'logs:GetLogRecord',
  // A running job's object key is in its task's overrides.
  'ecs:DescribeTasks',
  'ecs:ListTasks',
  // Images and instances are data too; the stage has neither to refresh.
  'ecr:BatchGetImage',
  'ecr:GetDownloadUrlForLayer',
  'ec2:GetConsoleOutput',
  'ec2:GetConsoleScreenshot',
  'ec2:GetPasswordData',
  'ec2:GetLaunchTemplateData',
  'iam:GetCredentialReport',
  // Instances' user data; the stage has no instances or launch templates to refresh.
  'ec2:DescribeInstanceAttribute',
  'ec2:DescribeLaunchTemplateVersions',
  // Every function's environment variables, in one call.
  'lambda:ListFunctions',
  // Every object's key and version, in any bucket.
  's3:ListBucketVersions',
] as const;

/** Object reads, denied everywhere but the stage's own state object: uploads and results are data. */
const PLAN_DENIED_OBJECT_ACTIONS = [
  's3:GetObject',
  's3:GetObjectVersion',
  's3:GetObjectAttributes',
  's3:GetObjectVersionAttributes',
  's3:GetObjectTagging',
  's3:GetObjectVersionTagging',
  's3:GetObjectAcl',
  's3:GetObjectVersionAcl',
  's3:GetObjectLegalHold',
  's3:GetObjectRetention',
  's3:GetObjectTorrent',
  's3:GetObjectVersionTorrent',
] as const;

interface PlanStateInputs {
  readonly bucketArn: string;
  readonly objectArn: (key: string) => string;
  readonly stateKey: string;
  /** The stage's functions: GetFunction hands out a link to the code, which for other workloads is theirs. */
  readonly functionArns: string;
}

/**
 * The plan role's own policy: read its stage's state and nothing else of value. Plans run with `-lock=false`, so the
 * role never writes, not even the lock: a plan can neither delay a rollout's apply nor leave a stale lock behind. The
 * denies are explicit, so they hold over ReadOnlyAccess and over any policy attached later.
 */
function planStatePolicy({ bucketArn, objectArn, stateKey, functionArns }: PlanStateInputs): PolicyStatement[] {
  return [
    { Sid: 'ListStateBucket', Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn },
    { Sid: 'ReadState', Effect: 'Allow', Action: 's3:GetObject', Resource: objectArn(stateKey) },
    {
      Sid: 'NeverWriteState',
      Effect: 'Deny',
      Action: ['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion', 's3:RestoreObject'],
      Resource: objectArn('*'),
    },
    { Sid: 'OnlyTheStageServices', Effect: 'Deny', NotAction: [...PLAN_SERVICES.map((s) => `${s}:*`), 'sts:GetCallerIdentity'], Resource: '*' },
    // Not even another stage's state (several stages may share an account's bucket).
    { Sid: 'NoObjectReadsButItsState', Effect: 'Deny', Action: [...PLAN_DENIED_OBJECT_ACTIONS], NotResource: objectArn(stateKey) },
    // Listing keys under a prefix outside the state bucket (the backend lists `env:/` there). A list without a prefix
    // is the same action as the HeadBucket refresh needs, so it stays: see docs/rolling-out.md.
    { Sid: 'NoKeyListings', Effect: 'Deny', Action: 's3:ListBucket', NotResource: bucketArn, Condition: { Null: { 's3:prefix': 'false' } } },
    { Sid: 'NoDataPlaneReads', Effect: 'Deny', Action: [...PLAN_DENIED_DATA_ACTIONS], Resource: '*' },
    {
      Sid: 'NoOtherWorkloadsCode',
      Effect: 'Deny',
      Action: ['lambda:GetFunction', 'lambda:GetFunctionConfiguration', 'lambda:GetLayerVersion'],
      NotResource: functionArns,
    },
  ];
}

interface WorkloadScope {
  readonly partition: string;
  readonly accountId: string;
  readonly namePrefix: string;
  readonly imageRepository: string;
  readonly stateBucketArn: string;
}

/**
 * What any role of the stage can ever be given: the stage's own resources (named `<namePrefix>-…`, and its image
 * repository), the account-wide reads its functions make (metrics, quotas, the ECR login, log delivery), and passing
 * its own roles. A role an apply creates can do no more than that, whatever policy it gets: not reach another
 * workload's data or code, nor the Terraform state. A test checks every statement of every stage role against it.
 */
function workloadBoundaryStatements({ partition, accountId, namePrefix, imageRepository, stateBucketArn }: WorkloadScope): PolicyStatement[] {
  const arn = (service: string, resource: string) => `arn:${partition}:${service}:*:${accountId}:${resource}`;
  return [
    {
      Sid: 'TheStageResources',
      Effect: 'Allow',
      Action: ['dynamodb:*', 'ecs:*', 'lambda:*', 'logs:*', 's3:*', 'sqs:*', 'states:*', 'ecr:*'],
      Resource: [
        arn('dynamodb', `table/${namePrefix}-*`),
        arn('ecs', `task-definition/${namePrefix}-*`),
        arn('ecs', `task/${namePrefix}/*`),
        arn('ecs', `cluster/${namePrefix}`),
        arn('lambda', `function:${namePrefix}-*`),
        arn('logs', `log-group:/aws/lambda/${namePrefix}-*`),
        arn('logs', `log-group:/sluice/${namePrefix}/*`),
        arn('logs', `log-group:/aws/vendedlogs/states/${namePrefix}-*`),
        `arn:${partition}:s3:::${namePrefix}-*`,
        arn('sqs', `${namePrefix}-*`),
        arn('states', `stateMachine:${namePrefix}-*`),
        arn('states', `execution:${namePrefix}-*`),
        arn('ecr', `repository/${imageRepository}`),
      ],
    },
    // Step Functions' .sync integrations keep managed rules of their own (StepFunctionsGetEventsFor…).
    { Sid: 'StepFunctionsManagedRules', Effect: 'Allow', Action: 'events:*', Resource: arn('events', 'rule/StepFunctions*') },
    {
      Sid: 'AccountWideReadsAndDelivery',
      Effect: 'Allow',
      Action: [
        'cloudwatch:GetMetricData',
        'cloudwatch:GetMetricStatistics',
        'cloudwatch:ListMetrics',
        'servicequotas:Get*',
        'servicequotas:List*',
        'ecr:GetAuthorizationToken',
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
    { Sid: 'PassOnlyTheStageRoles', Effect: 'Allow', Action: 'iam:PassRole', Resource: `arn:${partition}:iam::${accountId}:role/${namePrefix}-*` },
    // A prefix may be short enough to match the state bucket's name: it is never the stage's.
    { Sid: 'NeverTheState', Effect: 'Deny', Action: 's3:*', Resource: [stateBucketArn, `${stateBucketArn}/*`] },
  ];
}

interface BoundaryInputs {
  readonly bucketArn: string;
  readonly objectArn: (key: string) => string;
  readonly otherStateKeys: readonly string[];
  readonly protectedRoleArns: readonly string[];
  readonly boundaryArns: readonly string[];
  readonly oidcProviderArn: string;
  /** The roles the stage creates: `<namePrefix>-*`. */
  readonly stageRoleArns: string;
  readonly workloadBoundaryArn: string;
  /** The stage's functions and buckets (`<namePrefix>-*`): the only ones an apply changes. */
  readonly stageFunctionArns: string;
  readonly stageBucketObjectArns: string;
}

/**
 * The deploy role's permissions boundary: everything, except what the bootstrap owns, other stages' state, and what
 * would let an apply widen its own reach or outlive a fix (new identities, trust rewrites, audit switched off).
 */
function deployBoundaryStatements(inputs: BoundaryInputs): PolicyStatement[] {
  return [
    { Sid: 'AllowWhatIsNotDeniedBelow', Effect: 'Allow', Action: '*', Resource: '*' },
    ...keepBootstrapIam(inputs),
    ...onlyBoundedStageRoles(inputs),
    ...onlyTheStageCodeAndObjects(inputs),
    ...noNewIdentities(),
    ...keepAuditOn(),
    ...keepStateBucket(inputs),
    ...keepOtherStagesState(inputs),
  ];
}

/** The delivery roles, their boundaries and the OIDC provider: a deploy that could change them could widen its own reach. */
function keepBootstrapIam(inputs: BoundaryInputs): PolicyStatement[] {
  return [
    {
      Sid: 'KeepDeliveryRoles',
      Effect: 'Deny',
      Action: [
        'iam:AttachRolePolicy',
        'iam:DetachRolePolicy',
        'iam:PutRolePolicy',
        'iam:DeleteRolePolicy',
        'iam:UpdateAssumeRolePolicy',
        'iam:UpdateRole',
        'iam:DeleteRole',
        'iam:PutRolePermissionsBoundary',
        'iam:DeleteRolePermissionsBoundary',
        'iam:PassRole',
        'iam:TagRole',
        'iam:UntagRole',
      ],
      Resource: inputs.protectedRoleArns,
    },
    {
      Sid: 'KeepBoundaries',
      Effect: 'Deny',
      Action: ['iam:CreatePolicyVersion', 'iam:DeletePolicyVersion', 'iam:SetDefaultPolicyVersion', 'iam:DeletePolicy'],
      Resource: inputs.boundaryArns,
    },
    {
      Sid: 'KeepGithubOidcProvider',
      Effect: 'Deny',
      Action: [
        'iam:DeleteOpenIDConnectProvider',
        'iam:UpdateOpenIDConnectProviderThumbprint',
        'iam:AddClientIDToOpenIDConnectProvider',
        'iam:RemoveClientIDFromOpenIDConnectProvider',
      ],
      Resource: inputs.oidcProviderArn,
    },
  ];
}

/**
 * Roles: only the stage's own (`<namePrefix>-*`) are created, changed or passed, and each carries the workload
 * boundary for good. No apply can mint a role that outranks the stage, nor rewrite who may assume another.
 */
function onlyBoundedStageRoles(inputs: BoundaryInputs): PolicyStatement[] {
  return [
    {
      Sid: 'OnlyTheStageRoles',
      Effect: 'Deny',
      Action: [
        'iam:CreateRole',
        'iam:DeleteRole',
        'iam:UpdateRole',
        'iam:UpdateAssumeRolePolicy',
        'iam:AttachRolePolicy',
        'iam:DetachRolePolicy',
        'iam:PutRolePolicy',
        'iam:DeleteRolePolicy',
        'iam:PassRole',
        'iam:TagRole',
        'iam:UntagRole',
      ],
      NotResource: inputs.stageRoleArns,
    },
    // A first deploy in a new account has ECS create its service-linked role (capacity providers need it); no other.
    {
      Sid: 'OnlyTheServiceLinkedRolesTheStageNeeds',
      Effect: 'Deny',
      Action: ['iam:CreateServiceLinkedRole', 'iam:DeleteServiceLinkedRole'],
      Resource: '*',
      Condition: { StringNotEquals: { 'iam:AWSServiceName': ['ecs.amazonaws.com'] } },
    },
    {
      Sid: 'NewRolesCarryTheWorkloadBoundary',
      Effect: 'Deny',
      Action: ['iam:CreateRole', 'iam:PutRolePermissionsBoundary'],
      Resource: '*',
      Condition: { StringNotEquals: { 'iam:PermissionsBoundary': inputs.workloadBoundaryArn } },
    },
    { Sid: 'BoundariesStay', Effect: 'Deny', Action: 'iam:DeleteRolePermissionsBoundary', Resource: '*' },
    { Sid: 'NoRoleHopping', Effect: 'Deny', Action: ['sts:AssumeRole', 'sts:AssumeRoleWithSAML', 'sts:AssumeRoleWithWebIdentity'], Resource: '*' },
  ];
}

/**
 * An apply changes the stage's own functions and objects only: not another workload's code (whose role may be
 * unbounded) nor its data. Objects: the state (the backend's) and the stage's buckets (force_destroy empties them).
 */
function onlyTheStageCodeAndObjects(inputs: BoundaryInputs): PolicyStatement[] {
  return [
    {
      Sid: 'OnlyTheStageFunctions',
      Effect: 'Deny',
      Action: [
        'lambda:CreateFunction',
        'lambda:UpdateFunctionCode',
        'lambda:UpdateFunctionConfiguration',
        'lambda:DeleteFunction',
        'lambda:AddPermission',
        'lambda:RemovePermission',
        'lambda:PublishVersion',
        'lambda:CreateAlias',
        'lambda:UpdateAlias',
        'lambda:PutFunctionConcurrency',
        'lambda:PutFunctionEventInvokeConfig',
        'lambda:CreateFunctionUrlConfig',
        'lambda:UpdateFunctionUrlConfig',
        'lambda:InvokeFunction',
      ],
      NotResource: inputs.stageFunctionArns,
    },
    {
      Sid: 'OnlyTheStageObjects',
      Effect: 'Deny',
      Action: ['s3:GetObject*', 's3:PutObject*', 's3:DeleteObject*', 's3:RestoreObject', 's3:ReplicateObject'],
      NotResource: [inputs.objectArn('*'), inputs.stageBucketObjectArns],
    },
  ];
}

/** Identities that outlive a fix: users, their credentials and groups, and new identity providers. */
function noNewIdentities(): PolicyStatement[] {
  return [
    {
      Sid: 'NoNewIdentities',
      Effect: 'Deny',
      Action: [
        'iam:CreateUser',
        'iam:CreateAccessKey',
        'iam:UpdateAccessKey',
        'iam:CreateLoginProfile',
        'iam:UpdateLoginProfile',
        'iam:CreateServiceSpecificCredential',
        'iam:ResetServiceSpecificCredential',
        'iam:UploadSSHPublicKey',
        'iam:UploadSigningCertificate',
        'iam:CreateVirtualMFADevice',
        'iam:EnableMFADevice',
        'iam:PutUserPolicy',
        'iam:AttachUserPolicy',
        'iam:PutUserPermissionsBoundary',
        'iam:DeleteUserPermissionsBoundary',
        'iam:AddUserToGroup',
        'iam:CreateGroup',
        'iam:PutGroupPolicy',
        'iam:AttachGroupPolicy',
        'iam:CreateOpenIDConnectProvider',
        'iam:CreateSAMLProvider',
        'iam:UpdateSAMLProvider',
        'iam:CreateInstanceProfile',
        'iam:AddRoleToInstanceProfile',
        'iam:UpdateAccountPasswordPolicy',
        'iam:DeleteAccountPasswordPolicy',
        'organizations:*',
        'account:*',
        'sso:*',
        'identitystore:*',
      ],
      Resource: '*',
    },
  ];
}

/** What records and watches the account: no apply may switch it off or redirect it. */
function keepAuditOn(): PolicyStatement[] {
  return [
    {
      Sid: 'KeepAuditOn',
      Effect: 'Deny',
      Action: [
        'cloudtrail:StopLogging',
        'cloudtrail:DeleteTrail',
        'cloudtrail:UpdateTrail',
        'cloudtrail:PutEventSelectors',
        'cloudtrail:PutInsightSelectors',
        'cloudtrail:DeleteEventDataStore',
        'cloudtrail:StopEventDataStoreIngestion',
        'guardduty:DeleteDetector',
        'guardduty:UpdateDetector',
        'guardduty:DisassociateFromMasterAccount',
        'guardduty:DisassociateFromAdministratorAccount',
        'guardduty:DeleteMembers',
        'guardduty:StopMonitoringMembers',
        'guardduty:CreateFilter',
        'guardduty:UpdateFilter',
        'guardduty:CreateIPSet',
        'guardduty:UpdateIPSet',
        'config:StopConfigurationRecorder',
        'config:DeleteConfigurationRecorder',
        'config:DeleteDeliveryChannel',
        'config:DeleteConfigRule',
        'securityhub:DisableSecurityHub',
        'securityhub:DisassociateFromAdministratorAccount',
        'access-analyzer:DeleteAnalyzer',
        'macie2:DisableMacie',
        'detective:DeleteGraph',
      ],
      Resource: '*',
    },
  ];
}

/** The state bucket's settings and its version history: what a bad apply must not be able to take with it. */
function keepStateBucket(inputs: BoundaryInputs): PolicyStatement[] {
  return [
    {
      Sid: 'KeepStateBucket',
      Effect: 'Deny',
      Action: [
        's3:DeleteBucket',
        's3:PutBucketPolicy',
        's3:DeleteBucketPolicy',
        's3:PutBucketVersioning',
        's3:PutLifecycleConfiguration',
        's3:PutEncryptionConfiguration',
        's3:PutBucketPublicAccessBlock',
        's3:PutBucketOwnershipControls',
        's3:PutBucketAcl',
        // Copies of every state elsewhere, or a lock that outlives the retention rule.
        's3:PutReplicationConfiguration',
        's3:PutInventoryConfiguration',
        's3:PutAnalyticsConfiguration',
        's3:PutBucketObjectLockConfiguration',
        's3:PutBucketNotification',
        's3:PutBucketLogging',
        's3:PutAccelerateConfiguration',
        's3:PutBucketWebsite',
        's3:PutBucketCORS',
      ],
      Resource: inputs.bucketArn,
    },
    // State history is what a rollback of state restores from; only the lifecycle rule expires it.
    {
      Sid: 'KeepStateHistory',
      Effect: 'Deny',
      Action: ['s3:DeleteObjectVersion', 's3:PutObjectLegalHold', 's3:PutObjectRetention'],
      Resource: inputs.objectArn('*'),
    },
  ];
}

/** Other stages' state and locks (none when the stage is alone in its account): one stage's apply never writes another's. */
function keepOtherStagesState(inputs: BoundaryInputs): PolicyStatement[] {
  if (inputs.otherStateKeys.length === 0) return [];
  return [
    {
      Sid: 'KeepOtherStagesState',
      Effect: 'Deny',
      Action: ['s3:PutObject', 's3:DeleteObject'],
      Resource: inputs.otherStateKeys.flatMap((key) => [inputs.objectArn(key), inputs.objectArn(stateLockKey(key))]),
    },
  ];
}
