/**
 * The dispatcher: the only admitter. It takes from the intake queue only as many messages as the pool can admit
 * right now (free vCPU within the effective budget, and launch tokens), so a message waiting for capacity is never
 * received, costs nothing and never counts toward the DLQ's maxReceiveCount. It admits a batch with one
 * transaction (the pool's counters, a lease on each job's ledger row, the batch record), starts one execution for
 * it, and loops while budget, tokens and messages remain.
 *
 * It gathers batches: when fewer jobs than a full batch can go now but more are waiting, it waits up to the batch
 * window for more room (a release, a token) and admits once the batch is full or the window has closed; short of
 * budget it looks again every 100 ms, so a batch filled by releases goes at once. Jobs that end together are then admitted together, and a batch's fixed costs — its execution,
 * the pool's write, its record — are shared.
 *
 * Short of budget it stops: every lease release wakes it (the state machine invokes it), and a schedule does every
 * minute, so waiting work costs nothing. It runs one at a time (reserved concurrency 1), so the wake-ups of a batch's
 * releases wait while one run admits into the room they made. When it stops short of room on a strongly consistent
 * read of the releases, it records that look on POOL (`lastLook`); a wake-up for a release made before it, while the
 * pool stands as it looked, stops after reading POOL alone.
 */
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { admitBatch } from './admission';
import { deleteBatchRecord, readBatchRecord } from './batches';
import { dispatcherSettingsFromEnv, type DispatcherSettings } from './environment';
import { executionArnOf, executionNameFor, parseIntakeMessage, REDRIVE_OF, RETURNED_BY, type Job, type JobInput } from './jobs';
import { releaseLease, type LedgerRow } from './ledger';
import {
  batchReleaseShards,
  forgetLastLook,
  lookOf,
  planAdmission,
  poolAsLooked,
  readPool,
  readPoolItem,
  readReleased,
  recordLastLook,
  type AdmissionPlan,
  type Lease,
  type PoolState,
} from './limiter';
import type { DispatcherRunSummary } from './log-events';
import { deferInBatches, deleteInBatches, MESSAGE_ATTRIBUTES, sqsText } from './queue-batches';
import { jsonLog, systemClock, type Clock, type Log, type AwsClient } from './runtime';

interface DispatcherDeps {
  readonly sqs: AwsClient;
  readonly sfn: AwsClient;
  readonly ddb: AwsClient;
  readonly clock: Clock;
  readonly settings: DispatcherSettings;
  readonly log?: Log;
  /** Batches this process saw started (default: the process's own; a twin world passes one of its own). */
  readonly started?: StartedBatches;
  /** What woke this run, when it says (the state machine's and the janitor's wake-ups do). */
  readonly wake?: Wake;
}

/** A wake-up that made room: a lease release (the state machine says when it was made) or the janitor. */
export interface Wake {
  readonly releasedAt?: number;
}

/**
 * A message whose job's lease is still held by whoever sent it (its release follows the send), or by a batch that
 * never started, is put back for this long; the lease is given back meanwhile (by its holder, or the janitor).
 */
const HELD_LEASE_RETRY_SECONDS = 60;
/** After a failed StartExecution the batch's messages come back this soon. */
const START_FAILURE_RETRY_SECONDS = 15;
const ADMISSION_TRIES = 5;
/**
 * While a batch waits for budget, the released counters are read again this often: the jobs of a batch end within
 * moments of each other, so the batch is often full well before its window closes. Each look is one read of the
 * release shards (64 eventually consistent reads, 32 read units) and one GetQueueAttributes.
 */
const BATCH_LOOK_AGAIN_MS = 100;
/**
 * A release counts as seen by the last look only if made this long before it: the release's time is Step
 * Functions' clock, the look's a Lambda's. Far above the clock error between AWS services; a wake-up wrongly taken
 * for seen leaves its room to the next release or the minute's schedule.
 */
const CLOCK_MARGIN_MS = 100;

interface Received {
  readonly job: Job;
  readonly message: Message;
  /** The execution whose lease on the job this message replaces (a requeue says so; an upload does not). */
  readonly returnedBy?: string;
}

/**
 * Batches this process already saw started, so the next run need not ask Step Functions again. Bounded: a warm
 * Lambda runs for hours, and only recent batches are ever asked about.
 */
