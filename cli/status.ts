/** `sluice status`: the limiter, the queues and the executions of a stage, as one snapshot. */
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { paginateListExecutions } from '@aws-sdk/client-sfn';
import { routeVcpuOf, type EnvironmentConfig } from '../environments';
import { scanBatchRecords } from '../functions/batches';
import { queryFailedJobs } from './failures';
import type { CapacityClass } from '../functions/capacity-codes';
import { effectiveBudget, inUseVcpu, readPool, tokensAvailable, type PoolState } from '../functions/limiter';
import { stageMetricsNamespace } from '../functions/metrics';
import { ownByClass, type ByClass } from '../functions/placement';
import { ownByRoute, routeCap } from '../functions/routes';
import { routeQueueName } from '../environments/names';
import { TASK_STARTUP_METRIC, TASK_STARTUP_ROUTE_DIMENSION } from '../task-image/src/startup-metric';
import { CliError, isMissingTable, notDeployed, queueDepths, queueUrl, stageNames, type StageClients } from './stage';

export interface StageStatus {
  readonly stage: string;
  readonly at: string;
  readonly vcpu: {
    readonly configuredBudget: number;
    readonly effectiveBudget: number;
    /** What decides the effective budget now. */
    readonly limitedBy: 'budget' | 'account';
    readonly inUse: number;
    /** Per capacity class, as last measured by the capacity function. */
    readonly account?: { readonly readAt: string; readonly classes: Record<string, { quotaVcpu: number; usedVcpu: number; othersVcpu: number }> };
    /** Per capacity class, the vCPU this stage's tasks hold there now (admission places each batch in one class). */
    readonly placed: ByClass;
    /** Set after a vCPU-limit error: nothing is admitted until the next reading. */
    readonly heldSince?: string;
  };
  readonly launchTokens: { readonly available: number; readonly burst: number; readonly ratePerSecond: number };
  readonly leases: { readonly batches: number; readonly jobs: number };
  readonly backlog: { readonly waiting: number; readonly inFlight: number; readonly delayed: number; readonly oldestSeconds?: number };
  readonly deadLetters: { readonly intake: number; readonly rule: number };
  readonly runningExecutions: number;
  /** Jobs failed in the last hour (the failed-by-day index; sluice failures tells why); null without the index. */
  readonly failedLastHour: number | null;
  /** Task start-up (RunTask → worker running) over the last hour, p50 and p99 in seconds; undefined when no task started. */
  readonly startupLastHour?: { readonly p50: number; readonly p99: number };
  /** Per route, on a stage with routes: its settings, what it holds now, and its queue. */
  readonly routes?: readonly RouteStatus[];
}

export interface RouteStatus {
  readonly name: string;
  readonly share: number;
  /** share / Σ shares: its part of the budget while every route has backlog. */
  readonly sharePercent: number;
  readonly priority: number;
  /** vCPU of one of its tasks. */
  readonly taskVcpu: number;
  /** The cap in force: an operator's (`sluice resize --route`), else the configured one. */
  readonly maxVcpu?: number;
  /** The configured cap, when an operator's stands in for it. */
  readonly configuredMaxVcpu?: number;
  readonly inUseVcpu: number;
  readonly backlog: { readonly waiting: number; readonly inFlight: number; readonly delayed: number; readonly oldestSeconds?: number };
  /** Its tasks' start-up over the last hour (RunTask state → worker running), when any started. */
  readonly startupLastHour?: { readonly p50: number; readonly p99: number };
}

/** Each route's settings, its use (the pool's per-route counters) and its queue. */
async function routeStatuses(
  clients: StageClients & { readonly cloudwatch: CloudWatchClient },
  config: EnvironmentConfig,
  pool: PoolState,
  now: number,
): Promise<RouteStatus[] | undefined> {
  if (!config.routes) return undefined;
  const inUse = ownByRoute(pool);
  const shares = config.routes.reduce((sum, r) => sum + r.share, 0);
  return Promise.all(
    config.routes.map(async (r) => {
      const queueName = routeQueueName(config, r.name);
      const depths = await queueDepths(clients, await queueUrl(clients, config, queueName));
      return {
        name: r.name,
        share: r.share,
        sharePercent: (100 * r.share) / shares,
        priority: r.priority,
        taskVcpu: routeVcpuOf(config.task, r),
        ...capsOf(r, pool),
        inUseVcpu: inUse[r.name] ?? 0,
        backlog: { ...depths, oldestSeconds: await oldestWaitingSeconds(clients.cloudwatch, queueName, now) },
        ...definedStartup(await startupLastHour(clients.cloudwatch, config.namePrefix, now, r.name)),
      };
    }),
  );
}

