import { EVENT_METRICS, METRICS_NAMESPACE } from '../../functions/metrics';
import { RUN_TASK_ERROR_KINDS, runTaskErrorPattern } from '../../modules/dashboard';
import { stageMetricsNamespace } from '../../functions/metrics';
import { TASK_STARTUP_METRIC } from '../../task-image/src/startup-metric';
import { JANITOR_PERIOD_MINUTES } from '../../environments/function-settings';

import { resourceNamed, resourcesOf, STAGES, synthStage } from '../support/synth';
import { routeQueueName, stateMachineArnOf } from '../../environments/names';

const emfMetricNames = new Set(Object.values(EVENT_METRICS).flatMap((metrics) => Object.keys(metrics)));

describe.each(STAGES)('the %s dashboard', (stage) => {
  const { json, config } = synthStage(stage);
  const dashboard = resourceNamed(json, 'aws_cloudwatch_dashboard', 'dashboard') as { dashboard_name: string; dashboard_body: string };
  const body = JSON.parse(dashboard.dashboard_body) as {
    widgets: Array<{ x: number; y: number; width: number; height: number; properties: { title: string; metrics: unknown[][]; region: string } }>;
  };
  const titles = body.widgets.map((w) => w.properties.title);
  const rows = body.widgets.flatMap((w) => w.properties.metrics);
  const named = (namespace: string) => rows.filter((row) => row[0] === namespace).map((row) => row[1] as string);

  test('is one valid body of metric widgets on a 24-column grid, in the stage’s Region', () => {
    expect(dashboard.dashboard_name).toBe(config.namePrefix);
    expect(body.widgets.length).toBeGreaterThanOrEqual(6);
    for (const widget of body.widgets) {
      expect(widget.x + widget.width).toBeLessThanOrEqual(24);
      expect(widget.properties.region).toBe(config.account.region);
      expect(widget.properties.metrics.length).toBeGreaterThan(0);
    }
  });

  test('has the widgets an on-call engineer asks for', () => {
    for (const wanted of [
      /vCPU.*effective budget.*quota/,
      /Backlog/,
      /Oldest waiting/,
      /Admissions and what held them back/,
      /RunTask errors by kind/,
      /Jobs succeeded and failed/,
      /Executions that did not succeed/,
      /Dead letters/,
    ]) {
      expect(titles.some((title) => wanted.test(title))).toBe(true);
    }
  });

  test("a stage with routes shows each route's vCPU in use, its queue, waiting and oldest, and its tasks' start-up; a stage without shows none", () => {
    const routes = config.routes ?? [];
    const routeRows = body.widgets.filter((w) => /^Routes:/.test(w.properties.title)).flatMap((w) => w.properties.metrics);
    // The dimension's value follows its name: the queue (SQS), the route (the start-up metric), or the function then the route.
    const what = (row: unknown[]) => `${row[1]} ${row[0] === 'AWS/SQS' || row[1] === 'TaskStartupSeconds' ? row[3] : row[5]}`;
    expect(routeRows.map(what).sort()).toEqual(
      routes
        .flatMap((r) => {
          const q = routeQueueName(config, r.name);
          return [`ApproximateAgeOfOldestMessage ${q}`, `ApproximateNumberOfMessagesVisible ${q}`, `RouteInUseVcpu ${r.name}`, `TaskStartupSeconds ${r.name}`];
        })
        .sort(),
    );
  });

  test('vCPU: AWS/Usage and its quota for each capacity class the stage uses, against its own and effective budget', () => {
    const classes = config.task.capacityProviders.filter((p) => p.weight > 0);
    const usage = rows.filter((row) => row[0] === 'AWS/Usage');
    expect(usage).toHaveLength(classes.length);
    for (const row of usage) expect(row.slice(1, 9)).toEqual(['ResourceCount', 'Service', 'Fargate', 'Type', 'Resource', 'Resource', 'vCPU', 'Class']);
    const quotas = rows.filter((row) => typeof (row[0] as { expression?: string }).expression === 'string');
    expect(quotas.map((row) => (row[0] as { expression: string }).expression)).toEqual(classes.map((_, i) => `SERVICE_QUOTA(usage${i})`));
    expect(named(METRICS_NAMESPACE)).toEqual(expect.arrayContaining(['InUseVcpu', 'EffectiveBudgetVcpu', 'ConfiguredBudgetVcpu']));
  });

  test('every metric it shows is one that something publishes: a function’s EMF, a metric filter of this stack, or AWS', () => {
    for (const name of named(METRICS_NAMESPACE)) expect(emfMetricNames).toContain(name);
    const filters = resourcesOf(json, 'aws_cloudwatch_log_metric_filter').map(
      ([, f]) => (f as { metric_transformation: { name: string; namespace: string } }).metric_transformation,
    );
    // The stage's namespace: the metric filters' metrics, and the worker's start-up, in the namespace its task definition gives it.
    expect([...new Set(named(stageMetricsNamespace(config.namePrefix)))].sort()).toEqual([...filters.map((t) => t.name), TASK_STARTUP_METRIC].sort());
    const worker = JSON.parse(
      (resourceNamed(json, 'aws_ecs_task_definition', 'task-definition_') as { container_definitions: string }).container_definitions,
    )[0];
    expect(worker.environment).toContainEqual({ name: 'METRICS_NAMESPACE', value: stageMetricsNamespace(config.namePrefix) });
    for (const t of filters) expect(t.namespace).toBe(stageMetricsNamespace(config.namePrefix));
    // The functions named as dimensions, the queues and the state machine are this stack's.
    const functionNames = resourcesOf(json, 'aws_lambda_function').map(([, f]) => (f as { function_name: string }).function_name);
    for (const row of rows.filter((r) => r[0] === METRICS_NAMESPACE)) expect(functionNames).toContain(row[3]);
    const queueNames = resourcesOf(json, 'aws_sqs_queue').map(([, q]) => (q as { name: string }).name);
    for (const row of rows.filter((r) => r[0] === 'AWS/SQS')) expect(queueNames).toContain(row[3]);
    for (const row of rows.filter((r) => r[0] === 'AWS/States')) expect(row[3]).toBe(stateMachineArnOf(config));
  });

  test('RunTask errors are counted on the state machine’s execution log, by the causes the state machine tells apart', () => {
    const logGroup = resourceNamed(json, 'aws_cloudwatch_log_group', 'pipeline_logs') as { name: string };
    for (const [, filter] of resourcesOf(json, 'aws_cloudwatch_log_metric_filter')) {
      expect((filter as { log_group_name: string }).log_group_name).toContain('aws_cloudwatch_log_group.pipeline_logs');
      expect((filter as { pattern: string }).pattern).toMatch(
        /^\{ \$\.type = "TaskFailed" && \$\.details\.resourceType = "ecs"( && \$\.details\.(error|cause) = "[^"]+")* \}$/,
      );
    }
    expect(logGroup.name).toBe(`/aws/vendedlogs/states/${config.namePrefix}-jobs`);
  });

  test('alarms when a janitor sweep reclaims more leases than the stage allows', () => {
    const alarm = resourceNamed(json, 'aws_cloudwatch_metric_alarm', 'leases-reclaimed') as Record<string, unknown>;
    expect(alarm).toMatchObject({
      namespace: METRICS_NAMESPACE,
      metric_name: 'LeasesFoundBySweep',
      dimensions: { FunctionName: `${config.namePrefix}-janitor` },
      statistic: 'Sum',
      period: JANITOR_PERIOD_MINUTES * 60,
      threshold: config.alarms.reclaimedLeasesAbove,
      comparison_operator: 'GreaterThanThreshold',
    });
  });

  test('alarms when more jobs failed in 15 minutes than the stage allows, and says which command lists them', () => {
    const alarm = resourceNamed(json, 'aws_cloudwatch_metric_alarm', 'failed-jobs') as Record<string, unknown>;
    expect(alarm).toMatchObject({
      namespace: METRICS_NAMESPACE,
      metric_name: 'JobsFailed',
      dimensions: { FunctionName: `${config.namePrefix}-janitor` },
      statistic: 'Sum',
      period: 900,
      threshold: config.alarms.failedJobsAbove,
      comparison_operator: 'GreaterThanThreshold',
    });
    expect(alarm.alarm_description).toContain(`npx sluice failures --stage ${config.stage}`);
  });
});

test('a RunTask error pattern matches the ECS state’s failed attempts, by error and cause, as Step Functions logs them', () => {
  expect(runTaskErrorPattern(RUN_TASK_ERROR_KINDS.RunTaskVcpuLimit)).toBe(
    '{ $.type = "TaskFailed" && $.details.resourceType = "ecs" && $.details.cause = "*limit on the number of vCPUs*" }',
  );
  expect(runTaskErrorPattern(RUN_TASK_ERROR_KINDS.TaskExitedNonZero)).toBe(
    '{ $.type = "TaskFailed" && $.details.resourceType = "ecs" && $.details.error = "States.TaskFailed" }',
  );
  expect(runTaskErrorPattern(RUN_TASK_ERROR_KINDS.RunTaskFailures)).toBe('{ $.type = "TaskFailed" && $.details.resourceType = "ecs" }');
});