export class StartedBatches {
  private readonly names = new Set<string>();
  constructor(private readonly capacity = 4096) {}
  has(name: string): boolean {
    return this.names.has(name);
  }
  add(name: string): void {
    this.names.delete(name);
    this.names.add(name);
    if (this.names.size > this.capacity) this.names.delete(this.names.values().next().value as string);
  }
}

const startedInThisProcess = new StartedBatches();

/** The dependencies of one run, with the started-batches cache settled. */
type Run = DispatcherDeps & { readonly started: StartedBatches };

export async function runDispatcher(input: DispatcherDeps): Promise<DispatcherRunSummary> {
  const deps: Run = { ...input, started: input.started ?? startedInThisProcess };
  const { clock, settings } = deps;
  const log = deps.log ?? (() => undefined);
  const started = clock.now();
  const summary: DispatcherRunSummary = {
    admitted: 0,
    executionsStarted: 0,
    poison: 0,
    duplicates: 0,
    deferred: 0,
    waits: 0,
    reclaimed: 0,
    stoppedBecause: 'queue-empty',
  };
  const item = await readPoolItem(deps.ddb, settings.tableName);
  if (releaseAlreadySeen(item, deps.wake?.releasedAt)) {
    summary.stoppedBecause = 'release-seen';
    log({ event: 'dispatcherDone', ...summary, ms: clock.now() - started });
    return summary;
  }
  let state: RunState | undefined;
  try {
    state = await startingState(deps, item, summary, log);
    for (;;) {
      if (clock.now() - started >= settings.maxRunMs) {
        summary.stoppedBecause = 'time-limit';
        break;
      }
      if ((await dispatchRound(deps, state, summary, log)) === 'stop') break;
    }
  } catch (error) {
    // It may have found room it never used: the wake-ups queued behind it must look.
    if (item.lastLook !== undefined) await keepLastLookTrue(deps, item, undefined, log);
    throw error;
  }
  await keepLastLookTrue(deps, item, state, log, summary.stoppedBecause);
  log({ event: 'dispatcherDone', ...summary, ms: clock.now() - started });
  return summary;
}

/** What a run carries from one round to the next. */
interface RunState {
  pool: PoolState;
  /** Whether `pool.releasedVcpu` was read since the last admission or wait for tokens. */
  releasedFresh: boolean;
  /** When the read `pool.releasedVcpu` came from started, if it was strongly consistent. */
  consistentReadAt?: number;
  /** When the batch being gathered first fell short of full; undefined while none is. */
  batchOpenedAt: number | undefined;
}

type RoundOutcome = 'next' | 'stop';

/** Whether the release that woke this run was counted by the last look short of room, and the pool stands as it looked. */
function releaseAlreadySeen(pool: Omit<PoolState, 'releasedVcpu'>, releasedAt: number | undefined): boolean {
  const look = pool.lastLook;
  if (releasedAt === undefined || look === undefined) return false;
  return releasedAt + CLOCK_MARGIN_MS < look.at && poolAsLooked(pool, look);
}

/**
 * The last look stays true to what a wake-up would find: recorded when this run stopped short of room on a
 * consistent read, forgotten when it ended with room it may not have filled (the queue looked empty, admission
 * failed, it died: `stoppedBecause` undefined). A run killed outright (a timeout) leaves it, but one that admitted
 * changed the pool, and one that did not leaves its room to the minute's schedule. Best effort: a failure costs
 * wake-ups a read of the shards, never a job.
 */
async function keepLastLookTrue(
  deps: Run,
  start: Omit<PoolState, 'releasedVcpu'>,
  state: RunState | undefined,
  log: Log,
  stoppedBecause?: DispatcherRunSummary['stoppedBecause'],
): Promise<void> {
  const { ddb, settings } = deps;
  const shortOfRoom = stoppedBecause === 'no-budget' || stoppedBecause === 'account-full';
  try {
    if (shortOfRoom && state?.consistentReadAt !== undefined) await recordLastLook(ddb, settings.tableName, lookOf(state.pool, state.consistentReadAt));
    else if (!shortOfRoom && start.lastLook !== undefined) await forgetLastLook(ddb, settings.tableName);
  } catch (error) {
    log({ event: 'lastLookNotKept', error: (error as Error).name, message: (error as Error).message });
  }
}

