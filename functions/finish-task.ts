/**
 * The finisher: a packed task's end (functions/packing.ts), object by object. The state machine calls it once the
 * task has run, failed for good, or could not start. Each object still leased to the execution gets its own result
 * on its row and its lease given back, in one transaction with the released counter (the lead's lease holds the
 * task's vCPU; the others hold none). What the worker recorded on the batch record decides each object's result:
 * an object it finished stays succeeded even when the task later failed; bad input fails that object alone. The
 * others go back to their queue (sent before the lease is given back, as the state machine sends a single job back)
 * when the task could not start or its container kept stopping — only the object it stopped on counting a failed run
 * (endOf) — and fail with the task's error when the task never ran right. Every write is conditioned on the lease
 * still being this execution's, so a retried call, or a janitor that settled the batch first, changes nothing.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { objectsOfTask, readBatchRecord, type BatchRecordJob } from './batches';
import { finisherSettingsFromEnv, type FinisherSettings } from './environment';
import { readLedgerRows, recordedResultOf, releaseLease, requeueMessageFor, sendRequeue, type LedgerRow, type ReleaseOutcome } from './ledger';
import type { FinishSummary } from './log-events';
import { WORKER_BAD_INPUT_EXIT_CODE, type ObjectOutcome } from './packing';
import { jsonLog, systemClock, type AwsClient, type Clock, type Log } from './runtime';

/** The error of an object the task never recorded although it exited 0: the worker broke its contract. */
export const OBJECT_NOT_RECORDED = 'Sluice.ObjectNotRecorded';

const taskOutcome = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('ran'), taskArn: z.string().min(1) }),
  z.strictObject({ kind: z.literal('failed'), error: z.string().min(1), cause: z.string() }),
  z.strictObject({ kind: z.literal('returned'), why: z.enum(['plain', 'classShort', 'hold']), reason: z.string() }),
]);
export type TaskOutcome = z.infer<typeof taskOutcome>;

const finishEvent = z.object({
  execution: z.string().min(1),
  job: z.looseObject({
    jobId: z.string().min(1),
    pack: z.strictObject({ task: z.number().int().min(0), objects: z.number().int().min(1) }),
    intakeQueueUrl: z.string().url().optional(),
  }),
  outcome: taskOutcome,
});
export type FinishEvent = z.infer<typeof finishEvent>;

interface FinisherDeps {
  readonly ddb: AwsClient;
  readonly sqs: AwsClient;
  readonly clock: Clock;
  readonly settings: FinisherSettings;
  readonly log?: Log;
}

/** Parses the state machine's call; a malformed one is refused with every problem named (the call is retried, then the janitor settles). */
export function parseFinishEvent(event: unknown): FinishEvent {
  const parsed = finishEvent.safeParse(event);
  if (parsed.success) return parsed.data;
  throw new Error(`bad finisher call: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'event'}: ${i.message}`).join('; ')}`);
}

export async function finishTask(deps: FinisherDeps, event: FinishEvent): Promise<FinishSummary> {
  const { ddb, clock, settings } = deps;
  const log = deps.log ?? (() => undefined);
  const { execution, job, outcome } = event;
  const summary: FinishSummary = { objects: 0, succeeded: 0, failed: 0, returned: 0, alreadyGivenBack: 0 };
  const record = await readBatchRecord(ddb, settings.batchesTableName, execution);
  if (!record) {
    // Settled already: the janitor found the execution over and gave every lease back.
    log({ event: 'packSettledAlready', execution, task: job.pack.task });
    return summary;
  }
  const objects = objectsOfTask(record, job.pack.task);
  if (objects.length === 0) throw new Error(`batch ${execution} lists no objects for task ${job.pack.task}`);
  const rows = await readLedgerRows(
    ddb,
    settings.tableName,
    objects.map((o) => o.jobId),
    (ms) => clock.sleep(ms),
  );
  // The worker goes in order and stops at an object that fails transiently: the first it did not record.
  const stoppedOn = objects.find((o) => !o.recorded)?.jobId;
  // The lead (the task's vCPU) last: the task counts as running until every object's row is settled.
  const ordered = [...objects.filter((o) => o.vcpu === 0), ...objects.filter((o) => o.vcpu > 0)];
  for (const object of ordered) {
    summary.objects++;
    const row = rows.get(object.jobId);
    if (!row?.lease || row.lease.execution !== execution) {
      summary.alreadyGivenBack++;
      continue;
    }
    const end = endOf(record.outcomes?.[object.jobId], outcome, {
      stoppedOn: object.jobId === stoppedOn,
      failedRuns: row.failedRuns ?? 0,
      maxExecutionAttempts: settings.maxExecutionAttempts,
    });
    const given = await settleObject(deps, { execution, row, object, end, outcome, queueUrl: job.intakeQueueUrl ?? settings.queueUrl });
    if (!given) summary.alreadyGivenBack++;
    else if (end.status === 'queued') summary.returned++;
    else if (end.status === 'failed') summary.failed++;
    else summary.succeeded++;
  }
  log({ event: 'taskFinished', execution, task: job.pack.task, outcome: outcome.kind, ...summary });
  return summary;
}

/**
 * One object's result, from what the worker recorded for it and how the task ended. A task whose container kept
 * stopping transiently (its retries spent) stopped each time at an object it had not finished: that object counts a
 * failed run (failed once it has had as many as a job may), and the objects it never reached go back to their queue
 * uncounted — an object fails for its own trouble, never for another's. Any other failure (a task that never ran
 * right) fails every object it did not finish.
 */
export function endOf(
  recorded: ObjectOutcome | undefined,
  outcome: TaskOutcome,
  object: { stoppedOn: boolean; failedRuns: number; maxExecutionAttempts: number },
): Exclude<ReleaseOutcome, { status: 'unchanged' }> {
  const result = recordedResultOf(recorded, outcome.kind === 'ran' ? outcome.taskArn : undefined);
  if (result) return result;
  if (outcome.kind === 'returned') return { status: 'queued', reason: outcome.reason, capacityReturn: true };
  if (outcome.kind === 'ran')
    return { status: 'failed', error: OBJECT_NOT_RECORDED, cause: `task ${outcome.taskArn} exited 0 without recording this object's end` };
  const stopped = containerStopped(outcome);
  if (stopped === 'not-a-container-ending') return { status: 'failed', error: outcome.error, cause: outcome.cause };
  // A packed task exits 65 only when its own environment is bad (a deploy's error, an image from before packing): it
  // read none of its objects, and each counts the run.
  if (!object.stoppedOn && stopped === 'transiently') return { status: 'queued', reason: 'its task stopped before reaching it' };
  const failedRuns = object.failedRuns + 1;
  if (failedRuns >= object.maxExecutionAttempts) return { status: 'failed', error: outcome.error, cause: outcome.cause };
  const why = stopped === 'transiently' ? 'its task stopped on it' : 'its task could not read its objects (exit 65: the task environment)';
  return { status: 'queued', reason: `${why} (${outcome.error})`, failedRuns };
}

