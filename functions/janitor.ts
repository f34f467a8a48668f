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
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { batchGetItems } from './batch-get';
import { deleteBatchRecord, readBatchRecord, scanBatchRecords, type BatchRecord } from './batches';
import { janitorSettingsFromEnv, type JanitorSettings } from './environment';
import { ADMITTED_FOR_ANOTHER_TASK_SIZE, executionArnOf } from './jobs';
import { readLedgerRows, releaseLease, requeueMessageFor, sendRequeue, type ReleaseOutcome } from './ledger';
import { cancellationOf } from './dynamo-errors';
import { POOL_KEY, releasedShardKeys, requestToken } from './limiter';
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

const ENDED = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

type ExecutionState =
  | { readonly kind: 'running' }
  | { readonly kind: 'ended'; readonly status: string; readonly stoppedAt?: number; readonly error?: string }
  | { readonly kind: 'missing' };
type Ended = Extract<ExecutionState, { kind: 'ended' }>;

async function executionState(sfn: AwsClient, arn: string): Promise<ExecutionState> {
  try {
    const { status, stopDate, error } = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    if (status === undefined || !ENDED.has(status)) return { kind: 'running' };
    return { kind: 'ended', status, ...(stopDate ? { stoppedAt: new Date(stopDate).getTime() } : {}), ...(error ? { error } : {}) };
  } catch (error) {
    if ((error as Error).name === 'ExecutionDoesNotExist') return { kind: 'missing' };
    throw error;
  }
}

/**
 * An execution that did not succeed had its running tasks stopped by Step Functions: each gets SIGTERM, and SIGKILL
 * after the container's stop timeout. Until then a task may still run: its job keeps its lease (and its vCPU stays
 * counted), so its next round cannot start beside it.
 */
function tasksMayStillStop(state: Ended, now: number, settings: JanitorSettings): boolean {
  return state.status !== 'SUCCEEDED' && now < (state.stoppedAt ?? now) + settings.stopGraceMs;
}

/**
 * Whether a job this execution left running counts a failed run: it died under the job (aborted, timed out, failed).
 * One that succeeded without recording the job only failed to write (the release, or the capacity return's message);
 * one that was admitted for another task size never ran it. Those put the job back as it was.
 */
function diedUnderTheJob(state: Ended): boolean {
  return state.status !== 'SUCCEEDED' && state.error !== ADMITTED_FOR_ANOTHER_TASK_SIZE;
}

async function runningExecutions(sfn: AwsClient, stateMachineArn: string): Promise<Set<string>> {
  const names = new Set<string>();
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', maxResults: 1000, nextToken }));
    for (const { name } of page.executions ?? []) if (name !== undefined) names.add(name);
    nextToken = page.nextToken;
  } while (nextToken);
  return names;
}

/** An execution-status-change event (EventBridge), or anything else (a schedule): which batch to settle first. */
function endedExecutionOf(event: unknown): string | undefined {
  const arn = (event as { detail?: { executionArn?: unknown } })?.detail?.executionArn;
  return typeof arn === 'string' ? arn.split(':').pop() : undefined;
}

export async function runJanitor(deps: JanitorDeps, event?: unknown): Promise<JanitorRunSummary> {
  const log = deps.log ?? (() => undefined);
  const summary: JanitorRunSummary = {
    batches: 0,
    settled: 0,
    released: 0,
    sweptLeases: 0,
    requeued: 0,
    failed: 0,
    jobsSucceeded: 0,
    jobsFailed: 0,
    stillRunning: 0,
    drift: null,
    repaired: false,
  };

  try {
    await sweep(deps, event, summary, log);
  } finally {
    // Also after a failure part-way: the batches settled so far are gone, so their counts are told now or never.
    log({ event: 'janitorDone', ...summary });
  }
  return summary;
}

/**
 * Settles the ended execution's batch first, then every batch no release will come for; reconciles; wakes the
 * dispatcher. A batch that cannot be settled now (an error) is left to the next sweep, and the others are settled
 * all the same; the sweep then fails, so the error is seen.
 */
