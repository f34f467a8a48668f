/**
 * `sluice pause | resume | resize | drain`: the limiter's settings, changed at run time through the same validation
 * the configure-pool function applies (the stage's quota, Fargate's launch rate, the schema's limits on leases).
 * Leases already held run to completion. `terraform apply` sets the stage's values again only when they change in
 * environments/<stage>.ts.
 */
import { routeRoomProblems, type EnvironmentConfig } from '../environments';
import { configurePool } from '../functions/configure-pool';
import { effectiveBudget, inUseVcpu, readPool, type PoolSettings, type PoolState } from '../functions/limiter';
import { configurePoolSettingsOf } from '../environments/function-settings';
import type { Progress } from './progress';
import { CliError, EXIT, isMissingTable, notDeployed, stageNames, type StageClients } from './stage';
import { readStatus, type StageStatus } from './status';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';

interface PoolView {
  readonly budgetVcpu: number;
  readonly effectiveVcpu: number;
  readonly inUseVcpu: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly pausedFromVcpu?: number;
}

export interface PoolChange {
  readonly stage: string;
  readonly before: PoolView;
  readonly after: PoolView;
}

function viewOf(pool: PoolState, now: number): PoolView {
  return {
    budgetVcpu: pool.budgetVcpu,
    effectiveVcpu: effectiveBudget(pool, now).vcpu,
    inUseVcpu: inUseVcpu(pool),
    ratePerSecond: pool.ratePerSecond,
    burst: pool.burst,
    ...(pool.pausedFromVcpu !== undefined ? { pausedFromVcpu: pool.pausedFromVcpu } : {}),
  };
}

/** The stage's pool as it stands; a stage not deployed (no state table) is said so. */
export async function currentPool(clients: StageClients, config: EnvironmentConfig): Promise<PoolState> {
  const table = stageNames(config).stateTable;
  try {
    return await readPool(clients.ddb, table);
  } catch (error) {
    if (isMissingTable(error)) throw notDeployed(config, `table ${table}`);
    throw error;
  }
}

/** A change asked of the pool: its new settings, when, and (with budget 0) the budget a resume restores. */
interface PoolRequest {
  readonly pool: PoolSettings;
  readonly now: number;
  readonly pausedFromVcpu?: number;
}

async function apply(clients: StageClients, config: EnvironmentConfig, { pool, now, pausedFromVcpu }: PoolRequest): Promise<PoolChange> {
  const before = await currentPool(clients, config);
  try {
    await configurePool(clients.ddb, { settings: configurePoolSettingsOf(config, stageNames(config).stateTable), input: pool, now, pausedFromVcpu });
  } catch (error) {
    if (/^invalid pool settings/.test((error as Error).message)) throw new CliError((error as Error).message, EXIT.usage);
    throw error;
  }
  return { stage: config.stage, before: viewOf(before, now), after: viewOf(await currentPool(clients, config), now) };
}

/** Budget 0: nothing new is admitted; the budget is kept for resume. */
export async function pause(clients: StageClients, config: EnvironmentConfig, now: number): Promise<PoolChange> {
  const pool = await currentPool(clients, config);
  if (pool.budgetVcpu === 0)
    throw new CliError(
      `stage ${config.stage} is already paused${pool.pausedFromVcpu !== undefined ? ` (resume restores ${pool.pausedFromVcpu} vCPU)` : ''}`,
      EXIT.usage,
    );
  return apply(clients, config, { pool: { budgetVcpu: 0, ratePerSecond: pool.ratePerSecond, burst: pool.burst }, now, pausedFromVcpu: pool.budgetVcpu });
}

/** The budget from before the pause (or the stage's configured one, when the pause was not sluice's). */
export async function resume(clients: StageClients, config: EnvironmentConfig, now: number): Promise<PoolChange> {
  const pool = await currentPool(clients, config);
  if (pool.budgetVcpu > 0)
    throw new CliError(`stage ${config.stage} is not paused (budget ${pool.budgetVcpu} vCPU); sluice resize changes the budget`, EXIT.usage);
  return apply(clients, config, {
    pool: { budgetVcpu: pool.pausedFromVcpu ?? config.capacity.vcpuBudget, ratePerSecond: pool.ratePerSecond, burst: pool.burst },
    now,
  });
}