/** SQS tells the oldest message's age only as a CloudWatch metric (one datapoint a minute); undefined when there is none yet. */
async function oldestWaitingSeconds(cloudwatch: CloudWatchClient, queueName: string, now: number): Promise<number | undefined> {
  const { MetricDataResults = [] } = await cloudwatch.send(
    new GetMetricDataCommand({
      StartTime: new Date(now - 10 * 60_000),
      EndTime: new Date(now),
      ScanBy: 'TimestampDescending',
      MetricDataQueries: [
        {
          Id: 'age',
          MetricStat: {
            Metric: { Namespace: 'AWS/SQS', MetricName: 'ApproximateAgeOfOldestMessage', Dimensions: [{ Name: 'QueueName', Value: queueName }] },
            Period: 60,
            Stat: 'Maximum',
          },
        },
      ],
    }),
  );
  const values = MetricDataResults[0]?.Values ?? [];
  return values.length > 0 ? Number(values[0]) : undefined;
}

/**
 * The worker's start-up metric over the last hour (one period: p50 and p99 of every task that started in it): the
 * stage's, or one route's.
 */
async function startupLastHour(cloudwatch: CloudWatchClient, namePrefix: string, now: number, route?: string): Promise<StageStatus['startupLastHour']> {
  const metric = {
    Namespace: stageMetricsNamespace(namePrefix),
    MetricName: TASK_STARTUP_METRIC,
    ...(route !== undefined ? { Dimensions: [{ Name: TASK_STARTUP_ROUTE_DIMENSION, Value: route }] } : {}),
  };
  const { MetricDataResults = [] } = await cloudwatch.send(
    new GetMetricDataCommand({
      StartTime: new Date(now - 3_600_000),
      EndTime: new Date(now),
      MetricDataQueries: (['p50', 'p99'] as const).map((Stat) => ({ Id: Stat, MetricStat: { Metric: metric, Period: 3600, Stat } })),
    }),
  );
  const value = (id: string) => MetricDataResults.find((r) => r.Id === id)?.Values?.[0];
  const [p50, p99] = [value('p50'), value('p99')];
  return p50 === undefined || p99 === undefined ? undefined : { p50: Number(p50), p99: Number(p99) };
}

async function runningExecutions(clients: StageClients, stateMachineArn: string): Promise<number> {
  let running = 0;
  for await (const page of paginateListExecutions({ client: clients.sfn, pageSize: 1000 }, { stateMachineArn, statusFilter: 'RUNNING' }))
    running += page.executions?.length ?? 0;
  return running;
}

/** The count, or null on a stage applied before the index existed: status still answers everything else. */
async function failedInTheLastHour(clients: StageClients, config: EnvironmentConfig, now: number): Promise<number | null> {
  try {
    return (await queryFailedJobs(clients, config, now - 3_600_000, now)).length;
  } catch (error) {
    if (error instanceof CliError) return null;
    throw error;
  }
}

export async function readStatus(
  clients: StageClients & { readonly cloudwatch: CloudWatchClient },
  config: EnvironmentConfig,
  now: number,
): Promise<StageStatus> {
  const names = stageNames(config);
  let pool: PoolState;
  try {
    pool = await readPool(clients.ddb, names.stateTable);
  } catch (error) {
    if (isMissingTable(error)) throw notDeployed(config, `table ${names.stateTable}`);
    throw error;
  }
  const [intake, intakeDlq, ruleDlq] = await Promise.all(
    [names.intakeQueue, names.intakeDeadLetterQueue, names.ruleDeadLetterQueue].map((name) => queueUrl(clients, config, name)),
  );
  const batches = await scanBatchRecords(clients.ddb, names.batchesTable);
  const effective = effectiveBudget(pool, now);
  const routes = await routeStatuses(clients, config, pool, now);
  return {
    stage: config.stage,
    at: new Date(now).toISOString(),
    vcpu: {
      configuredBudget: pool.budgetVcpu,
      effectiveBudget: effective.vcpu,
      limitedBy: effective.limitedBy,
      inUse: inUseVcpu(pool),
      placed: ownByClass(pool),
      ...(pool.account ? { account: { readAt: new Date(pool.account.readAt).toISOString(), classes: pool.account.classes } } : {}),
      ...(pool.capacityLimitAt ? { heldSince: pool.capacityLimitAt } : {}),
    },
    launchTokens: { available: tokensAvailable(pool, now), burst: pool.burst, ratePerSecond: pool.ratePerSecond },
    leases: { batches: batches.length, jobs: batches.reduce((sum, b) => sum + b.jobs.length, 0) },
    // A stage with routes: every route's queue.
    backlog: routes
      ? backlogOf(routes)
      : { ...(await queueDepths(clients, intake)), oldestSeconds: await oldestWaitingSeconds(clients.cloudwatch, names.intakeQueue, now) },
    deadLetters: { intake: (await queueDepths(clients, intakeDlq)).waiting, rule: (await queueDepths(clients, ruleDlq)).waiting },
    runningExecutions: await runningExecutions(clients, names.stateMachineArn),
    failedLastHour: await failedInTheLastHour(clients, config, now),
    startupLastHour: await startupLastHour(clients.cloudwatch, config.namePrefix, now),
    ...(routes ? { routes } : {}),
  };
}

const round = (n: number) => Math.round(n * 100) / 100;

