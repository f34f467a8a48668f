/**
 * The janitor's check of the counters: in use = admitted − Σ released against what the live batches' leases hold,
 * in all, per capacity class and per route, a difference repaired in one transaction that holds only if nothing changed since
 * before the records were read.
 */
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { batchGetItems } from './batch-get';
import type { BatchRecord } from './batches';
import { CAPACITY_CLASSES, type CapacityClass } from './capacity-codes';
import { cancellationOf } from './dynamo-errors';
import type { JanitorRun } from './janitor-run';
import { readLedgerRows } from './ledger';
import { POOL_KEY, releasedOf, releasedShardKeys, requestToken } from './limiter';
import { addCounts, countsOf } from './counts';
import { ADMITTED_BY_CLASS, byClassOf, classAttribute, RELEASED_BY_CLASS, type ByClass } from './placement';
import { ADMITTED_BY_ROUTE, RELEASED_BY_ROUTE, routeOfKey, type ByRoute } from './routes';

/** POOL's admitted vCPU as stored (not coerced: the repair's condition compares it unchanged), per class and per route. */
export interface Admitted {
  readonly vcpu: number;
  readonly byClass: ByClass;
  readonly byRoute: ByRoute;
}

/** The released shards that exist, as read (consistently): the repair is conditioned on exactly these values. */
interface Shards {
  readonly shards: ReadonlyMap<string, number>;
  /** Σ released over the shards, in all, per class and per route. */
  readonly released: number;
  readonly releasedByClass: ByClass;
  readonly releasedByRoute: ByRoute;
}

/** A part of the stage's use counted apart (a capacity class, a route): its two counters' attributes, and its drift. */
interface PartDrift {
  readonly admitted: string;
  readonly released: string;
  readonly drift: number;
}

/** What a sweep measured of the counters and the leases: what a repair writes, and the values it is conditioned on. */
interface Measured {
  /** POOL's admitted vCPU, read before the batch records were scanned. */
  readonly admittedBefore: Admitted;
  readonly shards: Shards;
  /** In use − held, rounded to a millionth: in all, and per class and route (only the parts that drifted). */
  readonly drift: number;
  readonly partDrift: readonly PartDrift[];
}

/** POOL's admitted vCPU, in all and per class; undefined with no pool yet. */
export async function readAdmittedVcpu(run: JanitorRun): Promise<Admitted | undefined> {
  const { Item } = await run.ddb.send(new GetCommand({ TableName: run.settings.tableName, Key: POOL_KEY, ConsistentRead: true }));
  return Item ? { vcpu: Item.admittedVcpu ?? 0, byClass: byClassOf(Item, ADMITTED_BY_CLASS), byRoute: countsOf(Item, ADMITTED_BY_ROUTE) } : undefined;
}

// Rounded to a millionth: sums of fractional vCPU carry floating-point error, which is not drift.
const rounded = (n: number) => Math.round(n * 1e6) / 1e6;

/**
 * The counters against the leases: in use = admitted − Σ released must equal what the live batches' leases hold, in
 * all and in each capacity class (placement goes by the stage's own use per class). `admittedBefore` was read before
 * the batch records were scanned, the shards and the leases are read now: a release meanwhile is in both, an
 * admission meanwhile cancels the repair. A difference (a counter edited by hand, a write lost to a bug, a batch
 * admitted by one version and released by another while a deploy rolls out) is logged and repaired; the sweep's
 * summary carries the total's.
 */
export async function reconcile(
  run: JanitorRun,
  { admittedBefore, live }: { readonly admittedBefore: Admitted; readonly live: readonly BatchRecord[] },
): Promise<void> {
  const shards = await readShards(run);
  const held = await heldByLeases(run, live);
  const inUse = Number(admittedBefore.vcpu) - shards.released;
  const drift = rounded(inUse - held.vcpu);
  const partDrift = [...classDrifts(admittedBefore, shards, held), ...routeDrifts(admittedBefore, shards, held)];
  run.summary.drift = drift;
  if (drift === 0 && partDrift.length === 0) return;
  const parts = Object.fromEntries(partDrift.map((p) => [p.admitted, p.drift]));
  run.log({ event: 'counterDrift', inUseVcpu: inUse, heldByLeasesVcpu: held.vcpu, driftVcpu: drift, partDriftVcpu: parts });
  await repairCounters(run, { admittedBefore, shards, drift, partDrift });
}