export async function resize(
  clients: StageClients,
  config: EnvironmentConfig,
  wanted: { vcpu: number; rate?: number; burst?: number },
  now: number,
): Promise<PoolChange> {
  checkRouteRoom(config, wanted.vcpu);
  const pool = await currentPool(clients, config);
  return apply(clients, config, {
    pool: { budgetVcpu: wanted.vcpu, ratePerSecond: wanted.rate ?? pool.ratePerSecond, burst: wanted.burst ?? pool.burst },
    now,
  });
}

/** A budget (but 0, a pause) must leave every route room for a task beside the others' reserves, as the schema checks. */
function checkRouteRoom(config: EnvironmentConfig, budgetVcpu: number): void {
  if (!config.routes || budgetVcpu === 0) return;
  const problems = routeRoomProblems(config.routes, config.task, budgetVcpu, '--vcpu');
  if (problems.length === 0) return;
  const named = problems.map((p) => (p.route === undefined ? p.message : `route '${config.routes![p.route].name}' ${p.message}`));
  throw new CliError(`invalid pool settings: ${named.join('; ')}`, EXIT.usage);
}

const show = (v: PoolView) =>
  `budget ${v.budgetVcpu} vCPU (effective ${round(v.effectiveVcpu)}), ${round(v.inUseVcpu)} in use, ${v.ratePerSecond} launches/s, burst ${v.burst}${v.pausedFromVcpu !== undefined ? `; paused from ${v.pausedFromVcpu}` : ''}`;
const round = (n: number) => Math.round(n * 100) / 100;

export function formatChange(change: PoolChange): string {
  return [`before  ${show(change.before)}`, `after   ${show(change.after)}`].join('\n');
}

interface DrainOutcome {
  readonly stage: string;
  readonly drained: boolean;
  readonly waitedSeconds: number;
  /** The stage as the drain left it: what still runs (if it timed out) and what is still queued. */
  readonly status: StageStatus;
}

/** No vCPU is leased and no execution runs (batch records the janitor has not settled yet hold nothing). */
export function isDrained(status: StageStatus): boolean {
  return status.vcpu.inUse < 1e-9 && status.runningExecutions === 0;
}

/** Pauses (unless paused), then waits until nothing runs or the timeout passes. Stays paused: resume admits again. */
export async function drain(
  clients: StageClients & { readonly cloudwatch: CloudWatchClient },
  config: EnvironmentConfig,
  options: { timeoutMs: number; intervalMs: number },
  progress: Progress,
  clock: { now(): number; sleep(ms: number): Promise<void> },
): Promise<DrainOutcome> {
  const started = clock.now();
  if ((await currentPool(clients, config)).budgetVcpu > 0) await pause(clients, config, started);
  let status = await readStatus(clients, config, clock.now());
  const initial = Math.max(round(status.vcpu.inUse), 1);
  while (!isDrained(status) && clock.now() - started < options.timeoutMs) {
    progress.update(round(initial - Math.min(status.vcpu.inUse, initial)), initial, `vCPU released; ${status.runningExecutions} executions running`);
    await clock.sleep(options.intervalMs);
    status = await readStatus(clients, config, clock.now());
  }
  progress.end();
  return { stage: config.stage, drained: isDrained(status), waitedSeconds: Math.round((clock.now() - started) / 1000), status };
}

export function formatDrain(outcome: DrainOutcome): string {
  const s = outcome.status;
  const head = outcome.drained
    ? `stage ${outcome.stage} drained in ${outcome.waitedSeconds} s: nothing runs; admission stays paused (sluice resume admits again)`
    : `stage ${outcome.stage} not drained after ${outcome.waitedSeconds} s: ${round(s.vcpu.inUse)} vCPU still leased, ${s.runningExecutions} executions running`;
  return [
    head,
    `still queued: ${s.backlog.waiting} waiting, ${s.backlog.inFlight} in flight, ${s.backlog.delayed} delayed; ${s.deadLetters.intake + s.deadLetters.rule} dead letters`,
  ].join('\n');
}
