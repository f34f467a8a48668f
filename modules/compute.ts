import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { EcrLifecyclePolicy } from '@cdktf/provider-aws/lib/ecr-lifecycle-policy';
import { EcrRepository } from '@cdktf/provider-aws/lib/ecr-repository';
import { EcsCluster } from '@cdktf/provider-aws/lib/ecs-cluster';
import { EcsClusterCapacityProviders } from '@cdktf/provider-aws/lib/ecs-cluster-capacity-providers';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { Construct } from 'constructs';
import { inputPrefixesOf, routeVcpuOf, stagePacks, type EnvironmentConfig } from '../environments';
import type { Bucket } from './bucket';
import type { Network } from './network';
import { batchesTableArnOf, batchesTableName, taskRoleName } from '../environments/names';
import { WORKER_CONTAINER_NAME, WORKER_PACKED_STATIC_ENV, WORKER_STATIC_ENV } from '../task-image/image-reference';
import { OUTCOMES_ATTRIBUTE } from '../functions/packing';
import { BATCHES_KEY } from './state-table';
import { runTaskStateTimeoutSeconds } from './run-jobs/timing';
import { stageMetricsNamespace } from '../functions/metrics';
import { partitionOf } from '../environments/partition';
import { policyJson, serviceTrustPolicy, type PolicyStatement } from './iam';

interface ComputeProps {
  /** The stage: its task, image, names; `allowDestroy` lets `terraform destroy` delete the repository with its images (force_delete). */
  readonly config: EnvironmentConfig;
  /** The tasks read its input prefix and write its results prefix. */
  readonly bucket: Bucket;
  /** The tasks' VPC, and where they may open HTTPS connections (the network knows what it offers). */
  readonly network: Network;
}

function workerImageOf(repository: EcrRepository, image: { readonly tag?: string; readonly digest?: string }): string {
  return image.digest ? `${repository.repositoryUrl}@${image.digest}` : `${repository.repositoryUrl}:${image.tag}`;
}

/** The uid:gid of the `node` user of the official Node.js images the worker image is built on (task-image/Dockerfile). */
const WORKER_USER = '1000:1000';

/** Task-local scratch space: the root filesystem is read-only. */
const SCRATCH_VOLUME = 'scratch';

/** A route with a task of its own. */
type OwnTaskRoute = { readonly name: string; readonly task: NonNullable<NonNullable<EnvironmentConfig['routes']>[number]['task']> };

/** What a route's jobs run on: the task definition RunTask names (with its revision), and the vCPU of one task. */
export interface RouteTask {
  readonly taskVcpu: number;
  readonly taskDefinitionArn: string;
}

/** One task definition: its family, size and image; everything else (roles, logs, container) is the stage's. */
interface TaskShape {
  readonly family: string;
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly ephemeralStorageGiB: number;
  readonly image: { readonly tag?: string; readonly digest?: string };
  readonly timeoutSeconds: number;
}

/** What every task definition of the stage shares. */
interface TaskDefinitionParts {
  readonly repository: EcrRepository;
  readonly logGroup: CloudwatchLogGroup;
  readonly executionRole: IamRole;
  readonly taskRole: IamRole;
}

/** Where a task runs and with which rights: cluster, task definition, its two roles, its network and its image. */
export class Compute extends Construct {
  readonly clusterArn: string;
  readonly clusterName: string;
  readonly taskDefinitionArn: string;
  /** The worker image the task definition names: the repository's URL with the stage's tag or digest. */
  readonly workerImage: string;
  readonly taskDefinitionFamily: string;
  /** RunTask may name any revision of this family: `arn:…:task-definition/<family>:*`. */
  readonly taskDefinitionFamilyArn: string;
  /** The stage's family and its routes' (`<family>-<route>`), any revision: what RunTask may name on a stage with routes. */
  readonly taskDefinitionFamilyArns: readonly string[];
  readonly taskRoleArn: string;
  readonly executionRoleArn: string;
  readonly securityGroupId: string;
  readonly repositoryUrl: string;
  readonly logGroupName: string;
  readonly containerName = WORKER_CONTAINER_NAME;
  /** Each route's task: its own task definition, or the stage's. */
  private readonly routeTasks: ReadonlyMap<string, RouteTask>;

