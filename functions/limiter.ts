/**
 * The global limiter. What decides admission lives in one DynamoDB item, `POOL`, written by admissions (the
 * dispatcher, one at a time), by the capacity reader, by the state machine on a vCPU-limit error (the hold) and by
 * operators: the configured budget, the launch-rate token bucket, the vCPU admitted so far, and the account's free
 * vCPU as last measured; the dispatcher also records there its last look short of room (`lastLook`). Releases never
 * touch it: each release adds to one of RELEASE_SHARDS `RELEASED#<n>` items, in one transaction with the job's
 * lease. The vCPU in use is admitted − Σ released.
 *
 * Why not one counter, decremented by each release: DynamoDB cancels a transaction that touches an item another
 * transaction is writing (TransactionConflict), and releases arrive together — every job of a batch ends within
 * moments of the others. Spread over shards, releases rarely meet; the dispatcher, the only admitter, never
 * competes with itself on POOL.
 *
 * The cap holds without reading a snapshot: released only ever grows, so a stale read of it overstates what is in
 * use — a plan from it is never too generous. Admission is one TransactWriteItems: POOL (admitted as read, premise
 * unchanged, tokens there) + a lease per job on its ledger row (none held yet) + the batch record.
 *
 * The token bucket is kept as GCRA: one number, the "theoretical arrival time" `tat`. With T = 1000 / rate ms per
 * token, n tokens may be spent at `now` iff max(tat, now) + n·T ≤ now + burst·T; spending sets tat = max(tat, now) + n·T.
 */
