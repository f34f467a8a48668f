import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { Aspects, S3Backend, TerraformOutput, TerraformStack } from 'cdktf';
import { Construct, type IConstruct } from 'constructs';
import { objectsPerTaskOf, routeVcpuOf, stagePacks, type EnvironmentConfig } from '../environments';
import { vcpuOf } from '../environments/fargate';
import { Bucket } from './bucket';
import { Compute } from './compute';
import { Admission } from './admission';
import { Janitor } from './janitor';
import { Finisher } from './finisher';
import { Intake } from './intake';
import { Dashboard } from './dashboard';
import { StateTable } from './state-table';
import { Network } from './network';
import { Observability } from './observability';
import { RunJobs } from './run-jobs';
import { requiredTerraformVersion } from './toolchain';
import { policyArn, workloadBoundaryName } from '../environments/ci-roles';
import { recordMoves } from './moved';

interface PipelineStackProps {
  readonly config: EnvironmentConfig;
}

/** The key settings of a stage, as one Terraform output: what a reviewer checks first in a plan. */
export interface StageSettings {
  readonly stage: string;
  readonly account: string;
  readonly region: string;
  readonly vcpuBudget: number;
  readonly accountVcpuQuota: number;
  readonly taskCpu: number;
  readonly taskMemoryMiB: number;
  readonly taskVcpu: number;
  readonly maxConcurrentTasks: number;
  readonly launchRatePerSecond: number;
  readonly mapMaxConcurrency: number;
  readonly capacityProviders: string;
  /** Without routes, on a stage that packs: the objects one task runs (functions/packing.ts). */
  readonly objectsPerTask?: number;
  /** On a stage with routes: each route's input, weight, class, cap and reserve, and its task's size. */
  readonly routes?: ReadonlyArray<RouteSummary>;
}

export interface RouteSummary {
  readonly name: string;
  readonly inputPrefix: string;
  readonly share: number;
  readonly priority: number;
  readonly maxVcpu?: number;
  readonly reservedVcpu?: number;
  readonly taskVcpu: number;
  readonly taskMemoryMiB: number;
  /** On a route whose tasks pack: the objects one of them runs. */
  readonly objectsPerTask?: number;
}

/** The objects one task runs, where it is more than one: settings that do not pack stay as they were. */
function packedOnly(objectsPerTask: number): { objectsPerTask?: number } {
  return objectsPerTask > 1 ? { objectsPerTask } : {};
}

function routeSummaries(config: EnvironmentConfig): RouteSummary[] | undefined {
  return config.routes?.map((r) => ({
    name: r.name,
    inputPrefix: r.inputPrefix,
    share: r.share,
    priority: r.priority,
    ...(r.maxVcpu !== undefined ? { maxVcpu: r.maxVcpu } : {}),
    ...(r.reservedVcpu !== undefined ? { reservedVcpu: r.reservedVcpu } : {}),
    taskVcpu: routeVcpuOf(config.task, r),
    taskMemoryMiB: r.task?.memoryMiB ?? config.task.memoryMiB,
    ...packedOnly(objectsPerTaskOf(config, r)),
  }));
}

function stageSettings(config: EnvironmentConfig): StageSettings {
  const taskVcpu = vcpuOf(config.task.cpu);
  const routes = routeSummaries(config);
  // With routes, the most at once is the budget in the smallest task any route runs.
  const smallestTask = routes ? Math.min(...routes.map((r) => r.taskVcpu)) : taskVcpu;
  return {
    stage: config.stage,
    account: config.account.id,
    region: config.account.region,
    vcpuBudget: config.capacity.vcpuBudget,
    accountVcpuQuota: config.capacity.accountVcpuQuota,
    taskCpu: config.task.cpu,
    taskMemoryMiB: config.task.memoryMiB,
    taskVcpu,
    maxConcurrentTasks: Math.floor(config.capacity.vcpuBudget / smallestTask),
    launchRatePerSecond: config.capacity.launchRatePerSecond,
    mapMaxConcurrency: config.capacity.mapMaxConcurrency,
    capacityProviders: config.task.capacityProviders.map((p) => `${p.name}:${p.weight}`).join(','),
    ...(routes ? { routes } : packedOnly(objectsPerTaskOf(config))),
  };
}

