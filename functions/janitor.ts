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
 * difference in one transaction that holds only if nothing changed meanwhile. It wakes the dispatcher if it freed anything.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { deleteBatchRecord, readBatchRecord, scanBatchRecords, type BatchRecord } from './batches';
import { janitorSettingsFromEnv, type JanitorSettings } from './environment';
import { executionArnOf } from './jobs';
import { readLedgerRows, releaseLease, requeueMessageFor, sendRequeue, type ReleaseOutcome } from './ledger';
import { cancellationOf, POOL_KEY, releasedShardKeys, requestToken } from './limiter';
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

type ExecutionState = { readonly kind: 'running' } | { readonly kind: 'ended'; readonly status: string } | { readonly kind: 'missing' };

async function executionState(sfn: AwsClient, arn: string): Promise<ExecutionState> {
  try {
    const { status } = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    return ENDED.has(status) ? { kind: 'ended', status } : { kind: 'running' };
  } catch (error) {
    if ((error as Error).name === 'ExecutionDoesNotExist') return { kind: 'missing' };
    throw error;
  }
}

async function runningExecutions(sfn: AwsClient, stateMachineArn: string): Promise<Set<string>> {
  const names = new Set<string>();
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', maxResults: 1000, nextToken }));
    for (const execution of page.executions ?? []) names.add(execution.name);
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

/** Settles the ended execution's batch first, then every batch no release will come for; reconciles; wakes the dispatcher. */
async function sweep(deps: JanitorDeps, event: unknown, summary: JanitorRunSummary, log: Log): Promise<void> {
  const { sfn, ddb, clock, settings } = deps;
  const first = endedExecutionOf(event);
  if (first) {
    const record = await readBatchRecord(ddb, settings.batchesTableName, first);
    const state = record && (await executionState(sfn, executionArnOf(settings.stateMachineArn, first)));
    if (record && state?.kind === 'ended') await settle(deps, record, state, summary, log);
  }

  const releasedForTheEvent = summary.released;
  const records = await scanBatchRecords(ddb, settings.batchesTableName);
  summary.batches = records.length;
  const running = await runningExecutions(sfn, settings.stateMachineArn);
  const live: BatchRecord[] = [];
  for (const record of records) {
    if (running.has(record.execution)) {
      live.push(record);
      continue;
    }
    const state = await executionState(sfn, executionArnOf(settings.stateMachineArn, record.execution));
    if (state.kind === 'running' || (state.kind === 'missing' && clock.now() - record.admittedAt < settings.startGraceMs)) {
      live.push(record); // running, or the dispatcher may be starting it right now
      continue;
    }
    await settle(deps, record, state, summary, log);
  }
  summary.sweptLeases = summary.released - releasedForTheEvent;
  summary.stillRunning = live.reduce((n, r) => n + r.jobs.length, 0);
  await reconcile(deps, live, summary, log);

  // Room came back (leases given back, or a counter repaired that overstated what is in use): admit into it now.
  if (summary.released > 0 || (summary.repaired && (summary.drift ?? 0) > 0)) {
    await deps.lambda.send(
      new InvokeCommand({ FunctionName: settings.dispatcherFunctionName, InvocationType: 'Event', Payload: Buffer.from('{"reason":"janitor"}') }),
    );
  }
}

/** Gives back every lease the batch still holds; then the batch is settled and its record goes. */
async function settle(
  deps: JanitorDeps,
  record: BatchRecord,
  state: Exclude<ExecutionState, { kind: 'running' }>,
  summary: JanitorRunSummary,
  log: Log,
): Promise<void> {
  const { ddb, clock, settings } = deps;
  const rows = await readLedgerRows(
    ddb,
    settings.tableName,
    record.jobs.map((j) => j.jobId),
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
    } else {
      const failedRuns = (row.failedRuns ?? 0) + 1;
      const reason = `execution ${record.execution} ${what}`;
      if (failedRuns >= settings.maxExecutionAttempts) {
        outcome = { status: 'failed', error: `Execution${state.status}`, cause: `${reason}; gave up after ${failedRuns} execution(s) ended without a result` };
      } else {
        // The message first: a crash after it leaves a duplicate (harmless), a crash before it leaves the lease (retried).
        await sendRequeue(deps.sqs, settings.queueUrl, requeueMessageFor(row, failedRuns));
        outcome = { status: 'queued', reason };
      }
    }
    if (!(await releaseLease(ddb, settings.tableName, job.jobId, lease, outcome, clock))) continue;
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

/** What the counters say: POOL's admitted vCPU and each released shard that exists, as read (consistently). */
interface Counters {
  /** As stored, not coerced: the repair's condition compares it unchanged. */
  readonly admittedVcpu: number;
  readonly shards: ReadonlyMap<string, number>;
  /** Σ released over the shards. */
  readonly released: number;
}

/**
 * The counters against the leases: in use = admitted − Σ released must equal what the live batches' leases hold.
 * A difference (a counter edited by hand, a write lost to a bug) is logged and repaired; the sweep's summary carries it.
 */
async function reconcile(deps: JanitorDeps, live: readonly BatchRecord[], summary: JanitorRunSummary, log: Log): Promise<void> {
  const counters = await readCounters(deps);
  if (!counters) return; // no pool configured yet: nothing to measure against
  const held = await heldByLeases(deps, live);
  const inUse = Number(counters.admittedVcpu ?? 0) - counters.released;
  // Rounded to a millionth: sums of fractional vCPU carry floating-point error, which is not drift.
  const drift = Math.round((inUse - held) * 1e6) / 1e6;
  summary.drift = drift;
  if (drift === 0) return;
  log({ event: 'counterDrift', inUseVcpu: inUse, heldByLeasesVcpu: held, driftVcpu: drift });
  await repairCounters(deps, counters, held, drift, summary, log);
}

/** POOL and every released shard, read consistently: the repair is conditioned on exactly these values. */
async function readCounters(deps: JanitorDeps): Promise<Counters | undefined> {
  const { ddb, settings } = deps;
  const { Item: pool } = await ddb.send(new GetCommand({ TableName: settings.tableName, Key: POOL_KEY, ConsistentRead: true }));
  if (!pool) return undefined;
  const { Responses } = await ddb.send(new BatchGetCommand({ RequestItems: { [settings.tableName]: { Keys: releasedShardKeys(), ConsistentRead: true } } }));
  const shards = new Map<string, number>(
    ((Responses?.[settings.tableName] ?? []) as Array<{ pk: string; releasedVcpu: number }>).map((s) => [s.pk, Number(s.releasedVcpu)]),
  );
  const released = [...shards.values()].reduce((a, b) => a + b, 0);
  return { admittedVcpu: pool.admittedVcpu, shards, released };
}

/** The vCPU the live batches' leases hold, read from their jobs' ledger rows (a row leased to another batch is not theirs). */
async function heldByLeases(deps: JanitorDeps, live: readonly BatchRecord[]): Promise<number> {
  const { ddb, settings } = deps;
  const rows = await readLedgerRows(
    ddb,
    settings.tableName,
    live.flatMap((r) => r.jobs.map((j) => j.jobId)),
  );
  const liveBatches = new Set(live.map((r) => r.execution));
  let held = 0;
  for (const row of rows.values()) if (row.lease && liveBatches.has(row.lease.execution)) held += Number(row.lease.vcpu);
  return held;
}

/**
 * Applies the drift to the first released shard in one transaction that re-checks every counter it read: a change
 * meanwhile (an admission, a release) cancels it, and the next sweep measures again rather than repair on stale counts.
 */
async function repairCounters(deps: JanitorDeps, counters: Counters, held: number, drift: number, summary: JanitorRunSummary, log: Log): Promise<void> {
  try {
    await deps.ddb.send(
      new TransactWriteCommand({
        ClientRequestToken: requestToken('reconcile', counters.admittedVcpu, counters.released, held),
        TransactItems: repairItems(deps.settings.tableName, counters, drift),
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
 * The repair's items: POOL unchanged, every other shard unchanged (or still absent), and the first shard updated
 * by the drift. Any one shard can take the correction, since only Σ released counts.
 */
function repairItems(tableName: string, counters: Counters, drift: number) {
  const { admittedVcpu, shards } = counters;
  const [target, ...others] = releasedShardKeys();
  const seen = shards.get(target.pk);
  return [
    {
      ConditionCheck: {
        TableName: tableName,
        Key: POOL_KEY,
        ConditionExpression: 'admittedVcpu = :admitted',
        ExpressionAttributeValues: { ':admitted': admittedVcpu },
      },
    },
    ...others.map((key) => ({
      ConditionCheck: shards.has(key.pk)
        ? { TableName: tableName, Key: key, ConditionExpression: 'releasedVcpu = :seen', ExpressionAttributeValues: { ':seen': shards.get(key.pk) } }
        : { TableName: tableName, Key: key, ConditionExpression: 'attribute_not_exists(pk)' },
    })),
    {
      Update: {
        TableName: tableName,
        Key: target,
        UpdateExpression: 'SET releasedVcpu = :repaired',
        ConditionExpression: shards.has(target.pk) ? 'releasedVcpu = :seen' : 'attribute_not_exists(pk)',
        ExpressionAttributeValues: { ':repaired': (seen ?? 0) + drift, ...(shards.has(target.pk) ? { ':seen': seen } : {}) },
      },
    },
  ];
}

let clients: { sfn: SFNClient; sqs: SQSClient; lambda: LambdaClient; ddb: DynamoDBDocumentClient } | undefined;

export async function handler(event: unknown): Promise<JanitorRunSummary> {
  clients ??= { sfn: new SFNClient({}), sqs: new SQSClient({}), lambda: new LambdaClient({}), ddb: DynamoDBDocumentClient.from(new DynamoDBClient({})) };
  return runJanitor({ ...clients, clock: systemClock, settings: janitorSettingsFromEnv(), log: jsonLog('janitor') }, event);
}