type Held = { readonly vcpu: number; readonly byClass: ByClass; readonly byRoute: ByRoute };

function classDrifts(admitted: Admitted, shards: Shards, held: Held): PartDrift[] {
  return CAPACITY_CLASSES.flatMap((c: CapacityClass) => {
    const drift = rounded(Number(admitted.byClass[c] ?? 0) - (shards.releasedByClass[c] ?? 0) - (held.byClass[c] ?? 0));
    return drift === 0 ? [] : [{ admitted: classAttribute(ADMITTED_BY_CLASS, c), released: classAttribute(RELEASED_BY_CLASS, c), drift }];
  });
}

function routeDrifts(admitted: Admitted, shards: Shards, held: Held): PartDrift[] {
  const routes = new Set([...Object.keys(admitted.byRoute), ...Object.keys(shards.releasedByRoute), ...Object.keys(held.byRoute)]);
  return [...routes].flatMap((route) => {
    const drift = rounded(Number(admitted.byRoute[route] ?? 0) - (shards.releasedByRoute[route] ?? 0) - (held.byRoute[route] ?? 0));
    return drift === 0 ? [] : [{ admitted: `${ADMITTED_BY_ROUTE}${route}`, released: `${RELEASED_BY_ROUTE}${route}`, drift }];
  });
}

async function readShards(run: JanitorRun): Promise<Shards> {
  const items = (await batchGetItems(run.ddb, {
    table: run.settings.tableName,
    keys: releasedShardKeys(),
    read: { ConsistentRead: true },
    sleep: (ms) => run.clock.sleep(ms),
  })) as Array<Record<string, unknown> & { pk: string; releasedVcpu: number }>;
  const released = releasedOf(items);
  return {
    shards: new Map<string, number>(items.map((s) => [s.pk, s.releasedVcpu])),
    released: released.vcpu,
    releasedByClass: released.byClass,
    releasedByRoute: released.byRoute,
  };
}

/** The vCPU the live batches' leases hold, in all, per class and per route, from their jobs' ledger rows (a row leased to another batch is not theirs). */
async function heldByLeases(run: JanitorRun, live: readonly BatchRecord[]): Promise<Held> {
  const { ddb, settings } = run;
  const rows = await readLedgerRows(
    ddb,
    settings.tableName,
    live.flatMap((r) => r.jobs.map((j) => j.jobId)),
    (ms) => run.clock.sleep(ms),
  );
  const liveBatches = new Set(live.map((r) => r.execution));
  let vcpu = 0;
  let byClass: ByClass = {};
  let byRoute: ByRoute = {};
  for (const row of rows.values()) {
    if (!row.lease || !liveBatches.has(row.lease.execution)) continue;
    vcpu += Number(row.lease.vcpu);
    if (row.lease.capacityProvider) byClass = addCounts(byClass, { [row.lease.capacityProvider]: Number(row.lease.vcpu) });
    // A lease from before the stage had routes names none: it is its key's route's all the same (its cap must count it).
    const route = row.lease.route ?? (settings.routes ? routeOfKey(settings.routes, row.objectKey)?.name : undefined);
    if (route) byRoute = addCounts(byRoute, { [route]: Number(row.lease.vcpu) });
  }
  return { vcpu, byClass, byRoute };
}

/**
 * Corrects the counters in one transaction that re-checks every counter it read: a change meanwhile (an admission,
 * a release) cancels it, and the next sweep measures again rather than repair on stale counts.
 */
async function repairCounters(run: JanitorRun, measured: Measured): Promise<void> {
  const { admittedBefore, shards, drift } = measured;
  try {
    await run.ddb.send(
      new TransactWriteCommand({
        ClientRequestToken: requestToken('reconcile', admittedBefore.vcpu, shards.released, drift),
        TransactItems: repairItems(run.settings.tableName, measured),
      }),
    );
    run.summary.repaired = true;
    run.log({ event: 'counterRepaired', driftVcpu: drift, partDriftVcpu: Object.fromEntries(measured.partDrift.map((p) => [p.admitted, p.drift])) });
  } catch (error) {
    if (!cancellationOf(error)) throw error;
    run.log({ event: 'counterRepairDeferred', reason: 'the counters changed while they were measured; the next sweep measures again' });
  }
}

