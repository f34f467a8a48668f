/**
 * One admission: a batch of jobs takes its leases in one TransactWriteItems — the pool's counters (premise and
 * tokens checked), a lease on each job's ledger row (none held, the job new or queued), the batch record. All of it
 * or none of it.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { batchRecordPut, type BatchRecord } from './batches';
import type { CapacityClass } from './capacity-codes';
import { cancellationOf, cancelledItem, conditionFailedAt } from './dynamo-errors';
import { executionArnOf, type Job } from './jobs';
import { ledgerAdmissionUpdate, type LedgerRow } from './ledger';
import { afterAdmission, poolAdmissionUpdate, requestToken, type Lease, type PoolState } from './limiter';
import { OUTCOMES_ATTRIBUTE, packInto, type Packing } from './packing';
import type { RouteSettings } from './routes';
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

/** A batch to admit: its jobs, its execution's name, and the pool it was planned on. */
export interface BatchAdmission {
  readonly pool: PoolState;
  readonly jobs: readonly Job[];
  /** The batch's execution name, which its lease carries. */
  readonly batch: string;
  readonly taskVcpu: number;
  readonly leaseMs: number;
  readonly now: number;
  /** The capacity class the batch's tasks run in (functions/placement.ts). */
  readonly capacityClass?: CapacityClass;
  /** The route the batch came by, when the stage has routes (functions/routes.ts): its counter and its cap. */
  readonly route?: Pick<RouteSettings, 'name' | 'maxVcpu'>;
  /** On a stage that packs: the batch's jobs are cut into tasks of `objectsPerTask` (functions/packing.ts). */
  readonly packing?: Packing;
}

export async function admitBatch(
  ddb: AwsClient,
  target: AdmissionTarget,
  { pool, jobs, batch, taskVcpu, leaseMs, now, capacityClass, route, packing }: BatchAdmission,
): Promise<AdmissionResult> {
  const lease: Lease = {
    execution: batch,
    vcpu: taskVcpu,
    admittedAt: now,
    expiresAt: now + leaseMs,
    ...(capacityClass ? { capacityProvider: capacityClass } : {}),
    ...(route ? { route: route.name } : {}),
  };
  const packed = packing?.packed === true;
  const tasks = packed ? packInto(jobs, packing.objectsPerTask) : jobs.map((job) => [job]);
  // A packed task's lead holds the task's vCPU; its other objects hold none (functions/packing.ts).
  const leads = new Set(tasks.map((task) => task[0].jobId));
  const leaseOf = (job: Job): Lease => (leads.has(job.jobId) ? lease : { ...lease, vcpu: 0 });
  const spend = { now, jobs: tasks.length, vcpu: tasks.length * taskVcpu, batch, capacityClass, route };
  const arn = executionArnOf(target.stateMachineArn, batch);
  const record: BatchRecord = {
    execution: batch,
    jobs: tasks.flatMap((members, task) =>
      members.map((job) => ({
        jobId: job.jobId,
        vcpu: leaseOf(job).vcpu,
        ...(capacityClass ? { capacityProvider: capacityClass } : {}),
        ...(route ? { route: route.name } : {}),
        ...(packed ? { task, bucket: job.bucket, key: job.key, versionId: job.versionId } : {}),
      })),
    ),
    admittedAt: now,
    expiresAt: lease.expiresAt,
    ...(packed ? { [OUTCOMES_ATTRIBUTE]: {} } : {}),
  };
  try {
    await ddb.send(
      new TransactWriteCommand({
        ClientRequestToken: requestToken('admit', batch, pool.admittedVcpu, now),
        TransactItems: [
          { Update: poolAdmissionUpdate(target.tableName, pool, spend) },
          ...jobs.map((job) => ({ Update: ledgerAdmissionUpdate(target.tableName, job, { lease: leaseOf(job), executionArn: arn, now }) })),
          { Put: batchRecordPut(target.batchesTableName, record) },
        ],
      }),
    );
    return { kind: 'admitted', pool: afterAdmission(pool, spend), lease };
  } catch (error) {
    const cancelled = cancellationOf(error);
    if (!cancelled) throw error;
    const refused = jobs.flatMap((_, index) =>
      conditionFailedAt(cancelled, index + 1) ? [{ index, row: cancelledItem(cancelled, index + 1) as LedgerRow | undefined }] : [],
    );
    return refused.length > 0 ? { kind: 'refused', refused } : { kind: 'stale' };
  }
}