/**
 * A wake-up that made room, from its event: the state machine's after a release (with when it was made: its
 * releasedAt, if well formed) and the janitor's. Undefined for uploads, the schedule and anything else.
 */
export function wakeOf(event: unknown): Wake | undefined {
  const { reason, releasedAt } = (event ?? {}) as { reason?: unknown; releasedAt?: unknown };
  if (reason === 'janitor') return {};
  if (reason !== 'lease-released') return undefined;
  const at = typeof releasedAt === 'string' ? Date.parse(releasedAt) : NaN;
  return Number.isFinite(at) ? { releasedAt: at } : {};
}

/**
 * The pool the run starts from: a batch the last run admitted but never started is given back first (once its start
 * grace has passed). Woken by room made, it reads the releases strongly consistently: an eventually consistent read
 * might miss that room.
 */
async function startingState(deps: Run, item: Omit<PoolState, 'releasedVcpu'>, summary: DispatcherRunSummary, log: Log): Promise<RunState> {
  const { ddb, clock, settings } = deps;
  const consistent = deps.wake !== undefined;
  const at = clock.now();
  const pool = { ...item, releasedVcpu: await readReleased(ddb, settings.tableName, consistent, (ms) => clock.sleep(ms)) };
  const state: RunState = { pool, releasedFresh: true, consistentReadAt: consistent ? at : undefined, batchOpenedAt: undefined };
  if (!(await reclaimUnstartedBatch(deps, pool, log))) return state;
  summary.reclaimed++;
  // What it gave back is in the shards now; look again consistently before stopping short of room.
  return { ...state, pool: await readPool(ddb, settings.tableName), releasedFresh: false, consistentReadAt: undefined };
}

/** One round: plan from the pool, then stop, wait for room, or gather a batch and admit it. */
async function dispatchRound(deps: Run, state: RunState, summary: DispatcherRunSummary, log: Log): Promise<RoundOutcome> {
  const { clock, settings } = deps;
  const now = clock.now();
  const plan = planAdmission(state.pool, now, settings.taskVcpu, settings.jobsPerExecution);
  if (plan.count === 0 && (plan.limitedBy === 'budget' || plan.limitedBy === 'account')) return rereadOrStop(deps, state, plan.limitedBy, summary);
  const backlog = await visibleBacklog(deps.sqs, settings.queueUrl);
  if (backlog === 0) return 'stop';
  if (await waitedForFullBatch(deps, state, plan, now, backlog, summary)) return 'next';
  state.batchOpenedAt = undefined;
  return gatherAndAdmit(deps, state, plan.count, summary, log);
}

/**
 * Out of room. Releases since the last read only make room: look once more, strongly consistently (the look the
 * run records), before stopping. Stopped, the run costs nothing while it waits: the next release wakes the dispatcher.
 */
async function rereadOrStop(deps: Run, state: RunState, limitedBy: 'budget' | 'account', summary: DispatcherRunSummary): Promise<RoundOutcome> {
  if (!state.releasedFresh) {
    await rereadReleased(deps, state, true);
    return 'next';
  }
  summary.stoppedBecause = limitedBy === 'account' ? 'account-full' : 'no-budget';
  return 'stop';
}

async function rereadReleased(deps: Run, state: RunState, consistent = false): Promise<void> {
  const at = deps.clock.now();
  state.pool = { ...state.pool, releasedVcpu: await readReleased(deps.ddb, deps.settings.tableName, consistent, (ms) => deps.clock.sleep(ms)) };
  state.releasedFresh = true;
  state.consistentReadAt = consistent ? at : undefined;
}

/**
 * When fewer than a full batch fit now, waits for more room (releases, tokens) until the batch window closes, so
 * jobs that can go together share one execution. A full batch is as many as wait, up to a batch, and no more than
 * the bucket or the effective budget can ever hold at once. Answers whether it waited: the round is then planned again.
 */
