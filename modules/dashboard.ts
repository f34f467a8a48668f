import { CloudwatchDashboard } from '@cdktf/provider-aws/lib/cloudwatch-dashboard';
import { CloudwatchLogMetricFilter } from '@cdktf/provider-aws/lib/cloudwatch-log-metric-filter';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../environments';
import { USAGE_CLASS } from '../functions/capacity-codes';
import { TASK_STARTUP_METRIC, TASK_STARTUP_ROUTE_DIMENSION } from '../task-image/src/startup-metric';
import { METRICS_DIMENSION, METRICS_NAMESPACE, ROUTE_DIMENSION, stageMetricsNamespace, type MetricName } from '../functions/metrics';

import { ECS_INVALID_PARAMETER, RUN_TASK_CAUSES } from './run-jobs/definition';
import type { RunJobs } from './run-jobs';
import {
  functionNameOf,
  intakeDeadLetterQueueName,
  intakeQueueName,
  routeQueueName,
  ruleDeadLetterQueueName,
  stateMachineArnOf,
  stateMachineName,
} from '../environments/names';

/**
 * One CloudWatch dashboard per stage, answering "how far behind are we, and why": vCPU in use against the effective
 * budget and the account's quota, the backlog and its age, admissions and what held them back, RunTask errors by
 * kind, executions that failed, and both DLQs. The functions' own numbers come from their EMF summaries
 * (functions/metrics.ts); RunTask errors from metric filters on the state machine's execution log.
 */

/**
 * RunTask failures, told apart as the state machine tells them apart (modules/run-jobs/definition.ts), matched in its
 * execution log (level ERROR: every failed attempt is a `TaskFailed` event with `details.error` and `details.cause`).
 * A metric filter cannot add a constant dimension, so these live in the stage's own namespace.
 */
interface RunTaskErrorKind {
  /** The error name, when it tells the kind. */
  readonly error?: string;
  /** A StringMatches-style pattern on the cause, when it tells the kind. */
  readonly cause?: string;
  readonly label: string;
}

export const RUN_TASK_ERROR_KINDS = {
  RunTaskVcpuLimit: { cause: RUN_TASK_CAUSES.vcpuLimit, label: 'vCPU limit' },
  RunTaskNoCapacity: { cause: RUN_TASK_CAUSES.noCapacity, label: 'no Fargate capacity' },
  RunTaskEc2Throttled: { error: ECS_INVALID_PARAMETER, cause: RUN_TASK_CAUSES.ec2Throttling, label: 'EC2 throttled (security groups)' },
  RunTaskFailures: { label: 'every failed RunTask attempt (throttles included)' },
  TaskExitedNonZero: { error: 'States.TaskFailed', label: 'task exited non-zero (retried or failed)' },
} as const satisfies Record<string, RunTaskErrorKind>;

export function runTaskErrorPattern(kind: RunTaskErrorKind): string {
  // The RunTask state's failures only: the SQS and DynamoDB states fail as TaskFailed too.
  const terms = ['$.type = "TaskFailed"', '$.details.resourceType = "ecs"'];
  if (kind.error) terms.push(`$.details.error = "${kind.error}"`);
  if (kind.cause) terms.push(`$.details.cause = "${kind.cause}"`);
  return `{ ${terms.join(' && ')} }`;
}

type MetricRow = Array<string | Record<string, unknown>>;
interface Widget {
  readonly title: string;
  readonly metrics: MetricRow[];
  readonly stat?: 'Sum' | 'Maximum' | 'Average' | 'p50' | 'p99';
  readonly width?: number;
}

type Role = Parameters<typeof functionNameOf>[1];

/** A metric one of the stage's functions publishes (EMF, functions/metrics.ts). */
function own(config: EnvironmentConfig, name: MetricName, role: Role, label: string, extra: Record<string, unknown> = {}): MetricRow {
  return [METRICS_NAMESPACE, name, METRICS_DIMENSION, functionNameOf(config.namePrefix, role), { label, ...extra }];
}

function queue(metric: string, queueName: string, label: string): MetricRow {
  return ['AWS/SQS', metric, 'QueueName', queueName, { label }];
}

