import { LambdaFunctionEventInvokeConfig } from '@cdktf/provider-aws/lib/lambda-function-event-invoke-config';
import { LambdaInvocation } from '@cdktf/provider-aws/lib/lambda-invocation';
import { Construct } from 'constructs';
import { objectsPerTaskOf, type EnvironmentConfig } from '../environments';
import { capacityEnvironment, configurePoolEnvironment, dispatcherEnvironment } from '../functions/environment';
import { FARGATE_QUOTA_CODE } from '../functions/capacity-codes';
import type { ClassWeights } from '../functions/placement';
import { executionArnOf } from '../functions/jobs';
import { configurePoolSettingsOf } from '../environments/function-settings';
import { vcpuOf } from '../environments/fargate';
import { leadingKeys, STATE_ITEMS, type StateTable } from './state-table';
import { partitionOf } from '../environments/partition';
import { oneOrList, type PolicyStatement } from './iam';
import { NodeFunction } from './node-function';
import type { Bucket } from './bucket';
import type { Compute } from './compute';
import type { Intake } from './intake';
import type { Observability } from './observability';
import { invokeOnOwnRule } from './triggers';
import { DISPATCHER_MAX_RUN_SECONDS, DISPATCHER_TIMEOUT_SECONDS, START_GRACE_SECONDS } from '../environments/function-settings';
import { leaseSeconds } from './run-jobs/timing';
import { functionNameOf, stateMachineArnOf } from '../environments/names';

interface AdmissionProps {
  readonly config: EnvironmentConfig;
  /** Where uploads land: the dispatcher checks each event against its name and the input prefix. */
  readonly bucket: Bucket;
  /** The queues the dispatcher takes from (the stage's own and each route's), their DLQ, and the upload rules that wake it. */
  readonly intake: Intake;
  /** What each route's jobs run on: the task definition the dispatcher hands its jobs, and its size. */
  readonly compute: Pick<Compute, 'taskOfRoute'>;
  /** The limiter's counters and the ledger, and the batch records. */
  readonly stateTable: StateTable;
  readonly observability: Observability;
}

/**
 * Who admits work and what it admits against: the dispatcher (woken by uploads, releases and a schedule), the pool's
 * settings (configure-pool, seeded at deploy) and the account's reading (the capacity reader, every minute).
 */
export class Admission extends Construct {
  readonly dispatcher: NodeFunction;
  readonly configurePool: NodeFunction;
  readonly capacity: NodeFunction;

  constructor(scope: Construct, id: string, props: AdmissionProps) {
    super(scope, id);
    this.dispatcher = this.dispatcherFunction(props);
    this.configurePool = this.configurePoolFunction(props);
    this.capacity = this.capacityFunction(props);
    this.triggers(props);
    this.alarms(props);
  }

  /** The admitter: one at a time, woken by uploads, releases and a schedule. */
  private dispatcherFunction(props: AdmissionProps): NodeFunction {
    const fn = new NodeFunction(this, 'dispatcher', {
      config: props.config,
      functionName: functionNameOf(props.config.namePrefix, 'dispatcher'),
      description: 'Admits queued uploads under the vCPU budget and launch rate, starts executions',
      entry: 'functions/dispatcher.ts',
      timeoutSeconds: DISPATCHER_TIMEOUT_SECONDS,
      reservedConcurrency: 1, // one admitter: no two dispatchers plan from the same pool read
      environment: dispatcherEnvironmentOf(props),
      statements: dispatcherStatements(props),
    });
    // Wake-ups pile up while a run is busy (reserved concurrency 1); stale ones are dropped, not retried for hours.
    new LambdaFunctionEventInvokeConfig(this, 'dispatcher-async', {
      functionName: fn.functionName,
      maximumEventAgeInSeconds: 60,
      maximumRetryAttempts: 0,
    });
    return fn;
  }