/** A condition on a counter item, with the values it compares (DynamoDB refuses an empty map of values). */
interface Condition {
  readonly ConditionExpression: string;
  readonly ExpressionAttributeValues?: Record<string, unknown>;
}

/**
 * The repair's items. Every counter only ever grows (a stale read of released then only overstates what is in use),
 * and so does a repair: too much counted in use (drift > 0) adds to the first released shard; too little (drift < 0:
 * leases the counters miss) adds to admitted — the total and each class and route alike. POOL and every shard are checked
 * unchanged (or still absent) by their totals: every write of a class's or a route's counter writes a total too.
 */
function repairItems(tableName: string, { admittedBefore, shards: { shards }, drift, partDrift }: Measured) {
  const [target, ...others] = releasedShardKeys();
  const seenOn = (key: { pk: string }): Condition => {
    if (!shards.has(key.pk)) return { ConditionExpression: 'attribute_not_exists(pk)' };
    const seen = shards.get(key.pk);
    // A shard may hold a class's counter and no total (written by hand): it must still hold none.
    if (seen === undefined) return { ConditionExpression: 'attribute_not_exists(releasedVcpu)' };
    return { ConditionExpression: 'releasedVcpu = :seen', ExpressionAttributeValues: { ':seen': seen } };
  };
  const checkShard = (key: { pk: string }) => ({ ConditionCheck: { TableName: tableName, Key: key, ...seenOn(key) } });

  const pool = counterUpdate({
    set: drift < 0 ? { attribute: 'admittedVcpu', value: Number(admittedBefore.vcpu) - drift } : undefined,
    add: partDrift.filter((p) => p.drift < 0).map((p) => ({ attribute: p.admitted, value: -p.drift })),
  });
  const poolCondition: Condition = { ConditionExpression: 'admittedVcpu = :admitted', ExpressionAttributeValues: { ':admitted': admittedBefore.vcpu } };
  const shard = counterUpdate({
    set: drift > 0 ? { attribute: 'releasedVcpu', value: Number(shards.get(target.pk) ?? 0) + drift } : undefined,
    add: partDrift.filter((p) => p.drift > 0).map((p) => ({ attribute: p.released, value: p.drift })),
  });
  return [
    pool
      ? { Update: { TableName: tableName, Key: POOL_KEY, ...pool, ...withValues(poolCondition, pool.ExpressionAttributeValues) } }
      : { ConditionCheck: { TableName: tableName, Key: POOL_KEY, ...poolCondition } },
    ...others.map(checkShard),
    shard ? { Update: { TableName: tableName, Key: target, ...shard, ...withValues(seenOn(target), shard.ExpressionAttributeValues) } } : checkShard(target),
  ];
}

/** A counter item's repair: one total set, classes and routes added to; undefined when there is nothing to write. */
function counterUpdate(writes: { set?: { attribute: string; value: number }; add: ReadonlyArray<{ attribute: string; value: number }> }) {
  if (!writes.set && writes.add.length === 0) return undefined;
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const clauses: string[] = [];
  if (writes.set) {
    names['#total'] = writes.set.attribute;
    values[':repaired'] = writes.set.value;
    clauses.push('SET #total = :repaired');
  }
  if (writes.add.length > 0) {
    const adds = writes.add.map(({ attribute, value }, i) => {
      names[`#class${i}`] = attribute;
      values[`:class${i}`] = value;
      return `#class${i} :class${i}`;
    });
    clauses.push(`ADD ${adds.join(', ')}`);
  }
  return { UpdateExpression: clauses.join(' '), ExpressionAttributeNames: names, ExpressionAttributeValues: values };
}

/** An update's condition and values together: the update's own values and the condition's. */
function withValues(condition: Condition, values: Record<string, unknown>) {
  return { ConditionExpression: condition.ConditionExpression, ExpressionAttributeValues: { ...values, ...condition.ExpressionAttributeValues } };
}