/** The account's Fargate vCPU in use per capacity class the stage uses, and each class's quota. */
function usageRows(config: EnvironmentConfig): MetricRow[] {
  const classes = config.task.capacityProviders.filter((p) => p.weight > 0).map((p) => p.name);
  return classes.flatMap((provider, i): MetricRow[] => [
    [
      'AWS/Usage',
      'ResourceCount',
      'Service',
      'Fargate',
      'Type',
      'Resource',
      'Resource',
      'vCPU',
      'Class',
      USAGE_CLASS[provider],
      { id: `usage${i}`, label: `account ${provider} vCPU in use`, stat: 'Maximum' },
    ],
    [{ expression: `SERVICE_QUOTA(usage${i})`, label: `${provider} vCPU quota` }],
  ]);
}

/** How much runs, against what may: this stage, its budget, the account and its quota. */
function capacityWidgets(config: EnvironmentConfig): Widget[] {
  return [
    {
      title: 'vCPU: this stage, its effective budget, the account and its quota',
      stat: 'Maximum',
      width: 24,
      metrics: [
        own(config, 'InUseVcpu', 'capacity', 'this stage in use'),
        own(config, 'EffectiveBudgetVcpu', 'capacity', 'effective budget = min(budget, quota − others)'),
        own(config, 'ConfiguredBudgetVcpu', 'capacity', 'configured budget'),
        ...usageRows(config),
      ],
    },
  ];
}

/** How far behind: the intake queue and its oldest message; and how long a task takes to start. */
function backlogWidgets(config: EnvironmentConfig): Widget[] {
  const intake = intakeQueueName(config.namePrefix);
  const startup = (stat: string): MetricRow => [stageMetricsNamespace(config.namePrefix), TASK_STARTUP_METRIC, { stat, label: `start-up ${stat}` }];
  return [
    {
      title: 'Backlog: intake queue',
      stat: 'Maximum',
      metrics: [
        queue('ApproximateNumberOfMessagesVisible', intake, 'waiting'),
        queue('ApproximateNumberOfMessagesNotVisible', intake, 'in flight'),
        queue('ApproximateNumberOfMessagesDelayed', intake, 'delayed (given back for capacity)'),
      ],
    },
    { title: 'Oldest waiting upload (seconds)', stat: 'Maximum', metrics: [queue('ApproximateAgeOfOldestMessage', intake, 'oldest message age')] },
    // The worker logs it (task-image/src/startup-metric.ts): placement, the image pull and the start, per task.
    { title: 'Task start-up, RunTask → worker running (seconds)', stat: 'p50', metrics: [startup('p50'), startup('p99')] },
    ...routeWidgets(config),
  ];
}

/** On a stage with routes: each route's queue, waiting and oldest, side by side (how the shares treat each). */
function routeWidgets(config: EnvironmentConfig): Widget[] {
  if (!config.routes) return [];
  const queues = config.routes.map((r) => ({ name: r.name, queue: routeQueueName(config, r.name) }));
  const capacityFunction = functionNameOf(config.namePrefix, 'capacity');
  return [
    {
      title: 'Routes: vCPU in use, per route (as the capacity function reads the pool, every minute)',
      stat: 'Maximum',
      metrics: config.routes.map((r) => [METRICS_NAMESPACE, 'RouteInUseVcpu', METRICS_DIMENSION, capacityFunction, ROUTE_DIMENSION, r.name, { label: r.name }]),
    },
    { title: 'Routes: uploads waiting, per route', stat: 'Maximum', metrics: queues.map((r) => queue('ApproximateNumberOfMessagesVisible', r.queue, r.name)) },
    {
      title: 'Routes: oldest waiting upload, per route (seconds)',
      stat: 'Maximum',
      metrics: queues.map((r) => queue('ApproximateAgeOfOldestMessage', r.queue, r.name)),
    },
    {
      title: 'Routes: task start-up p99, per route (RunTask state → worker running, seconds)',
      stat: 'p99',
      metrics: config.routes.map((r) => [
        stageMetricsNamespace(config.namePrefix),
        TASK_STARTUP_METRIC,
        TASK_STARTUP_ROUTE_DIMENSION,
        r.name,
        { label: r.name },
      ]),
    },
  ];
}

