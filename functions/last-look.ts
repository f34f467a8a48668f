/**
 * The dispatcher's last look short of room, kept on POOL (`lastLook`). When a run stops short of room on a strongly
 * consistent read of the releases, it records that look; a wake-up for a release made before it, while the pool
 * stands as it looked, stops after reading POOL alone.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { POOL_KEY, type LastLook, type PoolItem, type PoolState } from './limiter';
import type { DispatcherRunSummary } from './log-events';
import type { AwsClient, Log } from './runtime';

/**
 * A release counts as seen by the last look only if made this long before it: the release's time is Step
 * Functions' clock, the look's a Lambda's. Far above the clock error between AWS services; a wake-up wrongly taken
 * for seen leaves its room to the next release or the minute's schedule.
 */
const CLOCK_MARGIN_MS = 100;

function lookOf(pool: PoolState, at: number): LastLook {
  return {
    at,
    admittedVcpu: pool.admittedVcpu,
    budgetVcpu: pool.budgetVcpu,
    ...(pool.account ? { accountReadAt: pool.account.readAt } : {}),
    ...(pool.capacityLimitAt !== undefined ? { capacityLimitAt: pool.capacityLimitAt } : {}),
  };
}

/** Whether the pool still stands as `look` saw it (releases aside): nothing admitted, resized or measured since. */
function poolAsLooked(pool: PoolItem, look: LastLook): boolean {
  return (
    pool.admittedVcpu === look.admittedVcpu &&
    pool.budgetVcpu === look.budgetVcpu &&
    pool.account?.readAt === look.accountReadAt &&
    pool.capacityLimitAt === look.capacityLimitAt
  );
}

/** Whether the release that woke this run was counted by the last look short of room, and the pool stands as it looked. */
export function releaseAlreadySeen(pool: PoolItem, releasedAt: number | undefined): boolean {
  const look = pool.lastLook;
  if (releasedAt === undefined || look === undefined) return false;
  return releasedAt + CLOCK_MARGIN_MS < look.at && poolAsLooked(pool, look);
}

/** Records the run's look short of room on POOL (one write unit). */
async function recordLastLook(ddb: AwsClient, tableName: string, look: LastLook): Promise<void> {
  await ddb.send(
    new UpdateCommand({
      TableName: tableName,
      Key: POOL_KEY,
      UpdateExpression: 'SET lastLook = :look',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':look': look },
    }),
  );
}

/** Forgets the last look: a run found room since (and did not fill it), so wake-ups must look again. */
async function forgetLastLook(ddb: AwsClient, tableName: string): Promise<void> {
  await ddb.send(new UpdateCommand({ TableName: tableName, Key: POOL_KEY, UpdateExpression: 'REMOVE lastLook', ConditionExpression: 'attribute_exists(pk)' }));
}

/** How a run ended, as the last look is kept from it. */
export interface RunEnd {
  readonly ddb: AwsClient;
  readonly tableName: string;
  readonly log: Log;
  /** The POOL item the run started from. */
  readonly start: PoolItem;
  /** The pool as the run last knew it, and when its released sum was read strongly consistently (if it was). */
  readonly last?: { readonly pool: PoolState; readonly consistentReadAt?: number };
  /** Why it stopped; undefined when it died. */
  readonly stoppedBecause?: DispatcherRunSummary['stoppedBecause'];
}

/**
 * The last look stays true to what a wake-up would find: recorded when this run stopped short of room on a
 * consistent read, forgotten when it ended with room it may not have filled (the queue looked empty, admission
 * failed, it died: `stoppedBecause` undefined). A run killed outright (a timeout) leaves it, but one that admitted
 * changed the pool, and one that did not leaves its room to the minute's schedule. Best effort: a failure costs
 * wake-ups a read of the shards, never a job.
 */
export async function keepLastLookTrue({ ddb, tableName, log, start, last, stoppedBecause }: RunEnd): Promise<void> {
  const shortOfRoom = stoppedBecause === 'no-budget' || stoppedBecause === 'account-full';
  try {
    if (shortOfRoom && last?.consistentReadAt !== undefined) await recordLastLook(ddb, tableName, lookOf(last.pool, last.consistentReadAt));
    else if (!shortOfRoom && start.lastLook !== undefined) await forgetLastLook(ddb, tableName);
  } catch (error) {
    log({ event: 'lastLookNotKept', error: (error as Error).name, message: (error as Error).message });
  }
}
