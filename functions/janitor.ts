/**
 * The janitor: settles batches no release will come for, and checks the limiter's counters. Woken by this state
 * machine's executions ending FAILED, TIMED_OUT or ABORTED (that batch first), and by a schedule, it reads every
 * batch record not yet settled (the batches table holds only those):
 * - its execution still runs → leave it (even past the lease's expiry: the state machine's timeout equals the
 *   lease's duration, so this does not last; releasing it would break the cap);
 * - its execution ended → every job still leased to it is given back: a job without a result is re-queued as its
 *   next round (or failed, once its executions died too often); a job whose result was recorded keeps it;
 * - its execution never started (the dispatcher died between admission and StartExecution) and the grace period
 *   passed → its leases are given back; the jobs' intake messages were never deleted, so they come back alone.
 * Then it reconciles: the vCPU in use (admitted − released) against the leases the live batches hold, repairing a
 * difference in one transaction that holds only if nothing changed since before the records were read. It wakes the
 * dispatcher if it freed anything.
 *
 * Its run context is in janitor-run.ts, what it asks Step Functions in janitor-executions.ts, the counters' check
 * and repair in janitor-reconcile.ts.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { deleteBatchRecord, readBatchRecord, scanBatchRecords, type BatchRecord } from './batches';
import { janitorSettingsFromEnv, type JanitorSettings } from './environment';
import { executionState, runningExecutions, tasksMayStillStop, type Ended } from './janitor-executions';
import { readAdmittedVcpu, reconcile } from './janitor-reconcile';
import { intakeQueueFor } from './routes';
import { emptyJanitorSummary, type JanitorRun } from './janitor-run';
import { ADMITTED_FOR_ANOTHER_STATE_MACHINE, executionArnOf } from './jobs';
import { readLedgerRows, recordedResultOf, releaseLease, requeueMessageFor, sendRequeue, type ReleaseOutcome } from './ledger';
import { jsonLog, systemClock, type Clock, type Log, type AwsClient } from './runtime';
import type { JanitorRunSummary } from './log-events';

interface JanitorDeps {
  readonly sfn: AwsClient;
  readonly sqs: AwsClient;
  readonly lambda: AwsClient;
  readonly ddb: AwsClient;
  readonly clock: Clock;
  readonly settings: JanitorSettings;
  readonly log?: Log;
}

/** An execution-status-change event (EventBridge), or anything else (a schedule): which batch to settle first. */
function endedExecutionOf(event: unknown): string | undefined {
  const arn = (event as { detail?: { executionArn?: unknown } })?.detail?.executionArn;
  return typeof arn === 'string' ? arn.split(':').pop() : undefined;
}

export async function runJanitor(deps: JanitorDeps, event?: unknown): Promise<JanitorRunSummary> {
  const run: JanitorRun = { ...deps, log: deps.log ?? (() => undefined), summary: emptyJanitorSummary() };
  try {
    await sweep(run, event);
  } finally {
    // Also after a failure part-way: the batches settled so far are gone, so their counts are told now or never.
    run.log({ event: 'janitorDone', ...run.summary });
  }
  return run.summary;
}

/**
 * Settles the ended execution's batch first, then every batch no release will come for; reconciles; wakes the
 * dispatcher. A batch that cannot be settled now (an error) is left to the next sweep, and the others are settled
 * all the same; the sweep then fails, so the error is seen.
 */
async function sweep(run: JanitorRun, event: unknown): Promise<void> {
  const { sfn, ddb, clock, settings, summary, log } = run;
  const first = endedExecutionOf(event);
  if (first) {
    const record = await readBatchRecord(ddb, settings.batchesTableName, first);
    const state = record && (await executionState(sfn, executionArnOf(settings.stateMachineArn, first)));
    if (record && state?.kind === 'ended' && !tasksMayStillStop(state, clock.now(), settings)) await settle(run, record, state);
  }

  const releasedForTheEvent = summary.released;
  // Read before the batch records: an admission after this read changes it and cancels any repair; one before it
  // has its record in the scan below. Either way no admission is half-seen.
  const admittedBefore = await readAdmittedVcpu(run);
  const records = await scanBatchRecords(ddb, settings.batchesTableName);
  summary.batches = records.length;
  const running = await runningExecutions(sfn, settings.stateMachineArn);
  const live: BatchRecord[] = [];
  const errors: Error[] = [];
  for (const record of records) {
    try {
      if (running.has(record.execution)) {
        live.push(record);
        continue;
      }
      const state = await executionState(sfn, executionArnOf(settings.stateMachineArn, record.execution));
      if (
        state.kind === 'running' ||
        (state.kind === 'missing' && clock.now() - record.admittedAt < settings.startGraceMs) ||
        (state.kind === 'ended' && tasksMayStillStop(state, clock.now(), settings))
      ) {
        live.push(record); // running, being started right now, or its tasks still stopping
        continue;
      }
      await settle(run, record, state);
    } catch (error) {
      errors.push(error as Error);
      log({ event: 'batchNotSettled', batch: record.execution, error: (error as Error).name, message: (error as Error).message });
    }
  }
  summary.sweptLeases = summary.released - releasedForTheEvent;
  summary.stillRunning = live.reduce((n, r) => n + (r.jobs?.length ?? 0), 0);
  // Leases of a batch that could not be settled are held but not counted as live: no repair on such a count.
  if (errors.length === 0 && admittedBefore !== undefined) await reconcile(run, { admittedBefore, live });

  // Room came back (leases given back, or a counter repaired that overstated what is in use): admit into it now.
  if (summary.released > 0 || (summary.repaired && (summary.drift ?? 0) > 0)) {
    await run.lambda.send(
      new InvokeCommand({ FunctionName: settings.dispatcherFunctionName, InvocationType: 'Event', Payload: Buffer.from('{"reason":"janitor"}') }),
    );
  }
  if (errors.length > 0)
    throw new Error(`${errors.length} batch(es) could not be settled this sweep (the next sweep tries again): ${errors[0].name}: ${errors[0].message}`);
}

