/**
 * The dispatcher: the only admitter. It takes from the intake queue only as many messages as the pool can admit
 * right now (free vCPU within the effective budget, and launch tokens), so a message waiting for capacity is never
 * received, costs nothing and never counts toward the DLQ's maxReceiveCount. It admits a batch with one
 * transaction (the pool's counters, a lease on each job's ledger row, the batch record), starts one execution for
 * it, and loops while budget, tokens and messages remain.
 *
 * It gathers batches: when fewer jobs than a full batch can go now but more are waiting, it waits up to the batch
 * window for more room (a release, a token) and admits once the batch is full or the window has closed; short of
 * budget it looks again every 100 ms, so a batch filled by releases goes at once, and short of tokens it wakes when
 * the bucket holds a full batch. Jobs that end together are then admitted together, and a batch's fixed costs — its execution,
 * the pool's write, its record — are shared.
 *
 * Short of budget it stops: every lease release wakes it (the state machine invokes it), and a schedule does every
 * minute, so waiting work costs nothing. It runs one at a time (reserved concurrency 1), so the wake-ups of a batch's
 * releases wait while one run admits into the room they made. When it stops short of room on a strongly consistent
 * read of the releases, it records that look on POOL (`lastLook`); a wake-up for a release made before it, while the
 * pool stands as it looked, stops after reading POOL alone.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { reclaimUnstartedBatch } from './batch-start';
import { admitAndStart } from './dispatch-batch';
import { releasesUnread, sawReleases, StartedBatches, type PoolView, type Run, type RunContext, type Wake } from './dispatcher-run';
import { dispatcherSettingsFromEnv, type DispatcherSettings } from './environment';
import { gather } from './intake-gather';
import { keepLastLookTrue, releaseAlreadySeen } from './last-look';
import {
  inUseVcpu,
  planAdmission,
  readPool,
  readPoolItem,
  readReleased,
  tokensReadyAt,
  withReleased,
  type AdmissionPlan,
  type PoolItem,
  type PoolState,
} from './limiter';
import type { DispatcherRunSummary } from './log-events';
import { objectsPerTaskOf, tasksFor, tasksPerAdmission } from './packing';
import { nextRoute, ownByRoute, routesOf, withRouteCaps, type RouteSettings, type RouteTurn } from './routes';
import { jsonLog, systemClock, type AwsClient, type Clock, type Log } from './runtime';

export { StartedBatches, type Wake } from './dispatcher-run';

interface DispatcherDeps {
  readonly sqs: AwsClient;
  readonly sfn: AwsClient;
  readonly ddb: AwsClient;
  readonly clock: Clock;
  readonly settings: DispatcherSettings;
  readonly log?: Log;
  /** Batches this process saw started (default: the process's own; a twin world passes one of its own). */
  readonly started?: StartedBatches;
  /** What woke this run, when it says (the state machine's and the janitor's wake-ups do). */
  readonly wake?: Wake;
}

/**
 * While a batch waits for budget, the released counters are read again this often: the jobs of a batch end within
 * moments of each other, so the batch is often full well before its window closes. Each look is one read of the
 * release shards (64 eventually consistent reads, 32 read units) and one GetQueueAttributes.
 */
const BATCH_LOOK_AGAIN_MS = 100;

const startedInThisProcess = new StartedBatches();

/** How long a route whose receive came back empty counts as having no backlog: SQS's approximate count lags a moment. */
const EMPTY_ROUTE_PAUSE_MS = 2000;

export async function runDispatcher(input: DispatcherDeps): Promise<DispatcherRunSummary> {
  const { clock, settings } = input;
  const context: RunContext = { ...input, started: input.started ?? startedInThisProcess, log: input.log ?? (() => undefined), summary: emptySummary() };
  const { ddb, log, summary } = context;
  const started = clock.now();
  const item = await readPoolItem(ddb, settings.tableName);
  if (releaseAlreadySeen(item, context.wake?.releasedAt)) {
    summary.stoppedBecause = 'release-seen';
    log({ event: 'dispatcherDone', ...summary, ms: clock.now() - started });
    return summary;
  }
  let run: Run | undefined;
  try {
    run = { ...context, view: await startingView(context, item), emptyRoutes: new Map() };
    for (;;) {
      if (clock.now() - started >= settings.maxRunMs) {
        summary.stoppedBecause = 'time-limit';
        break;
      }
      if ((await dispatchRound(run)) === 'stop') break;
    }
  } catch (error) {
    // It may have found room it never used: the wake-ups queued behind it must look.
    if (item.lastLook !== undefined) await keepLastLookTrue({ ddb, tableName: settings.tableName, log, start: item });
    throw error;
  }
  await keepLastLookTrue({ ddb, tableName: settings.tableName, log, start: item, last: run.view, stoppedBecause: summary.stoppedBecause });
  log({ event: 'dispatcherDone', ...summary, ms: clock.now() - started });
  return summary;
}