async function waitedForFullBatch(
  deps: Run,
  state: RunState,
  plan: AdmissionPlan,
  now: number,
  backlog: number,
  summary: DispatcherRunSummary,
): Promise<boolean> {
  const { clock, settings } = deps;
  const full = Math.min(settings.jobsPerExecution, backlog, state.pool.burst, Math.max(1, Math.floor(plan.effectiveVcpu / settings.taskVcpu)));
  if (plan.count >= full) return false;
  const opening = state.batchOpenedAt === undefined;
  state.batchOpenedAt ??= now;
  const windowEnds = state.batchOpenedAt + settings.batchWindowMs;
  // The window closed with room for some: they go as they are.
  if (now >= windowEnds && plan.count > 0) return false;
  // None can go: the next token is when one can. Short of budget, it looks again soon and goes once the batch is
  // full. Short of tokens or of the account's room it waits out the window: the account's free vCPU is a reading
  // up to a minute old, and filling it faster only meets the real quota sooner (more vCPU-limit errors in the twin).
  const wakeAt = plan.count === 0 ? plan.nextTokenAt : plan.limitedBy === 'budget' ? Math.min(windowEnds, now + BATCH_LOOK_AGAIN_MS) : windowEnds;
  // A pause counts once, however often it looks again.
  if (opening || plan.count === 0) summary.waits++;
  await clock.sleep(Math.max(1, Math.ceil(wakeAt - now)));
  if (plan.limitedBy === 'tokens') {
    state.releasedFresh = false; // room was not what it waited for: read the releases only when room runs short
    state.consistentReadAt = undefined;
  } else {
    await rereadReleased(deps, state);
  }
  return true;
}

/** Receives up to `count` jobs and admits them as one batch; stops the run when nothing came or admission failed. */
async function gatherAndAdmit(deps: Run, state: RunState, count: number, summary: DispatcherRunSummary, log: Log): Promise<RoundOutcome> {
  const gathered = await gather(deps, count, summary, log);
  if (gathered.receivedAny === false) return 'stop';
  if (gathered.jobs.length === 0) return 'next';
  const result = await admitAndStart(deps, state.pool, gathered.jobs, summary, log);
  if (result.outcome !== 'ok') {
    summary.stoppedBecause = result.outcome;
    return 'stop';
  }
  state.pool = result.pool;
  state.releasedFresh = false;
  state.consistentReadAt = undefined;
  return 'next';
}

async function visibleBacklog(sqs: AwsClient, queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
}

/**
 * Only the last admission can be one that never started: each run starts a batch before it admits the next, and
 * one run goes at a time. Once its start grace has passed (the janitor's rule: the run that admitted it is dead, and
 * what it sent has had time to show), if its execution does not exist its leases are given back now (its messages
 * were never deleted: they come back by themselves); the janitor would too, a sweep later. Younger, it is left.
 */
async function reclaimUnstartedBatch(deps: Run, pool: PoolState, log: Log): Promise<boolean> {
  const last = pool.lastAdmission;
  const { clock, settings } = deps;
  if (!last || deps.started.has(last.execution) || clock.now() - last.at < settings.startGraceMs) return false;
  const record = await readBatchRecord(deps.ddb, settings.batchesTableName, last.execution);
  if (!record) return false; // settled already (given back at once, or by the janitor)
  if (await executionExists(deps, last.execution)) {
    deps.started.add(last.execution);
    return false;
  }
  for (const job of record.jobs) {
    const lease: Lease = { execution: record.execution, vcpu: job.vcpu, admittedAt: record.admittedAt, expiresAt: record.expiresAt };
    await releaseLease(
      deps.ddb,
      settings.tableName,
      job.jobId,
      lease,
      { status: 'queued', reason: `batch ${record.execution} was admitted but never started` },
      clock,
    );
  }
  await deleteBatchRecord(deps.ddb, settings.batchesTableName, record.execution);
  deps.started.add(last.execution);
  log({ event: 'unstartedBatchReclaimed', batch: record.execution, jobs: record.jobs.length });
  return true;
}