/** Gives back every lease the batch still holds; then the batch is settled and its record goes. */
async function settle(run: JanitorRun, seen: BatchRecord, state: Ended | { readonly kind: 'missing' }): Promise<void> {
  const { ddb, clock, settings, summary, log } = run;
  // Read again, now the execution is known over and its tasks stopped: a packed task's worker may have recorded an
  // object's end since `seen` was read (a stopping task finishes the object it is on).
  const record = await readBatchRecord(ddb, settings.batchesTableName, seen.execution);
  if (!record) return;
  const rows = await readLedgerRows(
    ddb,
    settings.tableName,
    (record.jobs ?? []).map((j) => j.jobId),
    (ms) => run.clock.sleep(ms),
  );
  for (const job of record.jobs ?? []) {
    const row = rows.get(job.jobId);
    // The result this batch's execution recorded (a later round's batch counts its own).
    if (row?.executionName === record.execution && row.status === 'succeeded') summary.jobsSucceeded++;
    if (row?.executionName === record.execution && row.status === 'failed') summary.jobsFailed++;
    const lease = row?.lease;
    if (!row || !lease || lease.execution !== record.execution) continue; // given back already, or another batch holds it now
    const what = state.kind === 'missing' ? 'was admitted but never started' : `ended ${state.status} before the job finished`;
    const recorded = recordedResultOf(record.outcomes?.[job.jobId]);
    let outcome: ReleaseOutcome;
    if (state.kind === 'missing') {
      outcome = { status: 'queued', reason: `batch ${record.execution} ${what}` };
    } else if (row.status !== 'running') {
      outcome = { status: 'unchanged' }; // its result was recorded; only the lease was left
    } else if (recorded) {
      // A packed task's worker recorded this object's end before the execution died: it is not run again.
      outcome = recorded;
    } else if (!diedUnderTheJob(state, record.outcomes !== undefined)) {
      // The message first, as below; the job's count of failed runs stays as it was.
      await sendRequeue(run.sqs, intakeQueueFor(settings, row.objectKey), requeueMessageFor(row, row.failedRuns ?? 0), { returnedBy: record.execution });
      outcome = { status: 'queued', reason: `execution ${record.execution} ${what}${state.error ? ` (${state.error})` : ''}` };
    } else {
      const failedRuns = (row.failedRuns ?? 0) + 1;
      const reason = `execution ${record.execution} ${what}`;
      if (failedRuns >= settings.maxExecutionAttempts) {
        outcome = { status: 'failed', error: `Execution${state.status}`, cause: `${reason}; gave up after ${failedRuns} execution(s) ended without a result` };
      } else {
        // The message first: a crash after it leaves a duplicate (harmless), a crash before it leaves the lease (retried).
        await sendRequeue(run.sqs, intakeQueueFor(settings, row.objectKey), requeueMessageFor(row, failedRuns), { returnedBy: record.execution });
        outcome = { status: 'queued', reason, failedRuns };
      }
    }
    if (!(await releaseLease(ddb, settings.tableName, { jobId: job.jobId, lease, outcome }, clock))) continue;
    summary.released++;
    if (outcome.status === 'queued' && state.kind === 'ended') summary.requeued++;
    if (outcome.status === 'failed') {
      if (!recorded) summary.failed++;
      summary.jobsFailed++;
    }
    if (outcome.status === 'succeeded') summary.jobsSucceeded++;
    log({
      event: 'leaseReclaimed',
      jobId: job.jobId,
      batch: record.execution,
      executionState: state.kind === 'ended' ? state.status : 'never started',
      outcome: outcome.status,
    });
  }
  await deleteBatchRecord(ddb, settings.batchesTableName, record.execution);
  summary.settled++;
}

/**
 * Whether a job this execution left running counts a failed run: it died under the job (aborted, timed out, failed).
 * One that succeeded without recording the job only failed to write (the release, or the capacity return's message);
 * one admitted for another task size, or by a dispatcher of another version, never ran it. Those put the job back as it
 * was — except a packed batch's: its execution succeeds past a finisher that gave up (LeaveToJanitor), and an object
 * a finisher keeps failing on would otherwise run again and again.
 */
function diedUnderTheJob(state: Ended, packed: boolean): boolean {
  if (state.error === ADMITTED_FOR_ANOTHER_STATE_MACHINE) return false;
  return state.status !== 'SUCCEEDED' || packed;
}

let clients: { sfn: SFNClient; sqs: SQSClient; lambda: LambdaClient; ddb: DynamoDBDocumentClient } | undefined;

export async function handler(event: unknown): Promise<JanitorRunSummary> {
  clients ??= { sfn: new SFNClient({}), sqs: new SQSClient({}), lambda: new LambdaClient({}), ddb: DynamoDBDocumentClient.from(new DynamoDBClient({})) };
  return runJanitor({ ...clients, clock: systemClock, settings: janitorSettingsFromEnv(), log: jsonLog('janitor') }, event);
}