function emptySummary(): DispatcherRunSummary {
  return { admitted: 0, executionsStarted: 0, poison: 0, duplicates: 0, deferred: 0, waits: 0, reclaimed: 0, stoppedBecause: 'queue-empty' };
}

type RoundOutcome = 'next' | 'stop';

/**
 * A wake-up that made room, from its event: the state machine's after a release (with when it was made: its
 * releasedAt, if well formed) and the janitor's. Undefined for uploads, the schedule and anything else.
 */
export function wakeOf(event: unknown): Wake | undefined {
  const { reason, releasedAt } = (event ?? {}) as { reason?: unknown; releasedAt?: unknown };
  if (reason === 'janitor') return {};
  if (reason !== 'lease-released') return undefined;
  const at = typeof releasedAt === 'string' ? Date.parse(releasedAt) : NaN;
  return Number.isFinite(at) ? { releasedAt: at } : {};
}

/**
 * The pool the run starts from: a batch the last run admitted but never started is given back first (once its start
 * grace has passed). Woken by room made, it reads the releases strongly consistently: an eventually consistent read
 * might miss that room.
 */
async function startingView(context: RunContext, item: PoolItem): Promise<PoolView> {
  const { ddb, clock, settings } = context;
  const consistent = context.wake !== undefined;
  const at = clock.now();
  const pool = withReleased(item, await readReleased(ddb, settings.tableName, consistent, (ms) => clock.sleep(ms)));
  const view: PoolView = { pool, releasedFresh: true, consistentReadAt: consistent ? at : undefined, batchOpenedAt: undefined };
  if (!(await reclaimUnstartedBatch(context, pool))) return view;
  context.summary.reclaimed++;
  // What it gave back is in the shards now; look again consistently before stopping short of room.
  releasesUnread(view, await readPool(ddb, settings.tableName));
  return view;
}

/**
 * One round: plan from the pool, then stop, wait for room, or gather a batch from the route whose turn it is and admit
 * it. The stage is out of room when not even its smallest task fits; the route whose turn it is may need more: its
 * turn then waits for releases to make that room.
 */
async function dispatchRound(run: Run): Promise<RoundOutcome> {
  const { clock, settings, view } = run;
  const now = clock.now();
  const planFor = (taskVcpu: number) => planAdmission(view.pool, now, taskVcpu, settings.jobsPerExecution, settings.capacityWeights);
  const smallest = Math.min(...routesOf(settings).map((route) => route.taskVcpu));
  const stagePlan = planFor(smallest);
  if (stagePlan.count === 0 && outOfRoom(stagePlan)) return rereadOrStop(run, stagePlan.limitedBy);
  const found = placeableTurn(run, await routeBacklogs(run), stagePlan, (taskVcpu) => (taskVcpu === smallest ? stagePlan : planFor(taskVcpu)));
  if (!('turn' in found)) return found.held ? rereadOrStop(run, 'routes-held') : 'stop';
  const { turn, plan } = found;
  if (turn.tasks === 0 || (plan.count === 0 && outOfRoom(plan))) return rereadOrStop(run, plan.limitedBy === 'account' ? 'account' : 'budget');
  if (await waitedForFullBatch(run, plan, now, turn)) return 'next';
  view.batchOpenedAt = undefined;
  const tasks = Math.min(plan.count, turn.tasks, tasksPerAdmission(settings.jobsPerExecution, objectsPerTaskOf(turn.route)));
  return gatherAndAdmit(run, turn.route, tasks);
}

/**
 * The turn to take, and its route's plan. A route whose task no capacity class has room for, while smaller ones fit,
 * is passed over and the others go meanwhile: a turn kept for it would wait for a release that may never come.
 */