/** Receives up to `wanted` admissible jobs; poison goes to the DLQ, a job met twice in the batch is dropped. */
async function gather(deps: Run, wanted: number, summary: DispatcherRunSummary, log: Log) {
  const { sqs, settings } = deps;
  const jobs: Received[] = [];
  let receivedAny = false;
  while (jobs.length < wanted) {
    const { Messages = [] } = (await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: settings.queueUrl,
        MaxNumberOfMessages: Math.min(10, wanted - jobs.length),
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        MessageAttributeNames: [...MESSAGE_ATTRIBUTES],
      }),
    )) as { Messages?: Message[] };
    if (Messages.length === 0) break;
    receivedAny = true;
    const toDelete: Message[] = [];
    const toDefer: Message[] = [];
    for (const message of Messages) {
      const parsed = parseIntakeMessage(message.Body, settings);
      if (parsed.kind === 'poison') {
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: settings.deadLetterQueueUrl,
            MessageBody: message.Body ?? '',
            MessageAttributes: {
              reason: { DataType: 'String', StringValue: sqsText(parsed.reason) },
              sourceMessageId: { DataType: 'String', StringValue: message.MessageId ?? 'unknown' },
            },
          }),
        );
        log({ event: 'poison', messageId: message.MessageId, reason: parsed.reason });
        summary.poison++;
        toDelete.push(message);
        continue;
      }
      // A message this gather already holds, delivered again (standard queues may): only its newest receipt
      // handle deletes it; it is the same message, not a duplicate.
      const held = jobs.findIndex((r) => r.message.MessageId === message.MessageId);
      if (held >= 0) {
        jobs[held] = { ...jobs[held], message };
        continue;
      }
      const candidate = receivedJob(parsed.job, message);
      const sameJob = jobs.findIndex((r) => r.job.jobId === parsed.job.jobId);
      if (sameJob >= 0) {
        // Two messages for one job in one gather. A plain copy (a duplicate upload event) or a second copy of the
        // same give-back or redrive is dropped, whichever came first: a message that gives the job back or redrives
        // it is its way to its next round and is what is kept. Two different such messages wait their turns: the
        // newcomer is deferred, and the row decides when it is back.
        const kept = jobs[sameJob];
        if (isPlain(candidate) || !isPlain(kept)) {
          if (isPlain(candidate) || sameRound(candidate, kept)) {
            log({ event: 'duplicate', jobId: parsed.job.jobId, key: parsed.job.key });
            summary.duplicates++;
            toDelete.push(message);
          } else {
            summary.deferred++;
            toDefer.push(message);
          }
          continue;
        }
        log({ event: 'duplicate', jobId: parsed.job.jobId, key: parsed.job.key });
        summary.duplicates++;
        toDelete.push(kept.message);
        jobs[sameJob] = candidate;
        continue;
      }
      jobs.push(candidate);
    }
    await deleteIntakeMessages(sqs, settings.queueUrl, toDelete);
    await deferInBatches(sqs, settings.queueUrl, toDefer.splice(0), HELD_LEASE_RETRY_SECONDS);
    if (Messages.length < Math.min(10, wanted)) break;
  }
  return { jobs, receivedAny };
}

/** A received job with what its message says of it: a redrive's target, the execution that gave it back. */
function receivedJob(job: Job, message: Message): Received {
  const redriveOf = message.MessageAttributes?.[REDRIVE_OF]?.StringValue;
  return { job: redriveOf ? { ...job, redriveOf } : job, message, returnedBy: message.MessageAttributes?.[RETURNED_BY]?.StringValue };
}

/** A message that is only the job (an upload event, or a copy of one), neither a give-back nor a redrive. */
function isPlain(received: Received): boolean {
  return received.returnedBy === undefined && received.job.redriveOf === undefined;
}

/** Two messages that give back or redrive a job for the same reason: one is a copy of the other. */
function sameRound(a: Received, b: Received): boolean {
  return a.returnedBy === b.returnedBy && a.job.redriveOf === b.job.redriveOf;
}

/**
 * Why an admission's row refused. A job with a result is a redelivery: its message goes. A job leased to an execution
 * that exists is in that execution's hands — it runs it, gives it back with a message of its own, or dies and the
 * janitor re-queues it — so another message for it goes too. Two leases keep their message, which waits instead:
 * the lease of the execution that sent it (it is giving the job back: the release follows the send), and the lease of
 * a batch that never started (this message is the job's way back once that batch is given back).
 */