async function sweep(deps: JanitorDeps, event: unknown, summary: JanitorRunSummary, log: Log): Promise<void> {
  const { sfn, ddb, clock, settings } = deps;
  const first = endedExecutionOf(event);
  if (first) {
    const record = await readBatchRecord(ddb, settings.batchesTableName, first);
    const state = record && (await executionState(sfn, executionArnOf(settings.stateMachineArn, first)));
    if (record && state?.kind === 'ended' && !tasksMayStillStop(state, clock.now(), settings)) await settle(deps, record, state, summary, log);
  }

  const releasedForTheEvent = summary.released;
  // Read before the batch records: an admission after this read changes it and cancels any repair; one before it
  // has its record in the scan below. Either way no admission is half-seen.
  const admittedBefore = await readAdmittedVcpu(deps);
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
      await settle(deps, record, state, summary, log);
    } catch (error) {
      errors.push(error as Error);
      log({ event: 'batchNotSettled', batch: record.execution, error: (error as Error).name, message: (error as Error).message });
    }
  }
  summary.sweptLeases = summary.released - releasedForTheEvent;
  summary.stillRunning = live.reduce((n, r) => n + r.jobs.length, 0);
  // Leases of a batch that could not be settled are held but not counted as live: no repair on such a count.
  if (errors.length === 0 && admittedBefore !== undefined) await reconcile(deps, admittedBefore, live, summary, log);

  // Room came back (leases given back, or a counter repaired that overstated what is in use): admit into it now.
  if (summary.released > 0 || (summary.repaired && (summary.drift ?? 0) > 0)) {
    await deps.lambda.send(
      new InvokeCommand({ FunctionName: settings.dispatcherFunctionName, InvocationType: 'Event', Payload: Buffer.from('{"reason":"janitor"}') }),
    );
  }
  if (errors.length > 0)
    throw new Error(`${errors.length} batch(es) could not be settled this sweep (the next sweep tries again): ${errors[0].name}: ${errors[0].message}`);
}