  /** Sets the pool's settings; terraform apply seeds them. */
  private configurePoolFunction(props: AdmissionProps): NodeFunction {
    const { config } = props;
    const { namePrefix } = config;
    const { pool } = STATE_ITEMS;
    const fn = new NodeFunction(this, 'configure-pool', {
      config: props.config,
      functionName: functionNameOf(namePrefix, 'configure-pool'),
      description: 'Sets the limiter budget and launch rate (deploy seeds it; budget 0 pauses)',
      entry: 'functions/configure-pool.ts',
      timeoutSeconds: 30,
      environment: configurePoolEnvironment(configurePoolSettingsOf(config, props.stateTable.tableName)),
      statements: [
        { Sid: 'PoolItemOnly', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: props.stateTable.tableArn, Condition: leadingKeys([pool]) },
      ],
    });

    // Applied at deploy, and again whenever these values change; runtime changes survive other applies.
    // After the role policy: IAM has no ordering of its own, an invocation racing it gets AccessDenied.
    new LambdaInvocation(this, 'seed-pool', {
      functionName: fn.functionName,
      input: JSON.stringify({
        budgetVcpu: config.capacity.vcpuBudget,
        ratePerSecond: config.capacity.launchRatePerSecond,
        burst: config.capacity.launchBurst,
      }),
      dependsOn: [fn.policy],
    });
    return fn;
  }

  /** Measures the account every minute. */
  private capacityFunction(props: AdmissionProps): NodeFunction {
    const { config } = props;
    const { namePrefix } = config;
    const { pool, released } = STATE_ITEMS;
    const { region, id: accountId } = config.account;
    const fn = new NodeFunction(this, 'capacity', {
      config: props.config,
      functionName: functionNameOf(namePrefix, 'capacity'),
      description: "Reads the account's Fargate vCPU quota and use every minute; admission keeps to what others leave",
      entry: 'functions/capacity.ts',
      timeoutSeconds: 30,
      reservedConcurrency: undefined,
      environment: capacityEnvironment({ tableName: props.stateTable.tableName, weights: capacityWeightsOf(config) }),
      statements: [
        {
          Sid: 'FargateQuotas',
          Effect: 'Allow',
          Action: 'servicequotas:GetServiceQuota',
          Resource: config.task.capacityProviders.map(
            (p) => `arn:${partitionOf(region)}:servicequotas:${region}:${accountId}:fargate/${FARGATE_QUOTA_CODE[p.name]}`,
          ),
        },
        // Where the account has no applied value, GetServiceQuota answers NoSuchResourceException and the reader asks
        // for AWS's default: public numbers, read with no resource-level permission (Service Authorization Reference).
        { Sid: 'FargateDefaultQuotas', Effect: 'Allow', Action: 'servicequotas:GetAWSDefaultServiceQuota', Resource: '*' },
        // GetMetricData has no resource-level permissions.
        { Sid: 'FargateUsage', Effect: 'Allow', Action: 'cloudwatch:GetMetricData', Resource: '*' },
        {
          Sid: 'ReadThePool',
          Effect: 'Allow',
          Action: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
          Resource: props.stateTable.tableArn,
          Condition: leadingKeys([pool, released]),
        },
        { Sid: 'WriteTheAccountView', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: props.stateTable.tableArn, Condition: leadingKeys([pool]) },
      ],
    });
    return fn;
  }

  /** What wakes the dispatcher and the capacity reader (releases wake the dispatcher from the state machine). */
  private triggers(props: AdmissionProps): void {
    const { namePrefix } = props.config;
    // The upload rule is the intake's, and so is its target that wakes the dispatcher.
    props.intake.wakeOnUpload(this.dispatcher);
    invokeOnOwnRule(
      this,
      'dispatch-every-minute',
      this.dispatcher,
      { reason: 'schedule' },
      { schedule: 'rate(1 minute)', name: `${namePrefix}-dispatch-schedule` },
    );
    invokeOnOwnRule(
      this,
      'capacity-every-minute',
      this.capacity,
      { reason: 'schedule' },
      { schedule: 'rate(1 minute)', name: `${namePrefix}-capacity-schedule` },
    );
  }