function placeableTurn(
  run: Run,
  backlogs: readonly number[],
  stagePlan: AdmissionPlan,
  planFor: (taskVcpu: number) => AdmissionPlan,
): { turn: RouteTurn; plan: AdmissionPlan } | { held: boolean } {
  const passedOver = new Set<string>();
  for (;;) {
    const { turn, held } = nextTurn(run, backlogs, stagePlan.effectiveVcpu, passedOver);
    if (!turn) return { held };
    const plan = planFor(turn.route.taskVcpu);
    if (!(plan.count === 0 && plan.limitedBy === 'account' && plan !== stagePlan)) return { turn, plan };
    passedOver.add(turn.route.name);
  }
}

function outOfRoom(plan: AdmissionPlan): plan is AdmissionPlan & { limitedBy: 'budget' | 'account' } {
  return plan.limitedBy === 'budget' || plan.limitedBy === 'account';
}

/**
 * The route to take from now (functions/routes.ts), from each route's visible backlog and use, the routes passed over
 * this round left out. Undefined when no route has a backlog it may take from: every queue is empty, or the routes
 * with backlog are at their caps, too large for the stage now, or passed over (held: releases wake the dispatcher).
 */
function nextTurn(run: Run, backlogs: readonly number[], stageVcpu: number, passedOver: ReadonlySet<string>): { turn?: RouteTurn; held: boolean } {
  const configured = routesOf(run.settings);
  const inUse = ownByRoute(run.view.pool);
  const now = run.clock.now();
  const counted = (route: RouteSettings, backlog: number) => (pausedAfterEmptyReceive(run, route, now) || passedOver.has(route.name) ? 0 : backlog);
  // With the caps an operator set at run time; the admission applies them again, to the pool it writes on.
  const routes = withRouteCaps(configured, run.view.pool.routeCaps);
  const demands = routes.map((route, i) => ({ route, backlog: counted(route, backlogs[i]), inUseVcpu: inUse[route.name] ?? 0 }));
  // With routes, what the stage holds in all (routes removed since still hold theirs). Without, the one route's turn
  // is all the budget: admission's plan bounds it by the room, and a batch short of room may wait to fill.
  const turn = nextRoute(demands, stageVcpu, run.settings.routes ? inUseVcpu(run.view.pool) : undefined);
  if (!turn) return { held: demands.some((d) => d.backlog > 0) || passedOver.size > 0 };
  return { turn: { ...turn, route: configured[routes.indexOf(turn.route)] }, held: false };
}

/** Each route's visible backlog in tasks (a packed task runs several of its messages), in the order of its settings. */
function routeBacklogs(run: Run): Promise<number[]> {
  return Promise.all(routesOf(run.settings).map(async (route) => tasksFor(await visibleBacklog(run.sqs, route.queueUrl), objectsPerTaskOf(route))));
}

/**
 * Out of room. Releases since the last read only make room: look once more, strongly consistently (the look the
 * run records), before stopping. Stopped, the run costs nothing while it waits: the next release wakes the dispatcher.
 */
async function rereadOrStop(run: Run, limitedBy: 'budget' | 'account' | 'routes-held'): Promise<RoundOutcome> {
  if (!run.view.releasedFresh) {
    await rereadReleased(run, true);
    return 'next';
  }
  run.summary.stoppedBecause = limitedBy === 'account' ? 'account-full' : limitedBy === 'budget' ? 'no-budget' : 'routes-held';
  return 'stop';
}

async function rereadReleased(run: Run, consistent = false): Promise<void> {
  const { ddb, clock, settings } = run;
  const at = clock.now();
  sawReleases(run.view, await readReleased(ddb, settings.tableName, consistent, (ms) => clock.sleep(ms)), consistent ? at : undefined);
}

/**
 * When fewer than a full batch fit now, waits for more room (releases, tokens) until the batch window closes, so
 * jobs that can go together share one execution. A full batch is as many as wait, up to a batch, and no more than
 * the bucket or the effective budget can ever hold at once. Answers whether it waited: the round is then planned again.
 */
