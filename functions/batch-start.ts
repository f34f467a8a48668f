/**
 * A batch's execution: started once the batch is admitted, its admission undone when Step Functions refused the
 * start, and a batch a dead run admitted but never started given back.
 */
import { DescribeExecutionCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { deleteBatchRecord, readBatchRecord } from './batches';
import type { RunContext } from './dispatcher-run';
import type { Received } from './intake-gather';
import { executionArnOf, type JobInput } from './jobs';
import { releaseLease } from './ledger';
import type { Lease, PoolState } from './limiter';
import { deferInBatches } from './queue-batches';
import { packInto, type Packing } from './packing';
import { countedRoute, type RouteSettings } from './routes';

/** After a failed StartExecution the batch's messages come back this soon. */
const START_FAILURE_RETRY_SECONDS = 15;

/**
 * Starts the admitted batch's execution, named as its lease. Answers whether it runs. Names are unique per admission,
 * so ExecutionAlreadyExists means this admission's own execution (an earlier try's answer was lost). An error that
 * says the request was refused (a throttle, a bad request) leaves nothing started: the admission is undone. Any other
 * (a timeout, a 5xx) may have come after Step Functions created the execution: Step Functions is asked; what it does
 * not show yet stays admitted, for the janitor or a later run to settle once its start grace has passed.
 */
export async function startExecution(
  run: RunContext,
  {
    lease,
    route,
    batch,
    releaseShards,
    packing,
  }: { lease: Lease; route: RouteSettings; batch: Received[]; releaseShards: readonly string[]; packing: Packing },
): Promise<boolean> {
  const { settings } = run;
  const name = lease.execution;
  const input = { jobs: executionItems({ lease, route, batch, releaseShards, packing }) };
  try {
    await run.sfn.send(new StartExecutionCommand({ stateMachineArn: settings.stateMachineArn, name, input: JSON.stringify(input) }));
    return true;
  } catch (error) {
    if ((error as Error).name === 'ExecutionAlreadyExists') return true;
    run.log({ event: 'startFailed', execution: name, error: (error as Error).name, message: (error as Error).message });
    if (refusedOutright(error)) {
      await undoAdmission(run, { lease, route, batch }, error as Error);
      return false;
    }
    if (await executionExists(run, name)) return true;
    // Not shown yet, perhaps not created: its messages come back, held (their jobs' lease has no execution) until
    // the next run gives the batch back or finds its execution.
    await deferInBatches(
      run.sqs,
      route.queueUrl,
      batch.map((r) => r.message),
      START_FAILURE_RETRY_SECONDS,
    );
    return false;
  }
}

/**
 * The execution's items, one per task: each job's, or on a stage that packs, each task's lead with its task's index
 * and size (the task's list is the batch record's: functions/packing.ts).
 */
function executionItems({
  lease,
  route,
  batch,
  releaseShards,
  packing,
}: {
  lease: Lease;
  route: RouteSettings;
  batch: Received[];
  releaseShards: readonly string[];
  packing: Packing;
}): JobInput[] {
  const routed = countedRoute(route) !== undefined;
  const tasks = packing.packed ? packInto(batch, packing.objectsPerTask) : batch.map((received) => [received]);
  return tasks.map((members, task) => ({
    ...members[0].job,
    vcpu: route.taskVcpu,
    releaseShard: releaseShards[task],
    ...(lease.capacityProvider ? { capacityProvider: lease.capacityProvider } : {}),
    ...(routed ? { route: route.name, intakeQueueUrl: route.queueUrl } : {}),
    ...(routed && route.taskDefinitionArn ? { taskDefinitionArn: route.taskDefinitionArn } : {}),
    ...(packing.packed ? { pack: { task, objects: members.length } } : {}),
  }));
}

/** StartExecution's errors that mean Step Functions refused the request: nothing was created. */
const REFUSED_OUTRIGHT = new Set([
  'ThrottlingException',
  'InvalidName',
  'InvalidArn',
  'InvalidExecutionInput',
  'StateMachineDoesNotExist',
  'StateMachineDeleting',
  'ExecutionLimitExceeded',
  'ValidationException',
  'AccessDeniedException',
]);

function refusedOutright(error: unknown): boolean {
  return REFUSED_OUTRIGHT.has((error as Error).name) || (error as { $fault?: string }).$fault === 'client';
}

/**
 * Gives back a batch whose execution did not start: its jobs' leases and its record now; its messages come back
 * soon, and that receive counts toward the DLQ.
 */
async function undoAdmission(run: RunContext, { lease, route, batch }: { lease: Lease; route: RouteSettings; batch: Received[] }, cause: Error): Promise<void> {
  const { sqs, ddb, clock, settings } = run;
  // Each job's lease as admitted: a packed task's objects but its lead hold no vCPU.
  const record = await readBatchRecord(ddb, settings.batchesTableName, lease.execution);
  const vcpuOf = new Map(record?.jobs.map((job) => [job.jobId, job.vcpu]));
  for (const { job } of batch) {
    await releaseLease(
      ddb,
      settings.tableName,
      {
        jobId: job.jobId,
        lease: { ...lease, vcpu: vcpuOf.get(job.jobId) ?? lease.vcpu },
        outcome: { status: 'queued', reason: `StartExecution failed: ${cause.name}` },
      },
      clock,
    );
  }
  await deleteBatchRecord(ddb, settings.batchesTableName, lease.execution);
  await deferInBatches(
    sqs,
    route.queueUrl,
    batch.map((r) => r.message),
    START_FAILURE_RETRY_SECONDS,
  );
}

/**
 * Only the last admission can be one that never started: each run starts a batch before it admits the next, and
 * one run goes at a time. Once its start grace has passed (the janitor's rule: the run that admitted it is dead, and
 * what it sent has had time to show), if its execution does not exist its leases are given back now (its messages
 * were never deleted: they come back by themselves); the janitor would too, a sweep later. Younger, it is left.
 */
export async function reclaimUnstartedBatch(run: RunContext, pool: PoolState): Promise<boolean> {
  const last = pool.lastAdmission;
  const { clock, settings } = run;
  if (!last || run.started.has(last.execution) || clock.now() - last.at < settings.startGraceMs) return false;
  const record = await readBatchRecord(run.ddb, settings.batchesTableName, last.execution);
  if (!record) return false; // settled already (given back at once, or by the janitor)
  if (await executionExists(run, last.execution)) {
    run.started.add(last.execution);
    return false;
  }
  for (const job of record.jobs) {
    const lease: Lease = {
      execution: record.execution,
      vcpu: job.vcpu,
      admittedAt: record.admittedAt,
      expiresAt: record.expiresAt,
      ...(job.capacityProvider ? { capacityProvider: job.capacityProvider } : {}),
      ...(job.route ? { route: job.route } : {}),
    };
    await releaseLease(
      run.ddb,
      settings.tableName,
      { jobId: job.jobId, lease, outcome: { status: 'queued', reason: `batch ${record.execution} was admitted but never started` } },
      clock,
    );
  }
  await deleteBatchRecord(run.ddb, settings.batchesTableName, record.execution);
  run.started.add(last.execution);
  run.log({ event: 'unstartedBatchReclaimed', batch: record.execution, jobs: record.jobs.length });
  return true;
}

/** Whether Step Functions has an execution of that name (an unsure start, or a name met again). */
export async function executionExists(run: RunContext, name: string): Promise<boolean> {
  try {
    await run.sfn.send(new DescribeExecutionCommand({ executionArn: executionArnOf(run.settings.stateMachineArn, name) }));
    return true;
  } catch (error) {
    if ((error as Error).name === 'ExecutionDoesNotExist') return false;
    throw error;
  }
}