/** The routes' queues together: their messages summed, the oldest of their oldest. */
function backlogOf(routes: readonly RouteStatus[]): StageStatus['backlog'] {
  const sum = (pick: (r: RouteStatus) => number) => routes.reduce((n, r) => n + pick(r), 0);
  const oldest = routes.flatMap((r) => (r.backlog.oldestSeconds === undefined ? [] : [r.backlog.oldestSeconds]));
  return {
    waiting: sum((r) => r.backlog.waiting),
    inFlight: sum((r) => r.backlog.inFlight),
    delayed: sum((r) => r.backlog.delayed),
    ...(oldest.length > 0 ? { oldestSeconds: Math.max(...oldest) } : {}),
  };
}

const definedStartup = (startup: RouteStatus['startupLastHour']) => (startup ? { startupLastHour: startup } : {});

/** The cap in force, and the configured one when an operator's stands in for it. */
function capsOf(route: NonNullable<EnvironmentConfig['routes']>[number], pool: PoolState): Pick<RouteStatus, 'maxVcpu' | 'configuredMaxVcpu'> {
  const cap = routeCap(route, pool.routeCaps);
  return {
    ...(cap !== undefined ? { maxVcpu: cap } : {}),
    ...(pool.routeCaps[route.name] !== undefined ? { configuredMaxVcpu: route.maxVcpu } : {}),
  };
}

function routeRow(r: RouteStatus): [string, string] {
  const oldest = r.backlog.oldestSeconds === undefined ? '' : `, oldest ${r.backlog.oldestSeconds} s`;
  const resized =
    r.maxVcpu !== undefined && 'configuredMaxVcpu' in r
      ? ` (resized; configured ${r.configuredMaxVcpu === undefined ? 'none' : round(r.configuredMaxVcpu)})`
      : '';
  // A cap below one of its tasks (an operator's cap from before a deploy grew the task) admits nothing.
  const starved = r.maxVcpu !== undefined && r.maxVcpu < r.taskVcpu ? ` — below one of its ${r.taskVcpu}-vCPU tasks: it takes nothing` : '';
  return [
    `route ${r.name}`,
    `${round(r.inUseVcpu)} vCPU in use${r.maxVcpu !== undefined ? ` of its cap ${round(r.maxVcpu)}${resized}${starved}` : ''}; share ${round(r.share)} (${round(r.sharePercent)} %), priority ${r.priority}; ` +
      `${r.backlog.waiting} waiting, ${r.backlog.inFlight} in flight, ${r.backlog.delayed} delayed${oldest}` +
      (r.startupLastHour ? `; start-up p50 ${round(r.startupLastHour.p50)} s, p99 ${round(r.startupLastHour.p99)} s over the last hour` : ''),
  ];
}

/** Two columns, for a terminal. */
export function formatStatus(s: StageStatus): string {
  const rows: Array<[string, string]> = [
    ['stage', `${s.stage} at ${s.at}`],
    [
      'vCPU in use',
      `${round(s.vcpu.inUse)} of ${round(s.vcpu.effectiveBudget)} effective (configured budget ${round(s.vcpu.configuredBudget)}; limited by the ${s.vcpu.limitedBy})`,
    ],
  ];
  for (const [name, c] of Object.entries(s.vcpu.account?.classes ?? {})) {
    const placed = s.vcpu.placed[name as CapacityClass] ?? 0;
    rows.push([
      `account ${name}`,
      `${round(c.usedVcpu)} of ${round(c.quotaVcpu)} vCPU quota in use, ${round(c.othersVcpu)} by other workloads (read ${s.vcpu.account!.readAt}); ` +
        `this stage holds ${round(placed)} here now, room for ${round(Math.max(0, c.quotaVcpu - c.othersVcpu - placed))} more`,
    ]);
  }
  if (!s.vcpu.account) rows.push(['account', 'not measured yet (the capacity function runs every minute)']);
  if (s.vcpu.heldSince) rows.push(['held', `admission held since ${s.vcpu.heldSince}: RunTask met the vCPU limit; lifted by the next reading`]);
  rows.push(
    ['launch tokens', `${s.launchTokens.available} of ${s.launchTokens.burst} (refill ${s.launchTokens.ratePerSecond}/s)`],
    ['leases', `${s.leases.jobs} jobs in ${s.leases.batches} batches`],
    ['backlog', `${s.backlog.waiting} waiting, ${s.backlog.inFlight} in flight, ${s.backlog.delayed} delayed`],
    ['oldest waiting', s.backlog.oldestSeconds === undefined ? 'no datapoint yet' : `${s.backlog.oldestSeconds} s`],
    [
      'task start-up',
      s.startupLastHour
        ? `p50 ${round(s.startupLastHour.p50)} s, p99 ${round(s.startupLastHour.p99)} s over the last hour (RunTask → worker running)`
        : 'no task started in the last hour',
    ],
    ...(s.routes ?? []).map(routeRow),
    ['dead letters', `${s.deadLetters.intake} in the intake DLQ, ${s.deadLetters.rule} in the rule DLQ`],
    ['executions', `${s.runningExecutions} running`],
    [
      'failed',
      s.failedLastHour === null
        ? 'unknown: the stage has no failed-jobs index yet (apply this version)'
        : `${s.failedLastHour} jobs in the last hour${s.failedLastHour > 0 ? ' (sluice failures --since 1h says why)' : ''}`,
    ],
  );
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
