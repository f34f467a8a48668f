/**
 * The global limiter: one DynamoDB item per stage holds the vCPU budget, the vCPU leased, every lease
 * and a launch-rate token bucket. Admission and release are each ONE conditional UpdateItem, so no
 * reader can act on a stale count: a write whose premise changed fails and is retried from a fresh read.
 *
 * The token bucket is kept as GCRA (generic cell rate algorithm): one number, the "theoretical arrival
 * time" `tat`. With T = 1000 / rate ms per token, n tokens may be spent at `now` iff
 * max(tat, now) + n·T ≤ now + burst·T, and spending sets tat = max(tat, now) + n·T. DynamoDB has no
 * max(), so the write takes one of two forms, each guarded by the condition that makes it correct.
 */
import { GetCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';

export const POOL_KEY = { pk: 'POOL' } as const;

export interface Lease {
  readonly vcpu: number;
  /** Execution name the lease belongs to. */
  readonly execution: string;
  readonly admittedAt: number;
  /** Epoch ms after which the lease is reclaimed even if no event says its execution ended. */
  readonly expiresAt: number;
}

export interface PoolState {
  readonly budgetVcpu: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly inUseVcpu: number;
  /** GCRA theoretical arrival time, epoch ms. */
  readonly tat: number;
  readonly leases: Readonly<Record<string, Lease>>;
}

export interface PoolSettings {
  readonly budgetVcpu: number;
  readonly ratePerSecond: number;
  readonly burst: number;
}

export interface DocumentClient {
  send(command: unknown): Promise<any>;
}

export interface AdmissionPlan {
  /** Jobs that may be admitted now. */
  readonly count: number;
  readonly limitedBy: 'budget' | 'tokens' | 'demand';
  /** When the next launch token accrues (epoch ms), if tokens are what is short. */
  readonly nextTokenAt: number;
}

// Slack for float rounding at the GCRA boundary; far below a millisecond.
const EPSILON = 1e-6;

export function tokenIntervalMs(pool: Pick<PoolState, 'ratePerSecond'>): number {
  return 1000 / pool.ratePerSecond;
}

export function tokensAvailable(pool: PoolState, now: number): number {
  if (pool.ratePerSecond <= 0) return 0;
  const interval = tokenIntervalMs(pool);
  const base = Math.max(pool.tat, now);
  return Math.max(0, Math.floor((now + pool.burst * interval - base) / interval + EPSILON));
}

export function freeSlots(pool: PoolState, taskVcpu: number): number {
  return Math.max(0, Math.floor((pool.budgetVcpu - pool.inUseVcpu) / taskVcpu + EPSILON));
}

/** How many of `wanted` jobs of `taskVcpu` each the pool admits at `now`, and what limits it. */
export function planAdmission(pool: PoolState, now: number, taskVcpu: number, wanted: number): AdmissionPlan {
  const slots = freeSlots(pool, taskVcpu);
  const tokens = tokensAvailable(pool, now);
  const count = Math.max(0, Math.min(slots, tokens, wanted));
  const limitedBy = count === wanted ? 'demand' : slots <= tokens ? 'budget' : 'tokens';
  const interval = pool.ratePerSecond > 0 ? tokenIntervalMs(pool) : Infinity;
  // The next token accrues when max(tat, now) + T ≤ now' + burst·T.
  const nextTokenAt = Math.max(now, Math.max(pool.tat, now) + interval - pool.burst * interval);
  return { count, limitedBy, nextTokenAt };
}

/**
 * Reads the pool. Planning needs only its counters, so the leases (the bulk of the item, ~150 bytes each) are left
 * out when not asked for. That saves transfer and parsing, not read units: DynamoDB bills a read by the size of the
 * whole item (one RCU per 4 KB, strongly consistent), whatever the projection returns.
 */
export async function readPool(ddb: DocumentClient, tableName: string, options: { leases: boolean } = { leases: true }): Promise<PoolState> {
  const { Item } = await ddb.send(
    new GetCommand({
      TableName: tableName,
      Key: POOL_KEY,
      ConsistentRead: true,
      ...(options.leases ? {} : { ProjectionExpression: 'budgetVcpu, ratePerSecond, burst, inUseVcpu, tat' }),
    }),
  );
  if (!Item) throw new Error(`limiter pool item missing from table ${tableName}: run the configure-pool function (terraform apply does)`);
  return {
    budgetVcpu: Number(Item.budgetVcpu),
    ratePerSecond: Number(Item.ratePerSecond),
    burst: Number(Item.burst),
    inUseVcpu: Number(Item.inUseVcpu),
    tat: Number(Item.tat),
    leases: (Item.leases ?? {}) as Record<string, Lease>,
  };
}

export interface LeaseRequest {
  readonly jobId: string;
  readonly vcpu: number;
}

/**
 * The one conditional write that admits `requests` under `execution`: it holds only if the budget,
 * rate and burst are those the plan was made from, the vCPU fits, the tokens are there and no lease
 * for these jobs is held.
 */
export function admissionCommand(
  tableName: string,
  pool: PoolState,
  now: number,
  requests: readonly LeaseRequest[],
  execution: string,
  leaseMs: number,
): UpdateCommandInput {
  if (requests.length === 0) throw new Error('nothing to admit');
  if (requests.length > pool.burst) throw new Error(`cannot admit ${requests.length} jobs at once with a burst of ${pool.burst}`);
  const interval = tokenIntervalMs(pool);
  const n = requests.length;
  const vcpu = requests.reduce((sum, r) => sum + r.vcpu, 0);
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {
    ':budget': pool.budgetVcpu,
    ':rate': pool.ratePerSecond,
    ':burst': pool.burst,
    ':vcpu': vcpu,
    ':maxInUse': pool.budgetVcpu - vcpu,
    ':now': now,
    ':updatedAt': new Date(now).toISOString(),
  };
  const sets = ['inUseVcpu = inUseVcpu + :vcpu', 'updatedAt = :updatedAt'];
  const conditions = ['budgetVcpu = :budget', 'ratePerSecond = :rate', 'burst = :burst', 'inUseVcpu <= :maxInUse'];
  if (pool.tat >= now) {
    // Tokens are owed: spend from tat onwards, as long as that stays within the burst window.
    sets.push('tat = tat + :spent');
    conditions.push('tat BETWEEN :now AND :tatLimit');
    values[':spent'] = n * interval;
    values[':tatLimit'] = now + (pool.burst - n) * interval + EPSILON;
  } else {
    // The bucket is full at or past tat: spend from now.
    sets.push('tat = :newTat');
    conditions.push('tat < :now');
    values[':newTat'] = now + n * interval;
  }
  requests.forEach((request, index) => {
    names[`#l${index}`] = request.jobId;
    values[`:l${index}`] = { vcpu: request.vcpu, execution, admittedAt: now, expiresAt: now + leaseMs } satisfies Lease;
    sets.push(`leases.#l${index} = :l${index}`);
    conditions.push(`attribute_not_exists(leases.#l${index})`);
  });
  return {
    TableName: tableName,
    Key: POOL_KEY,
    UpdateExpression: `SET ${sets.join(', ')}`,
    ConditionExpression: conditions.join(' AND '),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

export interface HeldLease {
  readonly jobId: string;
  readonly vcpu: number;
  readonly execution: string;
}

/**
 * Releases leases, each only if it still belongs to `execution`: releasing twice, or releasing a
 * lease a later execution took for the same job, changes nothing (the condition fails).
 */
export function releaseCommand(tableName: string, leases: readonly HeldLease[], now: number): UpdateCommandInput {
  if (leases.length === 0) throw new Error('nothing to release');
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {
    ':vcpu': leases.reduce((sum, l) => sum + l.vcpu, 0),
    ':updatedAt': new Date(now).toISOString(),
  };
  const removes: string[] = [];
  const conditions: string[] = [];
  leases.forEach((lease, index) => {
    names[`#l${index}`] = lease.jobId;
    values[`:e${index}`] = lease.execution;
    removes.push(`leases.#l${index}`);
    conditions.push(`leases.#l${index}.execution = :e${index}`);
  });
  return {
    TableName: tableName,
    Key: POOL_KEY,
    UpdateExpression: `SET inUseVcpu = inUseVcpu - :vcpu, updatedAt = :updatedAt REMOVE ${removes.join(', ')}`,
    ConditionExpression: conditions.join(' AND '),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

/**
 * Sets the pool's budget and rate (deploy seeds them; an operator may change them, budget 0 pauses)
 * and creates the runtime state if absent, without touching leases already held.
 */
export function configureCommand(tableName: string, settings: PoolSettings, now: number): UpdateCommandInput {
  return {
    TableName: tableName,
    Key: POOL_KEY,
    UpdateExpression:
      'SET budgetVcpu = :budget, ratePerSecond = :rate, burst = :burst, updatedAt = :updatedAt, ' +
      'inUseVcpu = if_not_exists(inUseVcpu, :zero), tat = if_not_exists(tat, :zero), leases = if_not_exists(leases, :none)',
    ExpressionAttributeValues: {
      ':budget': settings.budgetVcpu,
      ':rate': settings.ratePerSecond,
      ':burst': settings.burst,
      ':updatedAt': new Date(now).toISOString(),
      ':zero': 0,
      ':none': {},
    },
  };
}

export function isConditionFailure(error: unknown): boolean {
  return (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

/** Runs a conditional update; false if its condition did not hold. */
export async function tryUpdate(ddb: DocumentClient, input: UpdateCommandInput): Promise<boolean> {
  try {
    await ddb.send(new UpdateCommand(input));
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/**
 * Runs an admission; the pool's counters as that write left them (no leases), or undefined if its condition
 * did not hold. Returning them costs nothing (write units do not depend on ReturnValues) and spares the
 * dispatcher a strongly consistent read of the whole item — leases included — before its next plan.
 */
export async function tryAdmit(ddb: DocumentClient, pool: PoolState, input: UpdateCommandInput): Promise<PoolState | undefined> {
  try {
    const { Attributes } = await ddb.send(new UpdateCommand({ ...input, ReturnValues: 'UPDATED_NEW' }));
    return { ...pool, inUseVcpu: Number(Attributes.inUseVcpu), tat: Number(Attributes.tat), leases: {} };
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
}

/** The release of one job's lease as the state machine writes it (Step Functions' DynamoDB integration). */
export const SINGLE_RELEASE_EXPRESSIONS = {
  update: 'SET inUseVcpu = inUseVcpu - :vcpu, updatedAt = :updatedAt REMOVE leases.#job',
  condition: 'leases.#job.execution = :execution',
} as const;
