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
  branchSubject,
  deployRoleName,
  environmentSubject,
  githubOidcProviderArn,
  planRoleName,
  pullRequestSubject,
  roleArn,
  stateLockKey,
} from './ci-roles';
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
    for (const { stage, stateKey } of account.stages) {
      this.planRole(config.github, account, stage, stateKey);
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
   * Plan: pull requests of the repository; also the main branch without an environment, for the scheduled
   * drift check (read-only, so it never waits for an environment's reviewers).
   */
  private planRole(github: BootstrapConfig['github'], account: BootstrapAccount, stage: string, stateKey: string): void {
    const { owner, repository, mainBranch } = github;
    const { bucketArn, objectArn } = stateBucketArns(account);
    const plan = new IamRole(this, `${stage}-plan-role`, {
      name: planRoleName(stage),
      description: `sluice ${stage}: terraform plan from GitHub Actions (pull requests, drift check)`,
      assumeRolePolicy: githubActionsTrustPolicy(this.oidcProviderArn, GITHUB_OIDC_HOST, GITHUB_OIDC_AUDIENCE, [
        pullRequestSubject(owner, repository),
        branchSubject(owner, repository, mainBranch),
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
      policy: policyJson(...planStatePolicy(bucketArn, objectArn, stateKey)),
    });
  }

  /** Deploy: only jobs of the stage's GitHub environment (whose deployment-branch rule admits main only). */
  private deployRole(github: BootstrapConfig['github'], account: BootstrapAccount, stage: string): void {
    const { partition } = account;
    const boundary = new IamPolicy(this, `${stage}-deploy-boundary`, {
      name: `${deployRoleName(stage)}-boundary`,
      description: `sluice ${stage}: what the deploy role may never do, whatever is attached to it`,
      policy: policyJson(...deployBoundaryStatements(deployBoundaryInputs(account, stage))),
    });
    const deploy = new IamRole(this, `${stage}-deploy-role`, {
      name: deployRoleName(stage),
      description: `sluice ${stage}: terraform apply from GitHub Actions (environment ${stage})`,
      assumeRolePolicy: githubActionsTrustPolicy(this.oidcProviderArn, GITHUB_OIDC_HOST, GITHUB_OIDC_AUDIENCE, [
        environmentSubject(github.owner, github.repository, stage),
      ]),
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
          { plan: roleArn(accountId, region, planRoleName(s.stage)), deploy: roleArn(accountId, region, deployRoleName(s.stage)) },
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

/** What one stage's deploy boundary protects: the bootstrap's roles, boundaries and provider, and every other stage's state. */
function deployBoundaryInputs(account: BootstrapAccount, stage: string): BoundaryInputs {
  const { accountId, region, partition } = account;
  return {
    ...stateBucketArns(account),
    otherStateKeys: account.stages.filter((s) => s.stage !== stage).map((s) => s.stateKey),
    protectedRoleArns: account.stages.flatMap((s) => [roleArn(accountId, region, planRoleName(s.stage)), roleArn(accountId, region, deployRoleName(s.stage))]),
    boundaryArns: account.stages.map((s) => `arn:${partition}:iam::${accountId}:policy/${deployRoleName(s.stage)}-boundary`),
    oidcProviderArn: githubOidcProviderArn(accountId, region),
  };
}

/**
 * Data-plane reads ReadOnlyAccess grants (`s3:Get*`, `sqs:Receive*`, `dynamodb:Get*`/`Query`/`Scan`, execution
 * input and history, log events, parameters) that `terraform plan` never needs: a refresh reads resources'
 * configuration, not their contents. A receive is not even read-only — it hides the message and counts toward
 * the DLQ — so a plan role that could receive could push live jobs to the dead-letter queue.
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
  'ssm:GetParameter',
  'ssm:GetParameters',
  'ssm:GetParametersByPath',
  'secretsmanager:GetSecretValue',
] as const;

/** Object reads, denied everywhere but the state bucket: uploads and results are data, the state is what plan reads. */
const PLAN_DENIED_OBJECT_ACTIONS = [
  's3:GetObject',
  's3:GetObjectVersion',
  's3:GetObjectAttributes',
  's3:GetObjectVersionAttributes',
  's3:GetObjectTorrent',
  's3:GetObjectVersionTorrent',
] as const;

/**
 * The plan role's own policy: read its stage's state and nothing else of value. Plans run with `-lock=false`
 * (pull requests and the drift check), so the role never writes, not even the lock: a plan can neither delay a
 * rollout's apply nor leave a stale lock behind.
 */
function planStatePolicy(bucketArn: string, objectArn: (key: string) => string, stateKey: string): PolicyStatement[] {
  return [
    { Sid: 'ListStateBucket', Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn },
    { Sid: 'ReadState', Effect: 'Allow', Action: 's3:GetObject', Resource: objectArn(stateKey) },
    // Explicit, so no policy attached later (or ReadOnlyAccess changing) can let a plan job write state.
    {
      Sid: 'NeverWriteState',
      Effect: 'Deny',
      Action: ['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion', 's3:RestoreObject'],
      Resource: objectArn('*'),
    },
    { Sid: 'NoObjectReadsButState', Effect: 'Deny', Action: [...PLAN_DENIED_OBJECT_ACTIONS], NotResource: objectArn('*') },
    { Sid: 'NoDataPlaneReads', Effect: 'Deny', Action: [...PLAN_DENIED_DATA_ACTIONS], Resource: '*' },
  ];
}

interface BoundaryInputs {
  readonly bucketArn: string;
  readonly objectArn: (key: string) => string;
  readonly otherStateKeys: readonly string[];
  readonly protectedRoleArns: readonly string[];
  readonly boundaryArns: readonly string[];
  readonly oidcProviderArn: string;
}

/** The deploy role's permissions boundary: everything, except what the bootstrap owns and other stages' state. */
function deployBoundaryStatements(inputs: BoundaryInputs): PolicyStatement[] {
  return [
    { Sid: 'AllowWhatIsNotDeniedBelow', Effect: 'Allow', Action: '*', Resource: '*' },
    ...keepBootstrapIam(inputs),
    ...keepStateBucket(inputs),
    {
      Sid: 'NoLongLivedCredentials',
      Effect: 'Deny',
      Action: ['iam:CreateUser', 'iam:CreateAccessKey', 'iam:CreateLoginProfile', 'iam:UpdateLoginProfile'],
      Resource: '*',
    },
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
      ],
      Resource: inputs.bucketArn,
    },
    // State history is what a rollback of state restores from; only the lifecycle rule expires it.
    { Sid: 'KeepStateHistory', Effect: 'Deny', Action: 's3:DeleteObjectVersion', Resource: inputs.objectArn('*') },
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