/** One stage of sluice: its own state, its own account, all of the pipeline. */
export class PipelineStack extends TerraformStack {
  readonly config: EnvironmentConfig;
  readonly bucket: Bucket;
  readonly intake: Intake;
  readonly network: Network;
  readonly compute: Compute;
  readonly observability: Observability;
  readonly stateTable: StateTable;
  readonly admission: Admission;
  readonly janitor: Janitor;
  /** Only on a stage that packs: what ends each packed task. */
  readonly finisher?: Finisher;
  readonly runJobs: RunJobs;
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id);
    const { config } = props;
    this.config = config;

    this.stateAndProvider(config);

    // In this order: each part (and each helper below) reads the parts built before it.
    this.observability = new Observability(this, 'observability', { config });
    this.bucket = new Bucket(this, 'bucket', { config });
    this.intake = new Intake(this, 'intake', { config, bucket: this.bucket, observability: this.observability });
    this.network = new Network(this, 'network', { config });
    this.compute = new Compute(this, 'compute', { config, bucket: this.bucket, network: this.network });

    this.stateTable = new StateTable(this, 'limiter', { config });
    const { intake, compute, stateTable, observability } = this;
    this.admission = new Admission(this, 'admission', { config, bucket: this.bucket, intake, compute, stateTable, observability });
    this.janitor = new Janitor(this, 'janitor', { config, intake, compute, stateTable, dispatcher: this.admission.dispatcher, observability });
    this.finisher = stagePacks(config) ? new Finisher(this, 'finisher', { config, intake, stateTable, observability }) : undefined;
    this.runJobs = this.jobRunner(config);

    this.dashboard = new Dashboard(this, 'dashboard', { config, runJobs: this.runJobs });

    this.outputs(config);
    boundEveryRole(this, policyArn(config.account.id, config.account.region, workloadBoundaryName(config.stage)));
    recordMoves(this);
  }

  /** The state machine that runs admitted jobs; it wakes the dispatcher after each release. */
  private jobRunner(config: EnvironmentConfig): RunJobs {
    return new RunJobs(this, 'pipeline', {
      config,
      compute: this.compute,
      network: this.network,
      stateTable: this.stateTable,
      intake: this.intake,
      dispatcher: this.admission.dispatcher,
      finisher: this.finisher?.finisher,
      observability: this.observability,
    });
  }

  /** What a reviewer reads first in a plan, and what operators and the CLI look up. */
  private outputs(config: EnvironmentConfig): void {
    const region = config.account.region;
    new TerraformOutput(this, 'settings', {
      description: 'Key settings of this stage (from environments/' + config.stage + '.ts)',
      value: stageSettings(config),
    });
    new TerraformOutput(this, 'bucket_name', { value: this.bucket.bucketName });
    new TerraformOutput(this, 'upload_prefix', { value: `s3://${this.bucket.bucketName}/${config.bucket.inputPrefix}` });
    new TerraformOutput(this, 'intake_queue_url', { value: this.intake.queueUrl });
    new TerraformOutput(this, 'intake_dead_letter_queue_url', { value: this.intake.deadLetterQueueUrl });
    new TerraformOutput(this, 'worker_repository_url', { value: this.compute.repositoryUrl });
    new TerraformOutput(this, 'worker', {
      description: "What the stage's tasks run: the image as configured (sluice smoke records the digest ECS ran) and the task definition revision",
      value: { image: this.compute.workerImage, task_definition_arn: this.compute.taskDefinitionArn },
    });
    new TerraformOutput(this, 'cluster_name', { value: this.compute.clusterName });
    new TerraformOutput(this, 'state_machine_arn', { value: this.runJobs.stateMachineArn });
    new TerraformOutput(this, 'state_table_name', { value: this.stateTable.tableName });
    new TerraformOutput(this, 'dashboard_url', {
      value: `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${this.dashboard.dashboardName}`,
    });
    new TerraformOutput(this, 'configure_pool_function', {
      description: 'Sets the limiter; at run time use npx sluice pause | resume | resize (the same validation, the pool shown before and after)',
      value: this.admission.configurePool.functionName,
    });
  }

  /** Its own state (S3, native locking) and a provider pinned to the stage's account. */
  private stateAndProvider(config: EnvironmentConfig): void {
    const accountId = config.account.id;
    const region = config.account.region;
    new S3Backend(this, {
      bucket: config.backend.bucket,
      key: config.backend.key,
      region: config.backend.region,
      encrypt: true,
    });
    // cdktf 0.21's S3Backend predates S3-native locking (Terraform ≥ 1.10); DynamoDB locking is deprecated.
    this.addOverride('terraform.backend.s3.use_lockfile', true);
    this.addOverride('terraform.required_version', requiredTerraformVersion()); // pinned once, in .terraform-version

    new AwsProvider(this, 'aws', {
      region,
      allowedAccountIds: [accountId], // a stage's plan can never be applied to another account
      defaultTags: [{ tags: { ...config.tags, 'sluice:stage': config.stage } }],
    });
  }
}

/**
 * Every role of the stage carries the workload boundary the bootstrap created (the deploy role may create roles only
 * with it), set here once for every role, so a role a new module adds cannot be missed.
 */
function boundEveryRole(stack: TerraformStack, boundaryArn: string): void {
  Aspects.of(stack).add({
    visit(node: IConstruct) {
      if (node instanceof IamRole) node.permissionsBoundary = boundaryArn;
    },
  });
}
