/**
 * One admission: a batch of jobs takes its leases in one TransactWriteItems — the pool's counters (premise and
 * tokens checked), a lease on each job's ledger row (none held, the job new or queued), the batch record. All of it
 * or none of it.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { batchRecordPut } from './batches';
import { executionArnOf, type Job } from './jobs';
import { ledgerAdmissionUpdate, type LedgerRow } from './ledger';
import { afterAdmission, cancellationOf, poolAdmissionUpdate, requestToken, type Lease, type PoolState } from './limiter';
import type { AwsClient } from './runtime';

interface AdmissionTarget {
  readonly tableName: string;
  readonly batchesTableName: string;
  readonly stateMachineArn: string;
}

type AdmissionResult =
  | { readonly kind: 'admitted'; readonly pool: PoolState; readonly lease: Lease }
  /** Some jobs' rows refused (their index in `jobs`, and the row as it stood); nothing was written. */
  | { readonly kind: 'refused'; readonly refused: ReadonlyArray<{ readonly index: number; readonly row?: LedgerRow }> }
  /** The pool's premise no longer holds (an admission, a resize, a capacity reading) or a write conflicted: read it again. */
  | { readonly kind: 'stale' };

export async function admitBatch(
  ddb: AwsClient,
  target: AdmissionTarget,
  pool: PoolState,
  jobs: readonly Job[],
  batch: string,
  taskVcpu: number,
  leaseMs: number,
  now: number,
): Promise<AdmissionResult> {
  const lease: Lease = { execution: batch, vcpu: taskVcpu, admittedAt: now, expiresAt: now + leaseMs };
  const vcpu = jobs.length * taskVcpu;
  const arn = executionArnOf(target.stateMachineArn, batch);
  try {
    await ddb.send(
      new TransactWriteCommand({
        ClientRequestToken: requestToken('admit', batch, pool.admittedVcpu, now),
        TransactItems: [
          { Update: poolAdmissionUpdate(target.tableName, pool, now, jobs.length, vcpu, batch) },
          ...jobs.map((job) => ({ Update: ledgerAdmissionUpdate(target.tableName, job, lease, arn, now) })),
          {
            Put: batchRecordPut(target.batchesTableName, {
              execution: batch,
              jobs: jobs.map((job) => ({ jobId: job.jobId, vcpu: taskVcpu })),
              admittedAt: now,
              expiresAt: lease.expiresAt,
            }),
          },
        ],
      }),
    );
    return { kind: 'admitted', pool: afterAdmission(pool, now, jobs.length, vcpu, batch), lease };
  } catch (error) {
    const cancelled = cancellationOf(error);
    if (!cancelled) throw error;
    const refused = jobs.flatMap((_, index) =>
      cancelled.codes[index + 1] === 'ConditionalCheckFailed' ? [{ index, row: rowOf(cancelled.items[index + 1]) }] : [],
    );
    return refused.length > 0 ? { kind: 'refused', refused } : { kind: 'stale' };
  }
}

/** A cancellation's item comes back in DynamoDB's wire shape, whatever client sent the request. */
function rowOf(item: Record<string, unknown> | undefined): LedgerRow | undefined {
  if (!item) return undefined;
  const wire = Object.values(item).every(
    (v) => v && typeof v === 'object' && Object.keys(v).length === 1 && /^(S|N|M|L|BOOL|NULL|SS|NS|B|BS)$/.test(Object.keys(v)[0]),
  );
  return (wire ? unmarshall(item as Record<string, AttributeValue>) : item) as unknown as LedgerRow;
}