  constructor(scope: Construct, id: string, props: ComputeProps) {
    super(scope, id);
    const { namePrefix } = props.config;
    const { id: accountId, region } = props.config.account;
    const family = `${namePrefix}-worker`;
    const cluster = this.cluster(props);
    const repository = this.repository(props);
    const logGroup = new CloudwatchLogGroup(this, 'logs', {
      name: `/sluice/${namePrefix}/worker`,
      retentionInDays: props.config.logRetentionDays,
    });

    const { executionRole, taskRole } = this.roles(props, repository, logGroup);
    const securityGroup = this.securityGroup(props);
    const parts = { repository, logGroup, executionRole, taskRole };
    const { task, image } = props.config;
    const shape = {
      family,
      cpu: task.cpu,
      memoryMiB: task.memoryMiB,
      ephemeralStorageGiB: task.ephemeralStorageGiB,
      image,
      timeoutSeconds: task.timeoutSeconds,
    };
    const taskDefinition = this.taskDefinition(props, 'task-definition', shape, parts);
    const routes = (props.config.routes ?? []).map((route) => ({
      route,
      own: route.task && this.routeTaskDefinition(props, shape, { name: route.name, task: route.task }, parts),
    }));
    this.routeTasks = new Map(
      routes.map(({ route, own }) => [route.name, { taskVcpu: routeVcpuOf(task, route), taskDefinitionArn: (own ?? taskDefinition).arn }]),
    );
    const familyArn = (name: string) => `arn:${partitionOf(region)}:ecs:${region}:${accountId}:task-definition/${name}:*`;

    this.clusterArn = cluster.arn;
    this.clusterName = cluster.name;
    this.taskDefinitionArn = taskDefinition.arn;
    this.workerImage = workerImageOf(repository, image);
    this.taskDefinitionFamily = family;
    this.taskDefinitionFamilyArn = familyArn(family);
    // Every route family of the stage's, present or past (`<family>-*`): a job leased for a route whose own task a
    // deploy dropped (or a route removed) still runs the revision it was leased for, as revisions are kept.
    this.taskDefinitionFamilyArns = [family, `${family}-*`].map(familyArn);
    this.taskRoleArn = taskRole.arn;
    this.executionRoleArn = executionRole.arn;
    this.securityGroupId = securityGroup.id;
    this.repositoryUrl = repository.repositoryUrl;
    this.logGroupName = logGroup.name;
  }

  /** What a route's jobs run on: its own task definition, or the stage's. */
  taskOfRoute(route: string): RouteTask {
    const task = this.routeTasks.get(route);
    if (!task) throw new Error(`the stage has no route '${route}'`);
    return task;
  }

  /** The cluster, Fargate and Fargate Spot with the stage's default strategy. */
  private cluster(props: ComputeProps): EcsCluster {
    const { namePrefix, task } = props.config;
    const cluster = new EcsCluster(this, 'cluster', {
      name: namePrefix,
      setting: [{ name: 'containerInsights', value: 'enabled' }],
    });
    new EcsClusterCapacityProviders(this, 'capacity-providers', {
      clusterName: cluster.name,
      capacityProviders: ['FARGATE', 'FARGATE_SPOT'],
      defaultCapacityProviderStrategy: task.capacityProviders.map((p) => ({
        capacityProvider: p.name,
        weight: p.weight,
        base: p.base,
      })),
    });
    return cluster;
  }