/** Gives back every lease the batch still holds; then the batch is settled and its record goes. */
async function settle(
  deps: JanitorDeps,
  record: BatchRecord,
  state: Ended | { readonly kind: 'missing' },
  summary: JanitorRunSummary,
  log: Log,
): Promise<void> {
  const { ddb, clock, settings } = deps;
  const rows = await readLedgerRows(
    ddb,
    settings.tableName,
    record.jobs.map((j) => j.jobId),
    (ms) => deps.clock.sleep(ms),
  );
  for (const job of record.jobs) {
    const row = rows.get(job.jobId);
    // The result this batch's execution recorded (a later round's batch counts its own).
    if (row?.executionName === record.execution && row.status === 'succeeded') summary.jobsSucceeded++;
    if (row?.executionName === record.execution && row.status === 'failed') summary.jobsFailed++;
    const lease = row?.lease;
    if (!row || !lease || lease.execution !== record.execution) continue; // given back already, or another batch holds it now
    const what = state.kind === 'missing' ? 'was admitted but never started' : `ended ${state.status} before the job finished`;
    let outcome: ReleaseOutcome;
    if (state.kind === 'missing') {
      outcome = { status: 'queued', reason: `batch ${record.execution} ${what}` };
    } else if (row.status !== 'running') {
      outcome = { status: 'unchanged' }; // its result was recorded; only the lease was left
    } else if (!diedUnderTheJob(state)) {
      // The message first, as below; the job's count of failed runs stays as it was.
      await sendRequeue(deps.sqs, settings.queueUrl, requeueMessageFor(row, row.failedRuns ?? 0), { returnedBy: record.execution });
      outcome = { status: 'queued', reason: `execution ${record.execution} ${what}${state.error ? ` (${state.error})` : ''}` };
    } else {
      const failedRuns = (row.failedRuns ?? 0) + 1;
      const reason = `execution ${record.execution} ${what}`;
      if (failedRuns >= settings.maxExecutionAttempts) {
        outcome = { status: 'failed', error: `Execution${state.status}`, cause: `${reason}; gave up after ${failedRuns} execution(s) ended without a result` };
      } else {
        // The message first: a crash after it leaves a duplicate (harmless), a crash before it leaves the lease (retried).
        await sendRequeue(deps.sqs, settings.queueUrl, requeueMessageFor(row, failedRuns), { returnedBy: record.execution });
        outcome = { status: 'queued', reason, failedRuns };
      }
    }
    if (!(await releaseLease(ddb, settings.tableName, { jobId: job.jobId, lease, outcome }, clock))) continue;
    summary.released++;
    if (outcome.status === 'queued' && state.kind === 'ended') summary.requeued++;
    if (outcome.status === 'failed') {
      summary.failed++;
      summary.jobsFailed++;
    }
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

/** The released shards that exist, as read (consistently): the repair is conditioned on exactly these values. */
interface Shards {
  readonly shards: ReadonlyMap<string, number>;
  /** Σ released over the shards. */
  readonly released: number;
}

/** POOL's admitted vCPU as stored (not coerced: the repair's condition compares it unchanged); undefined with no pool yet. */
async function readAdmittedVcpu(deps: JanitorDeps): Promise<number | undefined> {
  const { Item } = await deps.ddb.send(
    new GetCommand({ TableName: deps.settings.tableName, Key: POOL_KEY, ConsistentRead: true, ProjectionExpression: 'admittedVcpu' }),
  );
  return Item ? (Item.admittedVcpu ?? 0) : undefined;
}

/**
 * The counters against the leases: in use = admitted − Σ released must equal what the live batches' leases hold.
 * `admittedBefore` was read before the batch records were scanned, the shards and the leases are read now: a
 * release meanwhile is in both, an admission meanwhile cancels the repair. A difference (a counter edited by hand, a
 * write lost to a bug) is logged and repaired; the sweep's summary carries it.
 */
async function reconcile(deps: JanitorDeps, admittedBefore: number, live: readonly BatchRecord[], summary: JanitorRunSummary, log: Log): Promise<void> {
  const shards = await readShards(deps);
  const held = await heldByLeases(deps, live);
  const inUse = Number(admittedBefore) - shards.released;
  // Rounded to a millionth: sums of fractional vCPU carry floating-point error, which is not drift.
  const drift = Math.round((inUse - held) * 1e6) / 1e6;
  summary.drift = drift;
  if (drift === 0) return;
  log({ event: 'counterDrift', inUseVcpu: inUse, heldByLeasesVcpu: held, driftVcpu: drift });
  await repairCounters(deps, admittedBefore, shards, held, drift, summary, log);
}

async function readShards(deps: JanitorDeps): Promise<Shards> {
  const items = await batchGetItems(deps.ddb, {
    table: deps.settings.tableName,
    keys: releasedShardKeys(),
    read: { ConsistentRead: true },
    sleep: (ms) => deps.clock.sleep(ms),
  });
  const shards = new Map<string, number>((items as Array<{ pk: string; releasedVcpu: number }>).map((s) => [s.pk, s.releasedVcpu]));
  return { shards, released: [...shards.values()].reduce((a, b) => a + Number(b), 0) };
}

/** The vCPU the live batches' leases hold, read from their jobs' ledger rows (a row leased to another batch is not theirs). */
async function heldByLeases(deps: JanitorDeps, live: readonly BatchRecord[]): Promise<number> {
  const { ddb, settings } = deps;
  const rows = await readLedgerRows(
    ddb,
    settings.tableName,
    live.flatMap((r) => r.jobs.map((j) => j.jobId)),
    (ms) => deps.clock.sleep(ms),
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
async function repairCounters(
  deps: JanitorDeps,
  admittedBefore: number,
  shards: Shards,
  held: number,
  drift: number,
  summary: JanitorRunSummary,
  log: Log,
): Promise<void> {
  try {
    await deps.ddb.send(
      new TransactWriteCommand({
        ClientRequestToken: requestToken('reconcile', admittedBefore, shards.released, held),
        TransactItems: repairItems(deps.settings.tableName, admittedBefore, shards, drift),
      }),
    );
    summary.repaired = true;
    log({ event: 'counterRepaired', driftVcpu: drift });
  } catch (error) {
    if (!cancellationOf(error)) throw error;
    log({ event: 'counterRepairDeferred', reason: 'the counters changed while they were measured; the next sweep measures again' });
  }
}

/**
 * The repair's items. Both counters only ever grow (a stale read of released then only overstates what is in use),
 * and so does a repair: too much counted in use (drift > 0) adds to the first released shard; too little (drift < 0:
 * leases the counters miss) adds to admitted. POOL and every shard not written are checked unchanged (or still absent).
 */
function repairItems(tableName: string, admittedBefore: number, { shards }: Shards, drift: number) {
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

let clients: { sfn: SFNClient; sqs: SQSClient; lambda: LambdaClient; ddb: DynamoDBDocumentClient } | undefined;

export async function handler(event: unknown): Promise<JanitorRunSummary> {
  clients ??= { sfn: new SFNClient({}), sqs: new SQSClient({}), lambda: new LambdaClient({}), ddb: DynamoDBDocumentClient.from(new DynamoDBClient({})) };
  return runJanitor({ ...clients, clock: systemClock, settings: janitorSettingsFromEnv(), log: jsonLog('janitor') }, event);
}
