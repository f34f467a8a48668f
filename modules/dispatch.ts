import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { LambdaFunctionEventInvokeConfig } from '@cdktf/provider-aws/lib/lambda-function-event-invoke-config';
import { LambdaInvocation } from '@cdktf/provider-aws/lib/lambda-invocation';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../environments';
import { capacityEnvironment, configurePoolEnvironment, dispatcherEnvironment, janitorEnvironment } from '../functions/environment';
import { FARGATE_QUOTA_CODE } from '../functions/capacity-codes';
import { METRICS_DIMENSION, METRICS_NAMESPACE, type MetricName } from '../functions/metrics';
import { executionArnOf } from '../functions/jobs';
import { vcpuOf } from '../environments/fargate';
import { configurePoolSettingsOf, JANITOR_PERIOD_MINUTES } from '../environments/function-settings';
import { leadingKeys, STATE_ITEMS, type StateTable } from './state-table';
import { partitionOf } from '../environments/partition';
import type { PolicyStatement } from './iam';
import { NodeFunction } from './node-function';
import type { Bucket } from './bucket';
import type { Intake } from './intake';
import type { Observability } from './observability';

import { leaseSeconds } from './run-jobs/timing';
import { functionNameOf, stateMachineArnOf } from '../environments/names';

interface DispatchProps {
  readonly config: EnvironmentConfig;
  /** Where uploads land: the dispatcher checks each event against its name and the input prefix. */
  readonly bucket: Bucket;
  /** The queue, its DLQ and the rule the dispatcher is woken by. */
  readonly intake: Intake;
  /** The limiter's counters and the ledger, and the batch records. */
  readonly stateTable: StateTable;
  readonly observability: Observability;
}

/** A dispatcher run stops admitting after this long; its Lambda timeout leaves room to finish the batch. */
const DISPATCHER_MAX_RUN_SECONDS = 240;
const DISPATCHER_TIMEOUT_SECONDS = 300;
/** Executions one job may have (first run + re-queues after aborted/timed-out executions). */
const MAX_EXECUTION_ATTEMPTS = 3;
/**
 * A batch whose execution does not exist is given back (by the janitor, or the next dispatcher run) only once the run
 * that admitted it can no longer start it: that run's Lambda timeout has passed since the admission (its SDK retries
 * StartExecution until then), and a margin for the last call it sent to land and show (DescribeExecution is
 * eventually consistent). Shorter, a late StartExecution starts an execution whose leases were already given back.
 */
const START_GRACE_SECONDS = DISPATCHER_TIMEOUT_SECONDS + 30;
/**
 * How long a message a dispatcher run received stays invisible: past that run's Lambda timeout, so it never comes
 * back while the run that holds it may still admit, start or delete it (the same run would otherwise meet it again).
 * A run that dies holding messages leaves them invisible that long before another run takes them.
 */
export const INTAKE_VISIBILITY_TIMEOUT_SECONDS = DISPATCHER_TIMEOUT_SECONDS + 30;
/** After a stopped task's stop timeout, the time ECS may take to have it stopped (SIGKILL, then the task's teardown). */
const TASK_STOP_MARGIN_SECONDS = 30;

type FunctionCommon = { readonly accountId: string; readonly region: string; readonly logRetentionDays: number };

/** The functions around the state machine: who admits (dispatcher), who cleans up (janitor), who sets the pool. */
export class Dispatch extends Construct {
  readonly dispatcher: NodeFunction;
  readonly janitor: NodeFunction;
  readonly configurePool: NodeFunction;
  readonly capacity: NodeFunction;

  constructor(scope: Construct, id: string, props: DispatchProps) {
    super(scope, id);
    const { config } = props;
    const common = { accountId: config.account.id, region: config.account.region, logRetentionDays: config.logRetentionDays };
    this.dispatcher = this.dispatcherFunction(props, common);
    this.janitor = this.janitorFunction(props, common);
    this.configurePool = this.configurePoolFunction(props, common);
    this.capacity = this.capacityFunction(props, common);
    this.triggers(props);
    this.alarms(props);
  }