  /** The worker's image repository: immutable tags, scanned on push, untagged images expire. */
  private repository(props: ComputeProps): EcrRepository {
    const repository = new EcrRepository(this, 'repository', {
      name: props.config.image.repository,
      imageTagMutability: 'IMMUTABLE',
      forceDelete: props.config.allowDestroy,
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfiguration: [{ encryptionType: 'AES256' }],
    });
    new EcrLifecyclePolicy(this, 'repository-lifecycle', {
      repository: repository.name,
      policy: JSON.stringify({
        rules: [
          {
            rulePriority: 1,
            description: 'Expire untagged images after 14 days',
            selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 },
            action: { type: 'expire' },
          },
        ],
      }),
    });
    return repository;
  }

  /** The execution role (pull the image, write logs) and the task role (read input, write results). */
  private roles(props: ComputeProps, repository: EcrRepository, logGroup: CloudwatchLogGroup): { executionRole: IamRole; taskRole: IamRole } {
    const { namePrefix } = props.config;
    const { id: accountId, region } = props.config.account;
    const ecsTasksTrust = serviceTrustPolicy('ecs-tasks.amazonaws.com', accountId, `arn:${partitionOf(region)}:ecs:${region}:${accountId}:*`);
    const executionRole = new IamRole(this, 'execution-role', {
      name: `${namePrefix}-task-execution`,
      description: 'Lets ECS pull the worker image and write its logs',
      assumeRolePolicy: ecsTasksTrust,
    });
    new IamRolePolicy(this, 'execution-policy', {
      role: executionRole.id,
      name: 'pull-image-write-logs',
      policy: policyJson(
        { Sid: 'EcrLogin', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
        {
          Sid: 'PullWorkerImage',
          Effect: 'Allow',
          Action: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
          Resource: repository.arn,
        },
        {
          Sid: 'WriteWorkerLogs',
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: `${logGroup.arn}:*`,
        },
      ),
    });

    const taskRole = new IamRole(this, 'task-role', {
      name: taskRoleName(namePrefix),
      description: 'What the worker may do: read its input, write its result',
      assumeRolePolicy: ecsTasksTrust,
    });
    new IamRolePolicy(this, 'task-policy', {
      role: taskRole.id,
      name: 'read-input-write-results',
      policy: policyJson(
        ...taskRoleStatements(props.bucket.bucketArn, inputPrefixesOf(props.config), props.config.bucket.resultsPrefix),
        ...(stagePacks(props.config) ? packedTaskStatements(batchesTableArnOf(props.config)) : []),
      ),
    });
    return { executionRole, taskRole };
  }

  /** No inbound; HTTPS out only, to where the network says (its endpoints, when it made them). */
  private securityGroup(props: ComputeProps): SecurityGroup {
    const { namePrefix } = props.config;
    const securityGroup = new SecurityGroup(this, 'task-security-group', {
      name: `${namePrefix}-task`,
      description: 'sluice worker tasks: no inbound, HTTPS out only',
      vpcId: props.network.vpcId,
      tags: { Name: `${namePrefix}-task` },
    });
    props.network.taskEgress.forEach((way, i) => {
      new VpcSecurityGroupEgressRule(this, i === 0 ? 'task-https-out' : `task-https-out-${i}`, {
        securityGroupId: securityGroup.id,
        ipProtocol: 'tcp',
        fromPort: 443,
        toPort: 443,
        ...way,
      });
    });
    return securityGroup;
  }

  /**
   * A route's own task definition: a family of its own (a new size or image registers a revision there, the stage's
   * and the other routes' stay as they are), its size and image, the stage's ephemeral storage and image by default.
   */
  private routeTaskDefinition(props: ComputeProps, stage: TaskShape, route: OwnTaskRoute, parts: TaskDefinitionParts): { family: string; arn: string } {
    const own = route.task;
    const shape: TaskShape = {
      family: `${stage.family}-${route.name}`,
      cpu: own.cpu,
      memoryMiB: own.memoryMiB,
      ephemeralStorageGiB: own.ephemeralStorageGiB ?? stage.ephemeralStorageGiB,
      image: own.image ?? stage.image,
      timeoutSeconds: own.timeoutSeconds ?? stage.timeoutSeconds,
    };
    return { family: shape.family, arn: this.taskDefinition(props, `task-definition-${route.name}`, shape, parts).arn };
  }

  /** A task definition of the worker: the shape's family, size and image, the stage's roles, logs, architecture and timeouts. */
  private taskDefinition(props: ComputeProps, id: string, shape: TaskShape, parts: TaskDefinitionParts): EcsTaskDefinition {
    const { task } = props.config;
    const { region } = props.config.account;
    const { repository, logGroup, executionRole, taskRole } = parts;
    const image = workerImageOf(repository, shape.image);
    const taskDefinition = new EcsTaskDefinition(this, id, {
      family: shape.family,
      // A new image or size registers a new revision; the old one stays ACTIVE, because executions already
      // running name it in their RunTask retries and ECS refuses INACTIVE revisions.
      skipDestroy: true,
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
      cpu: String(shape.cpu),
      memory: String(shape.memoryMiB),
      runtimePlatform: { cpuArchitecture: task.architecture, operatingSystemFamily: 'LINUX' },
      ephemeralStorage: { sizeInGib: shape.ephemeralStorageGiB },
      executionRoleArn: executionRole.arn,
      taskRoleArn: taskRole.arn,
      volume: [{ name: SCRATCH_VOLUME }],
      containerDefinitions: JSON.stringify([
        {
          name: WORKER_CONTAINER_NAME,
          image,
          essential: true,
          readonlyRootFilesystem: true,
          mountPoints: [{ sourceVolume: SCRATCH_VOLUME, containerPath: '/tmp', readOnly: false }],
          // BUCKET, KEY, VERSION_ID, JOB_ID and STATE_ENTERED_AT come per job as container overrides (on a stage
          // that packs, BATCH, TASK_INDEX, JOB_ID and STATE_ENTERED_AT per task).
          environment: staticWorkerEnvironment(props.config, shape.timeoutSeconds),
          stopTimeout: task.stopTimeoutSeconds,
          // Not root whatever the image says (the node images' `node` user), and no Linux capability: the worker
          // reads S3 and writes S3 and /tmp, nothing a capability grants.
          user: WORKER_USER,
          linuxParameters: { initProcessEnabled: true, capabilities: { drop: ['ALL'] } },
          logConfiguration: {
            logDriver: 'awslogs',
            options: { 'awslogs-group': logGroup.name, 'awslogs-region': region, 'awslogs-stream-prefix': 'worker' },
          },
        },
      ]),
    });
    return taskDefinition;
  }
}