/**
 * How a task that failed for good ended: its container stopped (exit 75, a Spot interruption, killed: `transiently`),
 * its container refused its environment (exit 65: for a packed task, a deploy's error), or something other than its
 * container (a timeout, a refused RunTask). The Cause is the stopped task as JSON inside the failure's JSON; the exit
 * code is read from its text, escaped or not.
 */
export function containerStopped(outcome: { error: string; cause: string }): 'transiently' | 'on-its-environment' | 'not-a-container-ending' {
  if (outcome.error !== 'States.TaskFailed' || !/Containers/.test(outcome.cause)) return 'not-a-container-ending';
  const exitCode = /ExitCode\\*"?\s*:\s*(\d+)/.exec(outcome.cause)?.[1];
  return exitCode !== undefined && Number(exitCode) === WORKER_BAD_INPUT_EXIT_CODE ? 'on-its-environment' : 'transiently';
}

/** Sends an object going back to its queue, then gives its lease back with its result. False: it was no longer this execution's. */
async function settleObject(
  deps: FinisherDeps,
  {
    execution,
    row,
    object,
    end,
    outcome,
    queueUrl,
  }: { execution: string; row: LedgerRow; object: BatchRecordJob; end: ReleaseOutcome; outcome: TaskOutcome; queueUrl: string },
): Promise<boolean> {
  const { ddb, sqs, clock, settings } = deps;
  const lease = row.lease!;
  if (end.status === 'queued') {
    await sendRequeue(sqs, queueUrl, requeueMessageFor(row, end.failedRuns ?? row.failedRuns ?? 0), {
      returnedBy: execution,
      // Back for lack of capacity: after the capacity delay; back from a stopped task: at once.
      delaySeconds: end.capacityReturn ? settings.capacityRetryDelaySeconds : 0,
    });
  }
  const at = new Date(clock.now()).toISOString();
  const why = outcome.kind === 'returned' ? outcome.why : undefined;
  return releaseLease(
    ddb,
    settings.tableName,
    {
      jobId: object.jobId,
      lease,
      outcome: end,
      ...(why === 'classShort' ? { classShortAt: at } : {}),
      ...(why === 'hold' ? { holdAt: at } : {}),
    },
    clock,
  );
}

let clients: { ddb: DynamoDBDocumentClient; sqs: SQSClient } | undefined;

/** Lambda entry: the state machine's synchronous call at a packed task's end. */
export async function handler(event: unknown): Promise<FinishSummary> {
  clients ??= { ddb: DynamoDBDocumentClient.from(new DynamoDBClient({})), sqs: new SQSClient({}) };
  return finishTask({ ...clients, clock: systemClock, settings: finisherSettingsFromEnv(), log: jsonLog('finisher') }, parseFinishEvent(event));
}
