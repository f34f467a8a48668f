import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../environments';
import { janitorEnvironment } from '../functions/environment';
import { METRICS_DIMENSION, METRICS_NAMESPACE, type MetricName } from '../functions/metrics';
import { executionArnOf } from '../functions/jobs';
import { leadingKeys, STATE_ITEMS, type StateTable } from './state-table';
import { oneOrList } from './iam';
import { NodeFunction } from './node-function';
import type { Compute } from './compute';
import type { Intake } from './intake';
import type { Observability } from './observability';
import { invokeOnOwnRule } from './triggers';
import { MAX_EXECUTION_ATTEMPTS, START_GRACE_SECONDS } from '../environments/function-settings';
import { functionNameOf, stateMachineArnOf } from '../environments/names';
import { JANITOR_PERIOD_MINUTES } from '../environments/function-settings';

interface JanitorProps {
  readonly config: EnvironmentConfig;
  /** The queues it re-queues unfinished jobs to: the stage's own, or each job's route's. */
  readonly intake: Intake;
  /** What each route's jobs run on (the routes' settings carry it, as the dispatcher's do). */
  readonly compute: Pick<Compute, 'taskOfRoute'>;
  /** The counters it checks and repairs, the leases it gives back, the batch records it settles. */
  readonly stateTable: StateTable;
  /** The dispatcher it wakes after giving leases back. */
  readonly dispatcher: NodeFunction;
  readonly observability: Observability;
}

/** After a stopped task's stop timeout, the time ECS may take to have it stopped (SIGKILL, then the task's teardown). */
const TASK_STOP_MARGIN_SECONDS = 30;

/** Who cleans up: settles batches no release will come for, re-queues their unfinished jobs, and checks the counters. */
export class Janitor extends Construct {
  readonly janitor: NodeFunction;

  constructor(scope: Construct, id: string, props: JanitorProps) {
    super(scope, id);
    this.janitor = this.janitorFunction(props);
    this.triggers(props);
    this.alarms(props);
  }

  private janitorFunction(props: JanitorProps): NodeFunction {
    const { config } = props;
    const { namePrefix } = config;
    const stateMachineArn = stateMachineArnOf(config);
    const { pool, released, jobs } = STATE_ITEMS;
    return new NodeFunction(this, 'janitor', {
      config,
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
        routes: props.intake.routeSettings(props.compute),
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
        { Sid: 'Requeue', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: oneOrList(props.intake.queueArns) },
        { Sid: 'WakeDispatcher', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: props.dispatcher.functionArn },
      ],
    });
  }

  /** Woken by each execution that ended badly, and on a schedule. */
  private triggers(props: JanitorProps): void {
    const { namePrefix } = props.config;
    // The event itself, not a constant: the janitor settles the batch of detail.executionArn first, and leases it
    // gives back for that execution do not count as found by a sweep (the leases-reclaimed alarm).
    invokeOnOwnRule(this, 'janitor-on-execution-end', this.janitor, 'the event', {
      name: `${namePrefix}-execution-ended`,
      pattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: { status: ['FAILED', 'TIMED_OUT', 'ABORTED'], stateMachineArn: [stateMachineArnOf(props.config)] },
      },
    });
    invokeOnOwnRule(
      this,
      'janitor-every-5-minutes',
      this.janitor,
      { reason: 'schedule' },
      { schedule: `rate(${JANITOR_PERIOD_MINUTES} minutes)`, name: `${namePrefix}-janitor-schedule` },
    );
  }

  /** Alarms on what only the janitor knows (leases a sweep found, failed jobs), and on its errors. */
  private alarms(props: JanitorProps): void {
    const { config } = props;
    const janitorName = functionNameOf(config.namePrefix, 'janitor');
    props.observability.alarm({
      name: 'leases-reclaimed',
      description:
        `Janitor sweeps found more than ${config.alarms.reclaimedLeasesAbove} leases in 5 minutes held for executions that had ended or never ` +
        `started, and nothing had told the janitor: capacity kept from waiting work for up to a sweep. The janitor's log ` +
        `(/aws/lambda/${janitorName}) names them (leaseReclaimed).`,
      namespace: METRICS_NAMESPACE,
      metric: 'LeasesFoundBySweep' satisfies MetricName,
      dimensions: { [METRICS_DIMENSION]: janitorName },
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
      dimensions: { [METRICS_DIMENSION]: janitorName },
      statistic: 'Sum',
      threshold: config.alarms.failedJobsAbove,
      periodSeconds: 15 * 60,
    });
    props.observability.functionErrors('janitor', janitorName);
  }
}