/**
 * The worker reads its input version and its own earlier result (the idempotency check), and writes
 * results. ListBucket, limited to those prefixes, makes a missing key a 404 instead of a 403.
 */
function taskRoleStatements(bucketArn: string, inputPrefixes: readonly string[], resultsPrefix: string): PolicyStatement[] {
  const inputs = inputPrefixes.map((prefix) => `${bucketArn}/${prefix}*`);
  return [
    {
      Sid: 'ReadInput',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:GetObjectVersion'],
      // One prefix is written as a string: a stage without routes keeps the policy it had.
      Resource: inputs.length === 1 ? inputs[0] : inputs,
    },
    {
      Sid: 'ReadAndWriteResults',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject'],
      Resource: `${bucketArn}/${resultsPrefix}*`,
    },
    {
      Sid: 'ListOwnPrefixes',
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: bucketArn,
      Condition: { StringLike: { 's3:prefix': [...inputPrefixes.map((prefix) => `${prefix}*`), `${resultsPrefix}*`] } },
    },
  ];
}

/**
 * A packed task reads its list from its batch record and records each object's end there (functions/packing.ts), and
 * may write nothing else of it. dynamodb:Attributes holds the top-level attributes an UpdateItem names (those it sets
 * and those its condition reads), and must list the key for any request to pass: "If you use dynamodb:Attributes, you
 * must specify the names of all of the primary key and index key attributes" (DynamoDB developer guide, "Using IAM
 * policy conditions for fine-grained access control", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html).
 * The worker's `SET outcomes.#job = :outcome` with `attribute_exists(execution)` names just those two. ReturnValues
 * is left open: what it could return, GetItem reads anyway.
 */
function packedTaskStatements(batchesTableArn: string): PolicyStatement[] {
  return [
    { Sid: 'ReadTheTaskList', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: batchesTableArn },
    {
      Sid: 'RecordObjectOutcomesOnly',
      Effect: 'Allow',
      Action: 'dynamodb:UpdateItem',
      Resource: batchesTableArn,
      Condition: { 'ForAllValues:StringEquals': { 'dynamodb:Attributes': [BATCHES_KEY, OUTCOMES_ATTRIBUTE] } },
    },
  ];
}

/** The worker's environment that every task shares (image-reference.ts names it). */
function staticWorkerEnvironment(config: EnvironmentConfig, timeoutSeconds: number): Array<{ name: string; value: string }> {
  const values: Record<(typeof WORKER_STATIC_ENV)[number], string> = {
    RESULTS_PREFIX: config.bucket.resultsPrefix,
    // Its own timeout (the stage's, or its route's): the worker stops itself there.
    JOB_TIMEOUT_SECONDS: String(timeoutSeconds),
    // How long its RunTask state waits, the same for every route's tasks (the longest).
    RUN_TASK_TIMEOUT_SECONDS: String(runTaskStateTimeoutSeconds(config)),
    METRICS_NAMESPACE: stageMetricsNamespace(config.namePrefix),
  };
  // A packed task's list is on its batch record (functions/packing.ts).
  const packedValues: Record<(typeof WORKER_PACKED_STATIC_ENV)[number], string> = { BATCHES_TABLE_NAME: batchesTableName(config.namePrefix) };
  const packed = stagePacks(config) ? WORKER_PACKED_STATIC_ENV.map((name) => ({ name, value: packedValues[name] })) : [];
  return [...WORKER_STATIC_ENV.map((name) => ({ name, value: values[name] })), ...packed];
}
