/**
 * The janitor's check of the counters: in use = admitted − Σ released against what the live batches' leases hold,
 * a difference repaired in one transaction that holds only if nothing changed since before the records were read.
 */
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { batchGetItems } from './batch-get';
import type { BatchRecord } from './batches';
import { cancellationOf } from './dynamo-errors';
import type { JanitorRun } from './janitor-run';
import { readLedgerRows } from './ledger';
import { POOL_KEY, releasedShardKeys, requestToken } from './limiter';

/** The released shards that exist, as read (consistently): the repair is conditioned on exactly these values. */
interface Shards {
  readonly shards: ReadonlyMap<string, number>;
  /** Σ released over the shards. */
  readonly released: number;
}

/** What a sweep measured of the counters and the leases: what a repair writes, and the values it is conditioned on. */
interface Measured {
  /** POOL's admitted vCPU, read before the batch records were scanned. */
  readonly admittedBefore: number;
  readonly shards: Shards;
  /** The vCPU the live batches' leases hold. */
  readonly held: number;
  /** In use − held, rounded to a millionth. */
  readonly drift: number;
}

/** POOL's admitted vCPU as stored (not coerced: the repair's condition compares it unchanged); undefined with no pool yet. */
export async function readAdmittedVcpu(run: JanitorRun): Promise<number | undefined> {
  const { Item } = await run.ddb.send(
    new GetCommand({ TableName: run.settings.tableName, Key: POOL_KEY, ConsistentRead: true, ProjectionExpression: 'admittedVcpu' }),
  );
  return Item ? (Item.admittedVcpu ?? 0) : undefined;
}

/**
 * The counters against the leases: in use = admitted − Σ released must equal what the live batches' leases hold.
 * `admittedBefore` was read before the batch records were scanned, the shards and the leases are read now: a
 * release meanwhile is in both, an admission meanwhile cancels the repair. A difference (a counter edited by hand, a
 * write lost to a bug) is logged and repaired; the sweep's summary carries it.
 */
export async function reconcile(
  run: JanitorRun,
  { admittedBefore, live }: { readonly admittedBefore: number; readonly live: readonly BatchRecord[] },
): Promise<void> {
  const shards = await readShards(run);
  const held = await heldByLeases(run, live);
  const inUse = Number(admittedBefore) - shards.released;
  // Rounded to a millionth: sums of fractional vCPU carry floating-point error, which is not drift.
  const drift = Math.round((inUse - held) * 1e6) / 1e6;
  run.summary.drift = drift;
  if (drift === 0) return;
  run.log({ event: 'counterDrift', inUseVcpu: inUse, heldByLeasesVcpu: held, driftVcpu: drift });
  await repairCounters(run, { admittedBefore, shards, held, drift });
}

async function readShards(run: JanitorRun): Promise<Shards> {
  const items = await batchGetItems(run.ddb, {
    table: run.settings.tableName,
    keys: releasedShardKeys(),
    read: { ConsistentRead: true },
    sleep: (ms) => run.clock.sleep(ms),
  });
  const shards = new Map<string, number>((items as Array<{ pk: string; releasedVcpu: number }>).map((s) => [s.pk, s.releasedVcpu]));
  return { shards, released: [...shards.values()].reduce((a, b) => a + Number(b), 0) };
}

/** The vCPU the live batches' leases hold, read from their jobs' ledger rows (a row leased to another batch is not theirs). */
async function heldByLeases(run: JanitorRun, live: readonly BatchRecord[]): Promise<number> {
  const { ddb, settings } = run;
  const rows = await readLedgerRows(
    ddb,
    settings.tableName,
    live.flatMap((r) => r.jobs.map((j) => j.jobId)),
    (ms) => run.clock.sleep(ms),
  );
  const liveBatches = new Set(live.map((r) => r.execution));
  let held = 0;
  for (const row of rows.values()) if (row.lease && liveBatches.has(row.lease.execution)) held += Number(row.lease.vcpu);
  return held;
}

/**
 * Corrects the counters in one transaction that re-checks every counter it read: a change meanwhile (an admission,
 * a release) cancels it, and the next sweep measures again rather than repair on stale counts.
 */
async function repairCounters(run: JanitorRun, measured: Measured): Promise<void> {
  const { admittedBefore, shards, held, drift } = measured;
  try {
    await run.ddb.send(
      new TransactWriteCommand({
        ClientRequestToken: requestToken('reconcile', admittedBefore, shards.released, held),
        TransactItems: repairItems(run.settings.tableName, measured),
      }),
    );
    run.summary.repaired = true;
    run.log({ event: 'counterRepaired', driftVcpu: drift });
  } catch (error) {
    if (!cancellationOf(error)) throw error;
    run.log({ event: 'counterRepairDeferred', reason: 'the counters changed while they were measured; the next sweep measures again' });
  }
}

/**
 * The repair's items. Both counters only ever grow (a stale read of released then only overstates what is in use),
 * and so does a repair: too much counted in use (drift > 0) adds to the first released shard; too little (drift < 0:
 * leases the counters miss) adds to admitted. POOL and every shard not written are checked unchanged (or still absent).
 */
function repairItems(tableName: string, { admittedBefore, shards: { shards }, drift }: Measured) {
  const keys = releasedShardKeys();
  const checkShard = (key: { pk: string }) =>
    shards.has(key.pk)
      ? { TableName: tableName, Key: key, ConditionExpression: 'releasedVcpu = :seen', ExpressionAttributeValues: { ':seen': shards.get(key.pk) } }
      : { TableName: tableName, Key: key, ConditionExpression: 'attribute_not_exists(pk)' };
  const admittedUnchanged = { ConditionExpression: 'admittedVcpu = :admitted', ExpressionAttributeValues: { ':admitted': admittedBefore } };
  if (drift < 0) {
    return [
      {
        Update: {
          TableName: tableName,
          Key: POOL_KEY,
          UpdateExpression: 'SET admittedVcpu = :repaired',
          ...admittedUnchanged,
          ExpressionAttributeValues: { ':admitted': admittedBefore, ':repaired': Number(admittedBefore) - drift },
        },
      },
      ...keys.map((key) => ({ ConditionCheck: checkShard(key) })),
    ];
  }
  const [target, ...others] = keys;
  const seen = shards.get(target.pk);
  return [
    { ConditionCheck: { TableName: tableName, Key: POOL_KEY, ...admittedUnchanged } },
    ...others.map((key) => ({ ConditionCheck: checkShard(key) })),
    {
      Update: {
        ...checkShard(target),
        UpdateExpression: 'SET releasedVcpu = :repaired',
        ExpressionAttributeValues: { ':repaired': Number(seen ?? 0) + drift, ...(shards.has(target.pk) ? { ':seen': seen } : {}) },
      },
    },
  ];
}