async function waitedForFullBatch(run: Run, plan: AdmissionPlan, now: number, turn: RouteTurn): Promise<boolean> {
  const { clock, settings, view } = run;
  // A batch goes to one capacity class: no fuller than the roomiest one can take; and no more than the route's turn.
  const full = Math.min(
    tasksPerAdmission(settings.jobsPerExecution, objectsPerTaskOf(turn.route)),
    turn.backlog,
    turn.tasks,
    view.pool.burst,
    Math.max(1, Math.floor(plan.effectiveVcpu / turn.route.taskVcpu)),
    Math.max(1, plan.batchRoom ?? Infinity),
  );
  if (Math.min(plan.count, turn.tasks) >= full) return false;
  const opening = view.batchOpenedAt === undefined;
  view.batchOpenedAt ??= now;
  const windowEnds = view.batchOpenedAt + settings.batchWindowMs;
  // The window closed with room for some: they go as they are.
  if (now >= windowEnds && plan.count > 0) return false;
  const wakeAt = lookAgainAt(plan, view.pool, full, now, windowEnds);
  // A pause counts once, however often it looks again.
  if (opening || plan.count === 0) run.summary.waits++;
  await clock.sleep(Math.max(1, Math.ceil(wakeAt - now)));
  // Room was not what it waited for on tokens: read the releases only when room runs short.
  if (plan.limitedBy === 'tokens') releasesUnread(view);
  else await rereadReleased(run);
  return true;
}

/** When a batch short of `full` plans again, its window closing at `windowEnds`. */
function lookAgainAt(plan: AdmissionPlan, pool: PoolState, full: number, now: number, windowEnds: number): number {
  // None can go: the next token is when one can.
  if (plan.count === 0) return plan.nextTokenAt;
  // Short of budget, it looks again soon and goes once the batch is full.
  if (plan.limitedBy === 'budget') return Math.min(windowEnds, now + BATCH_LOOK_AGAIN_MS);
  // Short of tokens, it goes once the bucket holds a full batch: waiting longer, the bucket would pass its burst
  // and every token beyond it would be lost to the launch rate.
  if (plan.limitedBy === 'tokens') return Math.min(windowEnds, tokensReadyAt(pool, full, now));
  // Short of the account's room it waits out the window: the account's free vCPU is a reading up to a minute old,
  // and filling it faster only meets the real quota sooner (more vCPU-limit errors in the twin).
  return windowEnds;
}

/** Receives the route's jobs for up to `tasks` tasks and admits them as one batch; stops the run when nothing came or admission failed. */
async function gatherAndAdmit(run: Run, route: RouteSettings, tasks: number): Promise<RoundOutcome> {
  const gathered = await gather(run, route, tasks * objectsPerTaskOf(route));
  // Another route may have backlog: a route's empty receive pauses its turns a moment (SQS's count lags), not the run.
  if (gathered.receivedAny === false) {
    const now = run.clock.now();
    run.emptyRoutes.set(route.name, now + EMPTY_ROUTE_PAUSE_MS);
    return routesOf(run.settings).some((r) => !pausedAfterEmptyReceive(run, r, now)) ? 'next' : 'stop';
  }
  if (gathered.jobs.length === 0) return 'next';
  const result = await admitAndStart(run, run.view.pool, route, gathered.jobs);
  if (result.outcome !== 'ok') {
    run.summary.stoppedBecause = result.outcome;
    return 'stop';
  }
  releasesUnread(run.view, result.pool);
  return 'next';
}

/** A route whose receive came back empty sits out its turns a moment: SQS's count of visible messages lags. */
function pausedAfterEmptyReceive(run: Run, route: RouteSettings, now: number): boolean {
  return (run.emptyRoutes.get(route.name) ?? 0) > now;
}

async function visibleBacklog(sqs: AwsClient, queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
}

let clients: { sqs: SQSClient; sfn: SFNClient; ddb: DynamoDBDocumentClient } | undefined;

/** Lambda entry: woken by uploads, lease releases (the event says when), the janitor and a schedule. */
export async function handler(event: unknown): Promise<DispatcherRunSummary> {
  clients ??= { sqs: new SQSClient({}), sfn: new SFNClient({}), ddb: DynamoDBDocumentClient.from(new DynamoDBClient({})) };
  return runDispatcher({ ...clients, clock: systemClock, settings: dispatcherSettingsFromEnv(), log: jsonLog('dispatcher'), wake: wakeOf(event) });
}