  /** The admitter: one at a time, woken by uploads, releases and a schedule. */
  private dispatcherFunction(props: DispatchProps, common: FunctionCommon): NodeFunction {
    const fn = new NodeFunction(this, 'dispatcher', {
      ...common,
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

  /** Settles batches no release will come for, and checks the counters. */
  private janitorFunction(props: DispatchProps, common: FunctionCommon): NodeFunction {
    const { config } = props;
    const { namePrefix } = config;
    const stateMachineArn = stateMachineArnOf(config);
    const { pool, released, jobs } = STATE_ITEMS;
    const fn = new NodeFunction(this, 'janitor', {
      ...common,
      functionName: functionNameOf(namePrefix, 'janitor'),
      description: 'Reclaims leases of ended or never-started executions, re-queues their unfinished jobs',
      entry: 'functions/janitor.ts',
      timeoutSeconds: 120,
      reservedConcurrency: 1,
      environment: janitorEnvironment({
        tableName: props.stateTable.tableName,
        batchesTableName: props.stateTable.batchesTableName,
        queueUrl: props.intake.queueUrl,
        stateMachineArn,
        dispatcherFunctionName: functionNameOf(namePrefix, 'dispatcher'),
        maxExecutionAttempts: MAX_EXECUTION_ATTEMPTS,
        startGraceMs: START_GRACE_SECONDS * 1000,
        stopGraceMs: (config.task.stopTimeoutSeconds + TASK_STOP_MARGIN_SECONDS) * 1000,
      }),
      statements: [
        {
          Sid: 'ReadCountersAndRows',
          Effect: 'Allow',
          Action: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
          Resource: props.stateTable.tableArn,
          Condition: leadingKeys([pool, released, jobs]),
        },
        // Releases (a row and a released counter); the repair of a drifted counter raises a released counter or, when
        // the counters miss a lease, POOL's admitted vCPU (counters only ever go up), re-checking every counter.
        {
          Sid: 'ReleaseAndRepair',
          Effect: 'Allow',
          Action: 'dynamodb:UpdateItem',
          Resource: props.stateTable.tableArn,
          Condition: leadingKeys([pool, released, jobs]),
        },
        {
          Sid: 'CheckCountersUnchanged',
          Effect: 'Allow',
          Action: 'dynamodb:ConditionCheckItem',
          Resource: props.stateTable.tableArn,
          Condition: leadingKeys([pool, released]),
        },
        {
          Sid: 'SettleBatches',
          Effect: 'Allow',
          Action: ['dynamodb:Scan', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
          Resource: props.stateTable.batchesTableArn,
        },
        { Sid: 'SeeExecutions', Effect: 'Allow', Action: 'states:DescribeExecution', Resource: executionArnOf(stateMachineArn, '*') },
        { Sid: 'ListRunningExecutions', Effect: 'Allow', Action: 'states:ListExecutions', Resource: stateMachineArn },
        { Sid: 'Requeue', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: props.intake.queueArn },
        { Sid: 'WakeDispatcher', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: this.dispatcher.functionArn },
      ],
    });
    return fn;
  }

  /** Sets the pool's settings; terraform apply seeds them. */
  private configurePoolFunction(props: DispatchProps, common: FunctionCommon): NodeFunction {
    const { config } = props;
    const { namePrefix } = config;
    const { pool } = STATE_ITEMS;
    const fn = new NodeFunction(this, 'configure-pool', {
      ...common,
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
  private capacityFunction(props: DispatchProps, common: FunctionCommon): NodeFunction {
    const { config } = props;
    const { namePrefix } = config;
    const { pool, released } = STATE_ITEMS;
    const weights = Object.fromEntries(config.task.capacityProviders.map((p) => [p.name, p.weight]));
    const { region, id: accountId } = config.account;
    const fn = new NodeFunction(this, 'capacity', {
      ...common,
      functionName: functionNameOf(namePrefix, 'capacity'),
      description: "Reads the account's Fargate vCPU quota and use every minute; admission keeps to what others leave",
      entry: 'functions/capacity.ts',
      timeoutSeconds: 30,
      reservedConcurrency: undefined,
      environment: capacityEnvironment({ tableName: props.stateTable.tableName, weights }),
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

  /** What wakes each function. */
  private triggers(props: DispatchProps): void {
    const { namePrefix } = props.config;
    const stateMachineArn = stateMachineArnOf(props.config);
    this.trigger('dispatch-on-upload', this.dispatcher, { reason: 'object-created' }, { ruleName: props.intake.ruleName, ruleArn: props.intake.ruleArn });
    this.trigger('dispatch-every-minute', this.dispatcher, { reason: 'schedule' }, { schedule: 'rate(1 minute)', name: `${namePrefix}-dispatch-schedule` });
    // The event itself, not a constant: the janitor settles the batch of detail.executionArn first, and leases it
    // gives back for that execution do not count as found by a sweep (the leases-reclaimed alarm).
    this.trigger('janitor-on-execution-end', this.janitor, 'the event', {
      name: `${namePrefix}-execution-ended`,
      pattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: { status: ['FAILED', 'TIMED_OUT', 'ABORTED'], stateMachineArn: [stateMachineArn] },
      },
    });
    this.trigger(
      'janitor-every-5-minutes',
      this.janitor,
      { reason: 'schedule' },
      { schedule: `rate(${JANITOR_PERIOD_MINUTES} minutes)`, name: `${namePrefix}-janitor-schedule` },
    );
    this.trigger('capacity-every-minute', this.capacity, { reason: 'schedule' }, { schedule: 'rate(1 minute)', name: `${namePrefix}-capacity-schedule` });
  }

  /** Alarms on what only the functions know, and on their errors. */
  private alarms(props: DispatchProps): void {
    const { config } = props;
    const { namePrefix } = config;
    props.observability.alarm({
      name: 'leases-reclaimed',
      description:
        `Janitor sweeps found more than ${config.alarms.reclaimedLeasesAbove} leases in 5 minutes held for executions that had ended or never ` +
        `started, and nothing had told the janitor: capacity kept from waiting work for up to a sweep. The janitor's log ` +
        `(/aws/lambda/${functionNameOf(namePrefix, 'janitor')}) names them (leaseReclaimed).`,
      namespace: METRICS_NAMESPACE,
      metric: 'LeasesFoundBySweep' satisfies MetricName,
      dimensions: { [METRICS_DIMENSION]: functionNameOf(namePrefix, 'janitor') },
      statistic: 'Sum',
      threshold: config.alarms.reclaimedLeasesAbove,
      periodSeconds: JANITOR_PERIOD_MINUTES * 60,
    });
    props.observability.alarm({
      name: 'failed-jobs',
      description:
        `More than ${config.alarms.failedJobsAbove} jobs failed in 15 minutes (counted as the janitor settles their batches). ` +
        `npx sluice failures --stage ${config.stage} --since 1h groups them by error; npx sluice redrive --failed puts them back once fixed.`,
      namespace: METRICS_NAMESPACE,
      metric: 'JobsFailed' satisfies MetricName,
      dimensions: { [METRICS_DIMENSION]: functionNameOf(namePrefix, 'janitor') },
      statistic: 'Sum',
      threshold: config.alarms.failedJobsAbove,
      periodSeconds: 15 * 60,
    });
    const consequence = {
      dispatcher: '',
      janitor: '',
      capacity:
        ' Until it reads the account again, admission keeps to the budget alone once its last reading is 5 minutes old, and a vCPU-limit hold expires after 5 minutes.',
    };
    for (const name of ['dispatcher', 'janitor', 'capacity'] as const) {
      props.observability.alarm({
        name: `${name}-errors`,
        description: `The ${name} function failed; its log group is /aws/lambda/${functionNameOf(namePrefix, name)}.${consequence[name]}`,
        namespace: 'AWS/Lambda',
        metric: 'Errors',
        dimensions: { FunctionName: functionNameOf(namePrefix, name) },
        statistic: 'Sum',
        threshold: 0,
      });
    }
  }

  /**
   * Invokes `fn` from an existing rule, a schedule, or an event pattern; only that rule may. `input`: a constant the function gets instead of the event (EventBridge then passes nothing of the event), or the event.
   */
  private trigger(
    id: string,
    fn: NodeFunction,
    input: Record<string, string> | 'the event',
    source: { ruleName: string; ruleArn: string } | { name: string; schedule: string } | { name: string; pattern: Record<string, unknown> },
  ): void {
    const rule =
      'ruleName' in source
        ? { name: source.ruleName, arn: source.ruleArn }
        : new CloudwatchEventRule(this, `${id}-rule`, {
            name: source.name,
            ...('schedule' in source ? { scheduleExpression: source.schedule } : { eventPattern: JSON.stringify(source.pattern) }),
          });
    new CloudwatchEventTarget(this, `${id}-target`, {
      rule: rule.name,
      targetId: id,
      arn: fn.deployedArn,
      ...(input === 'the event' ? {} : { input: JSON.stringify(input) }),
    });
    new LambdaPermission(this, `${id}-permission`, {
      statementId: id,
      action: 'lambda:InvokeFunction',
      functionName: fn.functionName,
      principal: 'events.amazonaws.com',
      sourceArn: rule.arn,
    });
  }
}

/** What the dispatcher reads from, admits into and checks uploads against; a run stops admitting before its timeout. */
function dispatcherEnvironmentOf(props: DispatchProps): Record<string, string> {
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
  });
}

/** The dispatcher's role: take from the intake queue, admit against the pool, start executions. */
function dispatcherStatements(props: DispatchProps): PolicyStatement[] {
  const stateMachineArn = stateMachineArnOf(props.config);
  const { pool, released, jobs } = STATE_ITEMS;
  return [
    {
      Sid: 'TakeFromIntake',
      Effect: 'Allow',
      Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
      Resource: props.intake.queueArn,
    },
    { Sid: 'PoisonToDeadLetters', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: props.intake.deadLetterQueueArn },
    // A message put back (held for a lease, back for room) is sent again and the received copy deleted: deferral
    // never counts a receive toward the DLQ.
    { Sid: 'PutBackToIntake', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: props.intake.queueArn },
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
