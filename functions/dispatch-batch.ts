/**
 * A gathered batch's way through admission: what the pool has room for is admitted in one transaction (a few tries
 * at most), the jobs whose rows refuse are settled, and the admitted batch's execution is started.
 */
import { admitBatch } from './admission';
import type { CapacityClass } from './capacity-codes';
import { executionExists, startExecution } from './batch-start';
import type { RunContext } from './dispatcher-run';
import { deleteIntakeMessages, HELD_LEASE_RETRY_SECONDS, type Received } from './intake-gather';
import { executionNameFor } from './jobs';
import type { LedgerRow } from './ledger';
import { batchReleaseShards, planAdmission, readPool, type Lease, type PoolState } from './limiter';
import { packingOf, tasksFor, type Packing } from './packing';
import { deferInBatches } from './queue-batches';
import { countedRoute, ownByRoute, tasksUnderCap, withRouteCaps, type RouteSettings } from './routes';

const ADMISSION_TRIES = 5;

export type BatchOutcome = { outcome: 'ok'; pool: PoolState } | { outcome: 'start-failed' | 'contention' };

/** Admits the route's candidates the pool takes as one batch and starts its execution; the messages of the started go. */
export async function admitAndStart(run: RunContext, initialPool: PoolState, route: RouteSettings, candidates: Received[]): Promise<BatchOutcome> {
  const { sqs, summary } = run;
  const packing = packingOf(run.settings, route);
  const { pool, batch, lease } = await admit(run, initialPool, route, candidates, packing);
  if (!lease) {
    if (batch.length === 0) return { outcome: 'ok', pool };
    // Every try was stale or refused: what is left is put back at once, for the next run.
    await deferInBatches(
      sqs,
      route.queueUrl,
      batch.map((r) => r.message),
      0,
    );
    return { outcome: 'contention' };
  }
  const tasks = packing.packed ? tasksFor(batch.length, packing.objectsPerTask) : batch.length;
  const releaseShards = batchReleaseShards(pool, route.taskVcpu, tasks);
  if (!(await startExecution(run, { lease, route, batch, releaseShards, packing }))) return { outcome: 'start-failed' };
  run.started.add(lease.execution);
  await deleteIntakeMessages(
    run,
    route.queueUrl,
    batch.map((r) => r.message),
  );
  const jobs = batch.map((r) => r.job);
  summary.admitted += jobs.length;
  summary.executionsStarted++;
  run.log({ event: 'admitted', execution: lease.execution, jobs: jobs.length, jobIds: jobs.map((j) => j.jobId) });
  return { outcome: 'ok', pool };
}

/** An admission's end: the pool after it, the batch left, and the batch's lease if it was admitted. */
interface Admission {
  readonly pool: PoolState;
  readonly batch: Received[];
  readonly lease?: Lease;
}

/**
 * Admits what fits of the candidates in one transaction, a few tries at most. A stale pool is read again; jobs
 * whose rows refuse are settled and left out, and the rest try again.
 */
async function admit(run: RunContext, initialPool: PoolState, route: RouteSettings, candidates: Received[], packing: Packing): Promise<Admission> {
  const { ddb, clock, settings } = run;
  let pool = initialPool;
  let batch = candidates;
  for (let tries = 0; tries < ADMISSION_TRIES && batch.length > 0; tries++) {
    const now = clock.now();
    const fitted = await fitToPool(run, pool, route, batch, now, packing.objectsPerTask);
    batch = fitted.batch;
    if (batch.length === 0) break;
    const jobs = batch.map((r) => r.job);
    const name = executionNameFor(jobs, pool.batchesAdmitted);
    const result = await admitBatch(ddb, settings, {
      pool,
      jobs,
      batch: name,
      taskVcpu: route.taskVcpu,
      leaseMs: settings.leaseSeconds * 1000,
      now,
      capacityClass: fitted.capacityClass,
      ...(countedRoute(route) !== undefined ? { route } : {}),
      packing,
    });
    if (result.kind === 'admitted') return { pool: result.pool, batch, lease: result.lease };
    if (result.kind === 'stale') {
      pool = await readPool(ddb, settings.tableName);
      continue;
    }
    batch = await settleRefusals(run, route, batch, result.refused);
  }
  return { pool, batch };
}

/** The candidates the pool has room for now, and the class they go to; the others are put back at once, for a later round. */
async function fitToPool(
  run: RunContext,
  pool: PoolState,
  route: RouteSettings,
  batch: Received[],
  now: number,
  objectsPerTask: number,
): Promise<{ batch: Received[]; capacityClass?: CapacityClass }> {
  const plan = planAdmission(pool, now, route.taskVcpu, tasksFor(batch.length, objectsPerTask), run.settings.capacityWeights);
  // The route's cap, as the pool now stands (the turn was planned on an earlier read; an operator may have resized it).
  const [capped] = withRouteCaps([route], pool.routeCaps);
  // Counted in tasks; a task runs up to objectsPerTask of the candidates.
  const count = Math.min(plan.count, tasksUnderCap(capped, ownByRoute(pool)[route.name] ?? 0)) * objectsPerTask;
  const { capacityClass } = plan;
  if (count >= batch.length) return { batch, capacityClass };
  await deferInBatches(
    run.sqs,
    route.queueUrl,
    batch.slice(count).map((r) => r.message),
    0,
  );
  return { batch: batch.slice(0, count), capacityClass };
}

/**
 * Settles each job whose ledger row refused the admission, and answers the batch without them. A duplicate's
 * message is deleted; a held job's message is put back while the lease that holds it is given back.
 */
async function settleRefusals(
  run: RunContext,
  route: RouteSettings,
  batch: Received[],
  refusals: ReadonlyArray<{ readonly index: number; readonly row?: LedgerRow }>,
): Promise<Received[]> {
  const { sqs, summary, log } = run;
  for (const { index, row } of refusals) {
    const received = batch[index];
    if ((await refusalOf(run, row, received)) === 'duplicate') {
      log({ event: 'duplicate', jobId: received.job.jobId, key: received.job.key, status: row?.status });
      summary.duplicates++;
      await deleteIntakeMessages(run, route.queueUrl, [received.message]);
    } else {
      log({ event: 'leaseStillHeld', jobId: received.job.jobId, batch: row?.lease?.execution });
      summary.deferred++;
      await deferInBatches(sqs, route.queueUrl, [received.message], HELD_LEASE_RETRY_SECONDS);
    }
  }
  const refused = new Set(refusals.map((r) => r.index));
  return batch.filter((_, i) => !refused.has(i));
}

/**
 * Why an admission's row refused. A job with a result is a redelivery: its message goes. A job leased to an execution
 * that exists is in that execution's hands — it runs it, gives it back with a message of its own, or dies and the
 * janitor re-queues it — so another message for it goes too. Two leases keep their message, which waits instead:
 * the lease of the execution that sent it (it is giving the job back: the release follows the send), and the lease of
 * a batch that never started (this message is the job's way back once that batch is given back).
 */
async function refusalOf(run: RunContext, row: LedgerRow | undefined, received: Received): Promise<'duplicate' | 'held'> {
  if (!row?.lease) return row ? 'duplicate' : 'held';
  if (received.returnedBy === row.lease.execution) return 'held';
  if (run.started.has(row.lease.execution)) return 'duplicate';
  return (await executionExists(run, row.lease.execution)) ? 'duplicate' : 'held';
}