async function refusalOf(deps: Run, row: LedgerRow | undefined, received: Received): Promise<'duplicate' | 'held'> {
  if (!row?.lease) return row ? 'duplicate' : 'held';
  if (received.returnedBy === row.lease.execution) return 'held';
  if (deps.started.has(row.lease.execution)) return 'duplicate';
  return (await executionExists(deps, row.lease.execution)) ? 'duplicate' : 'held';
}

/** Admits the candidates the pool takes as one batch and starts its execution; the messages of the started go. */
async function admitAndStart(
  deps: Run,
  initialPool: PoolState,
  candidates: Received[],
  summary: DispatcherRunSummary,
  log: Log,
): Promise<{ outcome: 'ok'; pool: PoolState } | { outcome: 'start-failed' | 'contention' }> {
  const { sqs, settings } = deps;
  const { pool, batch, lease } = await admit(deps, initialPool, candidates, summary, log);
  if (!lease) {
    if (batch.length === 0) return { outcome: 'ok', pool };
    // Every try was stale or refused: what is left is put back at once, for the next run.
    await deferInBatches(
      sqs,
      settings.queueUrl,
      batch.map((r) => r.message),
      0,
    );
    return { outcome: 'contention' };
  }
  if (!(await startExecution(deps, lease, batch, batchReleaseShards(pool, settings.taskVcpu, batch.length), log))) return { outcome: 'start-failed' };
  deps.started.add(lease.execution);
  await deleteIntakeMessages(
    sqs,
    settings.queueUrl,
    batch.map((r) => r.message),
  );
  const jobs = batch.map((r) => r.job);
  summary.admitted += jobs.length;
  summary.executionsStarted++;
  log({ event: 'admitted', execution: lease.execution, jobs: jobs.length, jobIds: jobs.map((j) => j.jobId) });
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
async function admit(deps: Run, initialPool: PoolState, candidates: Received[], summary: DispatcherRunSummary, log: Log): Promise<Admission> {
  const { ddb, clock, settings } = deps;
  let pool = initialPool;
  let batch = candidates;
  for (let tries = 0; tries < ADMISSION_TRIES && batch.length > 0; tries++) {
    const now = clock.now();
    batch = await fitToPool(deps, pool, batch, now);
    if (batch.length === 0) break;
    const jobs = batch.map((r) => r.job);
    const name = executionNameFor(jobs, pool.batchesAdmitted);
    const result = await admitBatch(ddb, settings, pool, jobs, name, settings.taskVcpu, settings.leaseSeconds * 1000, now);
    if (result.kind === 'admitted') return { pool: result.pool, batch, lease: result.lease };
    if (result.kind === 'stale') {
      pool = await readPool(ddb, settings.tableName);
      continue;
    }
    batch = await settleRefusals(deps, batch, result.refused, summary, log);
  }
  return { pool, batch };
}

/** The candidates the pool has room for now; the others are put back at once, for a later round. */
async function fitToPool(deps: Run, pool: PoolState, batch: Received[], now: number): Promise<Received[]> {
  const plan = planAdmission(pool, now, deps.settings.taskVcpu, batch.length);
  if (plan.count >= batch.length) return batch;
  await deferInBatches(
    deps.sqs,
    deps.settings.queueUrl,
    batch.slice(plan.count).map((r) => r.message),
    0,
  );
  return batch.slice(0, plan.count);
}

/**
 * Settles each job whose ledger row refused the admission, and answers the batch without them. A duplicate's
 * message is deleted; a held job's message is put back while the lease that holds it is given back.
 */
async function settleRefusals(
  deps: Run,
  batch: Received[],
  refusals: ReadonlyArray<{ readonly index: number; readonly row?: LedgerRow }>,
  summary: DispatcherRunSummary,
  log: Log,
): Promise<Received[]> {
  const { sqs, settings } = deps;
  for (const { index, row } of refusals) {
    const received = batch[index];
    if ((await refusalOf(deps, row, received)) === 'duplicate') {
      log({ event: 'duplicate', jobId: received.job.jobId, key: received.job.key, status: row?.status });
      summary.duplicates++;
      await deleteIntakeMessages(sqs, settings.queueUrl, [received.message]);
    } else {
      log({ event: 'leaseStillHeld', jobId: received.job.jobId, batch: row?.lease?.execution });
      summary.deferred++;
      await deferInBatches(sqs, settings.queueUrl, [received.message], HELD_LEASE_RETRY_SECONDS);
    }
  }
  const refused = new Set(refusals.map((r) => r.index));
  return batch.filter((_, i) => !refused.has(i));
}

/**
 * Starts the admitted batch's execution, named as its lease. Answers whether it runs. Names are unique per admission,
 * so ExecutionAlreadyExists means this admission's own execution (an earlier try's answer was lost). An error that
 * says the request was refused (a throttle, a bad request) leaves nothing started: the admission is undone. Any other
 * (a timeout, a 5xx) may have come after Step Functions created the execution: Step Functions is asked; what it does
 * not show yet stays admitted, for the janitor or a later run to settle once its start grace has passed.
 */
async function startExecution(deps: Run, lease: Lease, batch: Received[], releaseShards: readonly string[], log: Log): Promise<boolean> {
  const { settings } = deps;
  const name = lease.execution;
  const input: { jobs: JobInput[] } = {
    jobs: batch.map(({ job }, i) => ({ ...job, vcpu: settings.taskVcpu, releaseShard: releaseShards[i] })),
  };
  try {
    await deps.sfn.send(new StartExecutionCommand({ stateMachineArn: settings.stateMachineArn, name, input: JSON.stringify(input) }));
    return true;
  } catch (error) {
    if ((error as Error).name === 'ExecutionAlreadyExists') return true;
    log({ event: 'startFailed', execution: name, error: (error as Error).name, message: (error as Error).message });
    if (refusedOutright(error)) {
      await undoAdmission(deps, lease, batch, error as Error);
      return false;
    }
    if (await executionExists(deps, name)) return true;
    // Not shown yet, perhaps not created: its messages come back, held (their jobs' lease has no execution) until
    // the next run gives the batch back or finds its execution.
    await deferInBatches(
      deps.sqs,
      settings.queueUrl,
      batch.map((r) => r.message),
      START_FAILURE_RETRY_SECONDS,
    );
    return false;
  }
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

async function executionExists(deps: Run, name: string): Promise<boolean> {
  try {
    await deps.sfn.send(new DescribeExecutionCommand({ executionArn: executionArnOf(deps.settings.stateMachineArn, name) }));
    return true;
  } catch (error) {
    if ((error as Error).name === 'ExecutionDoesNotExist') return false;
    throw error;
  }
}

/**
 * Gives back a batch whose execution did not start: its jobs' leases and its record now; its messages come back
 * soon, and that receive counts toward the DLQ.
 */
async function undoAdmission(deps: Run, lease: Lease, batch: Received[], cause: Error): Promise<void> {
  const { sqs, ddb, clock, settings } = deps;
  for (const { job } of batch) {
    await releaseLease(ddb, settings.tableName, job.jobId, lease, { status: 'queued', reason: `StartExecution failed: ${cause.name}` }, clock);
  }
  await deleteBatchRecord(ddb, settings.batchesTableName, lease.execution);
  await deferInBatches(
    sqs,
    settings.queueUrl,
    batch.map((r) => r.message),
    START_FAILURE_RETRY_SECONDS,
  );
}

/** Deletes intake messages; one SQS would not delete fails the run. */
async function deleteIntakeMessages(sqs: AwsClient, queueUrl: string, messages: readonly Message[]): Promise<void> {
  const failed = await deleteInBatches(sqs, queueUrl, messages);
  if (failed.length > 0) throw new Error(`could not delete ${failed.length} intake message(s): ${JSON.stringify(failed)}`);
}

let clients: { sqs: SQSClient; sfn: SFNClient; ddb: DynamoDBDocumentClient } | undefined;

/** Lambda entry: woken by uploads, lease releases (the event says when), the janitor and a schedule. */
export async function handler(event: unknown): Promise<DispatcherRunSummary> {
  clients ??= { sqs: new SQSClient({}), sfn: new SFNClient({}), ddb: DynamoDBDocumentClient.from(new DynamoDBClient({})) };
  return runDispatcher({ ...clients, clock: systemClock, settings: dispatcherSettingsFromEnv(), log: jsonLog('dispatcher'), wake: wakeOf(event) });
}