/** What admission did and what RunTask answered. */
function admissionWidgets(config: EnvironmentConfig): Widget[] {
  return [
    {
      title: 'Admissions and what held them back, per minute',
      stat: 'Sum',
      metrics: [
        own(config, 'JobsAdmitted', 'dispatcher', 'jobs admitted'),
        own(config, 'StoppedByBudget', 'dispatcher', 'runs stopped: budget full'),
        own(config, 'StoppedByAccount', 'dispatcher', 'runs stopped: account full'),
        own(config, 'TokenWaits', 'dispatcher', 'pauses for tokens or a fuller batch'),
        own(config, 'HeldLeaseDeferrals', 'dispatcher', 'deferred: lease still held'),
      ],
    },
    {
      title: 'RunTask errors by kind, per minute',
      stat: 'Sum',
      metrics: Object.entries(RUN_TASK_ERROR_KINDS).map(([name, kind]): MetricRow => [stageMetricsNamespace(config.namePrefix), name, { label: kind.label }]),
    },
  ];
}

/** How jobs and executions ended, what the janitor repaired, and what is dead-lettered. */
function outcomeWidgets(config: EnvironmentConfig): Widget[] {
  const prefix = config.namePrefix;
  return [
    {
      title: 'Jobs succeeded and failed, as their batches settle',
      stat: 'Sum',
      metrics: [own(config, 'JobsSucceeded', 'janitor', 'jobs succeeded'), own(config, 'JobsFailed', 'janitor', 'jobs failed')],
    },
    {
      title: 'Executions that did not succeed, and what the janitor did',
      stat: 'Sum',
      metrics: [
        ...(['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted'] as const).map((metric): MetricRow => [
          'AWS/States',
          metric,
          'StateMachineArn',
          stateMachineArnOf(config),
          { label: metric.replace('Executions', 'executions ').toLowerCase() },
        ]),
        own(config, 'LeasesReclaimed', 'janitor', 'leases reclaimed'),
        own(config, 'LeasesFoundBySweep', 'janitor', 'of those, found by a sweep'),
        own(config, 'JobsRequeued', 'janitor', 'jobs re-queued'),
        own(config, 'JobsFailedByJanitor', 'janitor', 'jobs failed (attempts used up)'),
      ],
    },
    {
      title: 'Dead letters',
      stat: 'Maximum',
      metrics: [
        queue('ApproximateNumberOfMessagesVisible', intakeDeadLetterQueueName(prefix), 'intake DLQ (poison, failed starts)'),
        queue('ApproximateNumberOfMessagesVisible', ruleDeadLetterQueueName(prefix), 'rule DLQ (undelivered events)'),
        own(config, 'PoisonMessages', 'dispatcher', 'poison messages, per minute', { stat: 'Sum' }),
      ],
    },
  ];
}

/** The dashboard's widgets, in reading order. Pure: a test reads it per stage. */
function dashboardWidgets(config: EnvironmentConfig): Widget[] {
  return [...capacityWidgets(config), ...backlogWidgets(config), ...admissionWidgets(config), ...outcomeWidgets(config)];
}

/** The `dashboard_body`: widgets laid out two to a row (full-width ones alone), one-minute periods. */
function dashboardBody(config: EnvironmentConfig): string {
  let x = 0;
  let y = 0;
  const widgets = dashboardWidgets(config).map((widget) => {
    const width = widget.width ?? 12;
    if (x + width > 24) {
      x = 0;
      y += 6;
    }
    const placed = {
      type: 'metric',
      x,
      y,
      width,
      height: 6,
      properties: {
        title: widget.title,
        region: config.account.region,
        view: 'timeSeries',
        stacked: false,
        period: 60,
        stat: widget.stat ?? 'Sum',
        metrics: widget.metrics,
      },
    };
    x += width;
    return placed;
  });
  return JSON.stringify({ widgets });
}

interface DashboardProps {
  readonly config: EnvironmentConfig;
  /** The state machine: RunTask errors are counted in its execution log group (level ERROR). */
  readonly runJobs: RunJobs;
}

export class Dashboard extends Construct {
  readonly dashboardName: string;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const prefix = props.config.namePrefix;
    for (const [name, kind] of Object.entries(RUN_TASK_ERROR_KINDS)) {
      new CloudwatchLogMetricFilter(this, `filter-${name}`, {
        name: `${stateMachineName(prefix)}-${name}`,
        logGroupName: props.runJobs.logGroupName,
        pattern: runTaskErrorPattern(kind),
        metricTransformation: { name, namespace: stageMetricsNamespace(prefix), value: '1' },
      });
    }
    const dashboard = new CloudwatchDashboard(this, 'dashboard', { dashboardName: prefix, dashboardBody: dashboardBody(props.config) });
    this.dashboardName = dashboard.dashboardName;
  }
}