import { createHash, randomUUID } from 'node:crypto';
import { GetCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { batchGetItems } from './batch-get';
import { isConditionFailure, isRetryableCancellation, isTransactionConflict } from './dynamo-errors';
import type { CapacityClass } from './capacity-codes';
import { addCounts, countsOf } from './counts';
import {
  ADMITTED_BY_CLASS,
  byClassOf,
  classAttribute,
  CLASS_SHORT_AT,
  ownByClass,
  placeBatch,
  RELEASED_BY_CLASS,
  roomiestClassSlots,
  shortAtOf,
  type ByClass,
  type ClassReadings,
  type ClassWeights,
} from './placement';
import { ADMITTED_BY_ROUTE, CAP_OF_ROUTE, RELEASED_BY_ROUTE, routeCap, type ByRoute, type RouteSettings } from './routes';
import type { AwsClient } from './runtime';

export const POOL_KEY = { pk: 'POOL' } as const;
/**
 * Shards of the released-vCPU counter. Two releases writing one shard while a transaction holds it cancel one (it is
 * retried after up to a second, at a state transition and a write unit each). Jobs take shards in turn as they are
 * admitted (batchReleaseShards), so the jobs of a batch, which end together, never share one: there must be at least
 * as many shards as the largest batch (the inline Map's 40). Every dispatcher run that reads the pool reads all of
 * them (64 reads, 32 read units eventually consistent). The number cannot change on a live pool: code summing 64
 * next to code summing fewer would miscount releases (missed by the one, or counted twice once folded for it).
 */
export const RELEASE_SHARDS = 64;
export const RELEASED_KEY_PREFIX = 'RELEASED#';

export function releasedShardKeys(): Array<{ pk: string }> {
  return Array.from({ length: RELEASE_SHARDS }, (_, n) => ({ pk: `${RELEASED_KEY_PREFIX}${n}` }));
}

/**
 * The release shards of a batch just admitted (`pool` is the pool after its admission): consecutive shards, from
 * where the previous admission's jobs left off (admitted vCPU counted in jobs of this size). A batch's jobs end
 * together, and batches admitted one after the other end close together too: on distinct shards their releases do
 * not cancel each other (up to RELEASE_SHARDS jobs in a row).
 */
export function batchReleaseShards(pool: Pick<PoolState, 'admittedVcpu'>, taskVcpu: number, jobs: number): string[] {
  const first = Math.round(pool.admittedVcpu / taskVcpu) - jobs;
  return Array.from({ length: jobs }, (_, i) => `${RELEASED_KEY_PREFIX}${(((first + i) % RELEASE_SHARDS) + RELEASE_SHARDS) % RELEASE_SHARDS}`);
}

/** The shard of a release made outside a batch's execution (the janitor, a batch given back). */
export function releasedShardKey(jobId: string): { pk: string } {
  return { pk: `${RELEASED_KEY_PREFIX}${parseInt(jobId.slice(0, 8), 16) % RELEASE_SHARDS}` };
}

/** What the capacity reader last measured of the account (Service Quotas and AWS/Usage), per capacity class. */
export interface AccountView {
  /** vCPU this stage may hold in all, given the quotas and what other workloads use: Σ over the classes it may place tasks in. */
  readonly freeVcpu: number;
  readonly readAt: number;
  readonly classes: Readonly<Record<string, { quotaVcpu: number; usedVcpu: number; othersVcpu: number }>>;
}

/** The POOL item as read: everything the pool is but the released sum, which lives in the RELEASED shards. */
export interface PoolItem {
  /** The configured share (environments/<stage>.ts, or an operator's resize); 0 pauses admission. */
  readonly budgetVcpu: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  /** vCPU admitted since the pool was created; only grows. */
  readonly admittedVcpu: number;
  /** The same per capacity class the batches were placed in (functions/placement.ts). */
  readonly admittedByClass: ByClass;
  /** The same per route (functions/routes.ts), when the stage has routes. */
  readonly admittedByRoute: ByRoute;
  /** Route caps an operator set at run time (`sluice resize --route`): they stand in for the configured maxVcpu. */
  readonly routeCaps: ByRoute;
  /**
   * Batches admitted since the pool was created: each admission is conditioned on it and adds one, and its
   * execution's name carries it, so no two admissions ever share an execution name.
   */
  readonly batchesAdmitted: number;
  /** GCRA theoretical arrival time, epoch ms. */
  readonly tat: number;
  readonly account?: AccountView;
  /**
   * When RunTask last answered "You've reached the limit on the number of vCPUs" (ISO time, as the state machine
   * writes it): admission takes nothing new until the capacity reader has measured the account after it.
   */
  readonly capacityLimitAt?: string;
  /** Set while paused by `sluice pause`: the budget `sluice resume` restores. */
  readonly pausedFromVcpu?: number;
  /** The last batch admitted, until it is known to have started: a dispatcher that died before StartExecution left it. */
  readonly lastAdmission?: { readonly execution: string; readonly at: number };
  /** The last dispatcher run's look short of room, while nothing it decided on has changed since. */
  readonly lastLook?: LastLook;
}

export interface PoolState extends PoolItem {
  /** Σ of the RELEASED shards as last read; only grows, so an older value overstates what is in use. */
  readonly releasedVcpu: number;
  /** The same per capacity class, and per route. */
  readonly releasedByClass: ByClass;
  readonly releasedByRoute: ByRoute;
  /** When Fargate last had no capacity in each class (epoch ms), as the capacity returns recorded it. */
  readonly classShortAt: ByClass;
}

/** The RELEASED shards summed: in all and per capacity class; and when each class was last short of capacity. */
export interface Released {
  readonly vcpu: number;
  readonly byClass: ByClass;
  readonly byRoute: ByRoute;
  readonly classShortAt: ByClass;
}

/**
 * What a dispatcher run that stopped short of room decided on: the released sum read strongly consistently at `at`
 * (so it counted every release made before then), and the rest of the pool as it stood. While the pool still
 * stands so, a wake-up for a release made before `at` would find what that run found.
 */
export interface LastLook {
  readonly at: number;
  readonly admittedVcpu: number;
  readonly budgetVcpu: number;
  readonly accountReadAt?: number;
  readonly capacityLimitAt?: string;
}

export interface PoolSettings {
  readonly budgetVcpu: number;
  readonly ratePerSecond: number;
  readonly burst: number;
}

type LimitedBy = 'budget' | 'account' | 'tokens' | 'demand';

export interface AdmissionPlan {
  /** Jobs that may be admitted now. */
  readonly count: number;
  readonly limitedBy: LimitedBy;
  /** When the next launch token accrues (epoch ms), if tokens are what is short. */
  readonly nextTokenAt: number;
  readonly effectiveVcpu: number;
  /** The class the jobs go to, when placed. */
  readonly capacityClass?: CapacityClass;
  /** When placed: the most one batch could take now (the roomiest class's room), however many are wanted. */
  readonly batchRoom?: number;
}

// Slack for float rounding at the GCRA boundary and in vCPU sums; far below a millisecond or a quarter vCPU.
const EPSILON = 1e-6;

export function inUseVcpu(pool: Pick<PoolState, 'admittedVcpu' | 'releasedVcpu'>): number {
  return Math.max(0, pool.admittedVcpu - pool.releasedVcpu);
}

/**
 * How long a vCPU-limit hold, and an account reading, are believed. The capacity reader runs every minute: a hold it
 * has not lifted in this long, or a reading it has not renewed, means it is failing (its error alarm says so), and
 * admission goes on by the budget alone — over the account's quota, RunTask says so again, and the job goes back.
 */
export const HOLD_EXPIRES_MS = 5 * 60_000;
export const ACCOUNT_READING_MAX_AGE_MS = 5 * 60_000;

/** Whether a vCPU-limit hold still holds at `now`. */
export function holdStands(pool: Pick<PoolState, 'capacityLimitAt'>, now: number): boolean {
  return pool.capacityLimitAt !== undefined && now - Date.parse(pool.capacityLimitAt) < HOLD_EXPIRES_MS;
}

/**
 * What admission may fill at `now`: the configured budget, or less when the account has less to give. After a
 * vCPU-limit error, nothing more until the capacity reader has measured the account after it (`capacityLimitAt`
 * cleared) or the hold has expired.
 */
export function effectiveBudget(pool: PoolState, now: number): { vcpu: number; limitedBy: 'budget' | 'account' } {
  if (holdStands(pool, now)) return { vcpu: Math.min(pool.budgetVcpu, inUseVcpu(pool)), limitedBy: 'account' };
  const free = pool.account && now - pool.account.readAt < ACCOUNT_READING_MAX_AGE_MS ? pool.account.freeVcpu : undefined;
  if (free !== undefined && free < pool.budgetVcpu) return { vcpu: Math.max(0, free), limitedBy: 'account' };
  return { vcpu: pool.budgetVcpu, limitedBy: 'budget' };
}

function tokenIntervalMs(pool: Pick<PoolState, 'ratePerSecond'>): number {
  return 1000 / pool.ratePerSecond;
}

export function tokensAvailable(pool: Pick<PoolState, 'ratePerSecond' | 'burst' | 'tat'>, now: number): number {
  if (pool.ratePerSecond <= 0) return 0;
  const interval = tokenIntervalMs(pool);
  const base = Math.max(pool.tat, now);
  return Math.max(0, Math.floor((now + pool.burst * interval - base) / interval + EPSILON));
}

function freeSlots(pool: PoolState, taskVcpu: number, now: number): number {
  return Math.max(0, Math.floor((effectiveBudget(pool, now).vcpu - inUseVcpu(pool)) / taskVcpu + EPSILON));
}

/**
 * How many of `wanted` jobs of `taskVcpu` each the pool admits at `now`, and what limits it. Given the stage's
 * capacity weights, the jobs are placed too: one class takes them all, so they are no more than it has room for.
 */
export function planAdmission(pool: PoolState, now: number, taskVcpu: number, wanted: number, weights?: ClassWeights): AdmissionPlan {
  const effective = effectiveBudget(pool, now);
  const slots = freeSlots(pool, taskVcpu, now);
  const tokens = tokensAvailable(pool, now);
  const unplaced = Math.max(0, Math.min(slots, tokens, wanted));
  const classes = weights ? { weights, own: ownByClass(pool), readings: classReadings(pool, now), taskVcpu, shortAt: pool.classShortAt, now } : undefined;
  const placement = classes && unplaced > 0 ? placeBatch({ ...classes, count: unplaced }) : undefined;
  const count = placement?.count ?? unplaced;
  // Fewer than the budget and tokens allow: the placed class's room in the account is what is short.
  const limitedBy: LimitedBy = count === wanted ? 'demand' : count < unplaced ? 'account' : slots <= tokens ? effective.limitedBy : 'tokens';
  return {
    count,
    limitedBy,
    nextTokenAt: tokensReadyAt(pool, 1, now),
    effectiveVcpu: effective.vcpu,
    ...(placement && count > 0 ? { capacityClass: placement.capacityClass } : {}),
    ...(classes ? { batchRoom: roomiestClassSlots(classes) } : {}),
  };
}

/** When the bucket holds `n` launch tokens (epoch ms, `now` if it does): the n-th accrues when max(tat, now) + n·T ≤ now' + burst·T. */
export function tokensReadyAt(pool: Pick<PoolState, 'ratePerSecond' | 'burst' | 'tat'>, n: number, now: number): number {
  const interval = pool.ratePerSecond > 0 ? tokenIntervalMs(pool) : Infinity;
  return Math.max(now, Math.max(pool.tat, now) + n * interval - pool.burst * interval);
}

/** The account's classes as last measured, while the reading is fresh enough to go by. */
function classReadings(pool: PoolState, now: number): ClassReadings | undefined {
  return pool.account && now - pool.account.readAt < ACCOUNT_READING_MAX_AGE_MS ? pool.account.classes : undefined;
}

/**
 * Σ of the RELEASED shards. Eventually consistent is enough for a plan (an older sum only overstates what is in
 * use); strongly consistent when the reader must know every release made before the read started.
 */
export async function readReleased(ddb: AwsClient, tableName: string, consistent = false, sleep?: (ms: number) => Promise<void>): Promise<Released> {
  const shards = await batchGetItems(ddb, {
    table: tableName,
    keys: releasedShardKeys(),
    read: consistent ? { ConsistentRead: true } : {},
    sleep,
  });
  return releasedOf(shards);
}

/** What the RELEASED shard items add up to: the released vCPU in all and per class, and each class's last shortage. */
export function releasedOf(shards: ReadonlyArray<Readonly<Record<string, unknown>>>): Released {
  return {
    vcpu: shards.reduce((total, shard) => total + Number(shard.releasedVcpu ?? 0), 0),
    byClass: shards.reduce<ByClass>((total, shard) => addCounts(total, byClassOf(shard, RELEASED_BY_CLASS)), {}),
    byRoute: shards.reduce<ByRoute>((total, shard) => addCounts(total, countsOf(shard, RELEASED_BY_ROUTE)), {}),
    classShortAt: shortAtOf(shards),
  };
}

/** The POOL item alone, strongly consistent (it is what the admission's condition checks): all but the released sum. */
export async function readPoolItem(ddb: AwsClient, tableName: string): Promise<PoolItem> {
  const { Item } = await ddb.send(new GetCommand({ TableName: tableName, Key: POOL_KEY, ConsistentRead: true }));
  if (!Item) throw new Error(`limiter pool item missing from table ${tableName}: run the configure-pool function (terraform apply does)`);
  return poolFromItem(Item);
}

/** Reads the pool: POOL, then the released sum. */
export async function readPool(ddb: AwsClient, tableName: string): Promise<PoolState> {
  const item = await readPoolItem(ddb, tableName);
  return withReleased(item, await readReleased(ddb, tableName));
}

export function withReleased(pool: PoolItem, released: Released): PoolState {
  return {
    ...pool,
    releasedVcpu: released.vcpu,
    releasedByClass: released.byClass,
    releasedByRoute: released.byRoute,
    classShortAt: released.classShortAt,
  };
}

function poolFromItem(item: Record<string, unknown>): PoolItem {
  const lastAdmission = item.lastAdmission as { execution: unknown; at: unknown } | undefined;
  return {
    budgetVcpu: Number(item.budgetVcpu),
    ratePerSecond: Number(item.ratePerSecond),
    burst: Number(item.burst),
    admittedVcpu: Number(item.admittedVcpu ?? 0),
    admittedByClass: byClassOf(item, ADMITTED_BY_CLASS),
    admittedByRoute: countsOf(item, ADMITTED_BY_ROUTE),
    routeCaps: countsOf(item, CAP_OF_ROUTE),
    batchesAdmitted: Number(item.batchesAdmitted ?? 0),
    tat: Number(item.tat ?? 0),
    account: item.account ? (item.account as AccountView) : undefined,
    capacityLimitAt: item.capacityLimitAt !== undefined ? String(item.capacityLimitAt) : undefined,
    pausedFromVcpu: item.pausedFromVcpu !== undefined ? Number(item.pausedFromVcpu) : undefined,
    lastAdmission: lastAdmission ? { execution: String(lastAdmission.execution), at: Number(lastAdmission.at) } : undefined,
    lastLook: item.lastLook ? (item.lastLook as LastLook) : undefined,
  };
}

/** A job's lease, on its ledger row while it holds vCPU. */
export interface Lease {
  /** The batch it belongs to: its execution's name. */
  readonly execution: string;
  readonly vcpu: number;
  readonly admittedAt: number;
  /** Epoch ms after which the lease counts as abandoned if its execution no longer runs. */
  readonly expiresAt: number;
  /** The capacity class its task was placed in; absent on leases from before tasks were placed per batch. */
  readonly capacityProvider?: CapacityClass;
  /** The route the job came by, when the stage has routes. */
  readonly route?: string;
}

/** The premise an admission was planned on (the settings and the account view it read): the write holds only if it still stands. */
function premise(pool: PoolState, values: Record<string, unknown>, names: Record<string, string>): string[] {
  values[':budget'] = pool.budgetVcpu;
  values[':rate'] = pool.ratePerSecond;
  values[':burst'] = pool.burst;
  const conditions = ['budgetVcpu = :budget', 'ratePerSecond = :rate', 'burst = :burst'];
  names['#account'] = 'account';
  if (pool.account) {
    values[':readAt'] = pool.account.readAt;
    conditions.push('#account.readAt = :readAt');
  } else {
    conditions.push('attribute_not_exists(#account)');
  }
  if (pool.capacityLimitAt !== undefined) {
    values[':limitAt'] = pool.capacityLimitAt;
    conditions.push('capacityLimitAt = :limitAt');
  } else {
    conditions.push('attribute_not_exists(capacityLimitAt)');
  }
  return conditions;
}

/** What an admission takes from the pool at `now`: `vcpu` over `jobs` launches, for the batch named `batch`. */
export interface AdmissionSpend {
  readonly now: number;
  readonly jobs: number;
  readonly vcpu: number;
  readonly batch: string;
  /** The class the batch was placed in. */
  readonly capacityClass?: CapacityClass;
  /** The route the batch came by, when the stage has routes: its counter, and its cap. */
  readonly route?: Pick<RouteSettings, 'name' | 'maxVcpu'>;
}

/**
 * The POOL part of an admission of `vcpu` over `jobs` launches: holds only if the premise stands, the vCPU fits and
 * the tokens are there. DynamoDB conditions cannot add items up, so the bound on admitted vCPU is computed from the
 * read: admitted + vcpu − released ≤ effective. Released only grows, so the bound holds against the true sum too —
 * a stale read is never too generous, and admissions planned on one read may still go through while room remains.
 */
export function poolAdmissionUpdate(tableName: string, pool: PoolState, { now, jobs, vcpu, batch, capacityClass, route }: AdmissionSpend) {
  const interval = tokenIntervalMs(pool);
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {
    ':vcpu': vcpu,
    ':maxAdmitted': effectiveBudget(pool, now).vcpu + pool.releasedVcpu - vcpu + EPSILON,
    ':updatedAt': new Date(now).toISOString(),
    ':last': { execution: batch, at: now },
  };
  values[':batches'] = pool.batchesAdmitted;
  values[':nextBatch'] = pool.batchesAdmitted + 1;
  const conditions = [
    ...premise(pool, values, names),
    'admittedVcpu <= :maxAdmitted',
    // A pool from before batches were counted has none: its first admission counts from 0.
    pool.batchesAdmitted === 0 ? '(attribute_not_exists(batchesAdmitted) OR batchesAdmitted = :batches)' : 'batchesAdmitted = :batches',
  ];
  const sets = ['admittedVcpu = admittedVcpu + :vcpu', 'batchesAdmitted = :nextBatch', 'updatedAt = :updatedAt', 'lastAdmission = :last'];
  if (pool.tat >= now) {
    // Tokens are owed: spend from tat onwards, as long as that stays within the burst window.
    sets.push('tat = tat + :spent');
    conditions.push('tat BETWEEN :now AND :tatLimit');
    values[':now'] = now;
    values[':spent'] = jobs * interval;
    values[':tatLimit'] = now + (pool.burst - jobs) * interval + EPSILON;
  } else {
    // The bucket is full at or past tat: spend from now.
    sets.push('tat = :newTat');
    conditions.push('tat < :now');
    values[':now'] = now;
    values[':newTat'] = now + jobs * interval;
  }
  const adds: string[] = [];
  if (capacityClass) {
    names['#placed'] = classAttribute(ADMITTED_BY_CLASS, capacityClass);
    adds.push('#placed :vcpu');
  }
  if (route) {
    names['#route'] = `${ADMITTED_BY_ROUTE}${route.name}`;
    adds.push('#route :vcpu');
    // The route's cap as read: an operator's resize since then refuses the admission, as a resize of the budget does.
    names['#routeCap'] = `${CAP_OF_ROUTE}${route.name}`;
    const capAsRead = pool.routeCaps[route.name];
    if (capAsRead === undefined) conditions.push('attribute_not_exists(#routeCap)');
    else {
      values[':routeCap'] = capAsRead;
      conditions.push('#routeCap = :routeCap');
    }
    // The route's cap, bounded like the budget: admitted + vcpu − released ≤ maxVcpu, on a released sum that only grows.
    const cap = routeCap(route, pool.routeCaps);
    if (cap !== undefined) {
      values[':maxRouteAdmitted'] = cap + (pool.releasedByRoute[route.name] ?? 0) - vcpu + EPSILON;
      conditions.push('(attribute_not_exists(#route) OR #route <= :maxRouteAdmitted)');
    }
  }
  return {
    TableName: tableName,
    Key: POOL_KEY,
    UpdateExpression: `SET ${sets.join(', ')}${adds.length > 0 ? ` ADD ${adds.join(', ')}` : ''}`,
    ConditionExpression: conditions.join(' AND '),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

/** The pool as an admission that went through left it (TransactWriteItems returns no values). */
export function afterAdmission(pool: PoolState, { now, jobs, vcpu, batch, capacityClass, route }: AdmissionSpend): PoolState {
  const spent = jobs * tokenIntervalMs(pool);
  return {
    ...pool,
    admittedVcpu: pool.admittedVcpu + vcpu,
    admittedByClass: capacityClass ? addCounts(pool.admittedByClass, { [capacityClass]: vcpu }) : pool.admittedByClass,
    admittedByRoute: route ? addCounts(pool.admittedByRoute, { [route.name]: vcpu }) : pool.admittedByRoute,
    batchesAdmitted: pool.batchesAdmitted + 1,
    tat: Math.max(pool.tat, now) + spent,
    lastAdmission: { execution: batch, at: now },
  };
}

/**
 * The released-counter part of a release: one shard, chosen by the job; the class's and the route's counters too when
 * the lease has them. `classShortAt`: Fargate had no capacity in the lease's class then (placement avoids it a while).
 */
export function releasedShardUpdate(
  tableName: string,
  jobId: string,
  { vcpu, capacityProvider, route }: Pick<Lease, 'vcpu' | 'capacityProvider' | 'route'>,
  classShortAt?: string,
) {
  const names: Record<string, string> = {};
  if (capacityProvider) names['#placed'] = classAttribute(RELEASED_BY_CLASS, capacityProvider);
  if (route) names['#route'] = `${RELEASED_BY_ROUTE}${route}`;
  const adds = ['ADD releasedVcpu :vcpu', ...Object.keys(names).map((name) => `${name} :vcpu`)].join(', ');
  const short = classShortAt !== undefined && capacityProvider !== undefined;
  if (short) names['#short'] = `${CLASS_SHORT_AT}${capacityProvider}`;
  return {
    TableName: tableName,
    Key: releasedShardKey(jobId),
    UpdateExpression: short ? `${adds} SET #short = :shortAt` : adds,
    ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
    ExpressionAttributeValues: { ':vcpu': vcpu, ...(short ? { ':shortAt': classShortAt } : {}) },
  };
}

/**
 * A transaction's idempotency token (at most 36 characters): the same request retried by the SDK after a lost
 * answer is applied once. Each call gets its own (a random part), so two callers making the same request — the
 * janitor and the dispatcher giving back one batch — are each answered for their own attempt, not the other's.
 */
export function requestToken(...parts: Array<string | number>): string {
  return createHash('sha256')
    .update([...parts, randomUUID()].join('\n'))
    .digest('hex')
    .slice(0, 36);
}

/**
 * Sets the pool's budget and rate (deploy seeds them; an operator may change them, budget 0 pauses) and creates the
 * runtime state if absent. Leases already held are never touched. `pausedFromVcpu` is the budget a pause keeps for
 * `resume` (any other setting drops it). A vCPU-limit hold is lifted: whoever sets the pool says admission may go on
 * (if the account is still full, the next RunTask says so, and holds again).
 */
export function configureCommand(tableName: string, settings: PoolSettings, now: number, pausedFromVcpu?: number): UpdateCommandInput {
  return {
    TableName: tableName,
    Key: POOL_KEY,
    UpdateExpression:
      'SET budgetVcpu = :budget, ratePerSecond = :rate, burst = :burst, updatedAt = :updatedAt, ' +
      'admittedVcpu = if_not_exists(admittedVcpu, :zero), tat = if_not_exists(tat, :zero)' +
      (pausedFromVcpu === undefined ? '' : ', pausedFromVcpu = :pausedFrom') +
      (pausedFromVcpu === undefined ? ' REMOVE pausedFromVcpu, capacityLimitAt' : ' REMOVE capacityLimitAt'),
    ExpressionAttributeValues: {
      ':budget': settings.budgetVcpu,
      ':rate': settings.ratePerSecond,
      ':burst': settings.burst,
      ':updatedAt': new Date(now).toISOString(),
      ':zero': 0,
      ...(pausedFromVcpu === undefined ? {} : { ':pausedFrom': pausedFromVcpu }),
    },
  };
}

/** Runs a conditional update; false if its condition did not hold. */
export async function tryUpdate(ddb: AwsClient, input: UpdateCommandInput): Promise<boolean> {
  try {
    await ddb.send(new UpdateCommand(input));
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/**
 * An UpdateItem of POOL, again after a jittered pause while it meets a transaction under way on the item: every
 * admission is a transaction on POOL, and DynamoDB refuses a plain write of an item a transaction holds
 * (TransactionConflictException), which the SDK does not retry.
 */
export async function updateRetryingConflicts(ddb: AwsClient, input: UpdateCommandInput, sleep: (ms: number) => Promise<void>): Promise<void> {
  for (let tries = 1; ; tries++) {
    try {
      await ddb.send(new UpdateCommand(input));
      return;
    } catch (error) {
      if (!isTransactionConflict(error) || tries >= CONFLICT_TRIES) throw error;
      await sleep(Math.ceil(Math.random() * CONFLICT_BASE_DELAY_MS * 2 ** tries));
    }
  }
}

const CONFLICT_TRIES = 6;
const CONFLICT_BASE_DELAY_MS = 20;

/**
 * Runs a transaction, again after a jittered pause while it is cancelled for a transient reason only (a conflict, a
 * throttled partition) — the SDK does not retry those. Each try builds its own request (a new ClientRequestToken).
 */
export async function retryingConflicts<T>(sleep: (ms: number) => Promise<void>, attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isRetryableCancellation(error) || tries >= CONFLICT_TRIES) throw error;
      await sleep(Math.ceil(Math.random() * CONFLICT_BASE_DELAY_MS * 2 ** tries));
    }
  }
}