  /** Alarms on the dispatcher's and the capacity reader's errors. */
  private alarms(props: AdmissionProps): void {
    const { namePrefix } = props.config;
    props.observability.functionErrors('dispatcher', functionNameOf(namePrefix, 'dispatcher'));
    props.observability.functionErrors(
      'capacity',
      functionNameOf(namePrefix, 'capacity'),
      ' Until it reads the account again, admission keeps to the budget alone once its last reading is 5 minutes old, and a vCPU-limit hold expires after 5 minutes.',
    );
  }
}

/** What the dispatcher reads from, admits into and checks uploads against; a run stops admitting before its timeout. */
function dispatcherEnvironmentOf(props: AdmissionProps): Record<string, string> {
  const { config } = props;
  return dispatcherEnvironment({
    queueUrl: props.intake.queueUrl,
    deadLetterQueueUrl: props.intake.deadLetterQueueUrl,
    tableName: props.stateTable.tableName,
    batchesTableName: props.stateTable.batchesTableName,
    stateMachineArn: stateMachineArnOf(config),
    bucketName: props.bucket.bucketName,
    inputPrefix: config.bucket.inputPrefix,
    inputSuffix: config.bucket.inputSuffix,
    taskVcpu: vcpuOf(config.task.cpu),
    jobsPerExecution: config.capacity.jobsPerExecution,
    leaseSeconds: leaseSeconds(config),
    maxRunMs: DISPATCHER_MAX_RUN_SECONDS * 1000,
    batchWindowMs: Math.round(config.capacity.batchWindowSeconds * 1000),
    startGraceMs: START_GRACE_SECONDS * 1000,
    capacityWeights: capacityWeightsOf(config),
    routes: props.intake.routeSettings(props.compute),
    // With routes, each route's travels in ROUTES (environment.ts leaves this out at 1).
    objectsPerTask: config.routes ? undefined : objectsPerTaskOf(config),
  });
}

/** The capacity providers' weights: the classes batches may be placed in, and the split kept while both have room. */
function capacityWeightsOf(config: EnvironmentConfig): ClassWeights {
  return Object.fromEntries(config.task.capacityProviders.map((p) => [p.name, p.weight]));
}

/** The dispatcher's role: take from the intake queue, admit against the pool, start executions. */
function dispatcherStatements(props: AdmissionProps): PolicyStatement[] {
  const stateMachineArn = stateMachineArnOf(props.config);
  const { pool, released, jobs } = STATE_ITEMS;
  return [
    {
      Sid: 'TakeFromIntake',
      Effect: 'Allow',
      Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
      Resource: oneOrList(props.intake.queueArns),
    },
    { Sid: 'PoisonToDeadLetters', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: props.intake.deadLetterQueueArn },
    // A message put back (held for a lease, back for room) is sent again and the received copy deleted: deferral
    // never counts a receive toward the DLQ.
    { Sid: 'PutBackToIntake', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: oneOrList(props.intake.queueArns) },
    // Admission: POOL + the jobs' rows in one transaction; released counters only to give back a batch that never started.
    {
      Sid: 'ReadThePool',
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
      Resource: props.stateTable.tableArn,
      Condition: leadingKeys([pool, released]),
    },
    {
      Sid: 'AdmitAndRelease',
      Effect: 'Allow',
      Action: 'dynamodb:UpdateItem',
      Resource: props.stateTable.tableArn,
      Condition: leadingKeys([pool, released, jobs]),
    },
    {
      Sid: 'BatchRecords',
      Effect: 'Allow',
      Action: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
      Resource: props.stateTable.batchesTableArn,
    },
    { Sid: 'StartJobs', Effect: 'Allow', Action: 'states:StartExecution', Resource: stateMachineArn },
    { Sid: 'SeeWhetherTheLastBatchStarted', Effect: 'Allow', Action: 'states:DescribeExecution', Resource: executionArnOf(stateMachineArn, '*') },
  ];
}
