/**
 * The ledger: one row per job (`JOB#<jobId>`) saying queued, running, succeeded or failed, with its rounds, the
 * execution, the error and timestamps. While a job holds vCPU, its lease lives on its row (`lease`), so taking the
 * lease, recording the result and giving the lease back are each one write of the row, in one transaction with the
 * limiter's counters. The admission's condition on the row (no lease, and new or queued) is also what makes a
 * redelivered event start nothing.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { batchGetItems } from './batch-get';
import { INTAKE_RETENTION_SECONDS, REDRIVE_OF, RETURNED_BY, type Job, type RequeueMessage } from './jobs';
import { cancellationOf, conditionFailedAt } from './dynamo-errors';
import { POOL_KEY, releasedShardUpdate, requestToken, retryingConflicts, tryUpdate, type Lease } from './limiter';
import type { ObjectOutcome } from './packing';
import type { Clock, AwsClient } from './runtime';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

/** Rows outlive Step Functions' 90-day execution-name window, so late duplicates are still recognised. */
const LEDGER_RETENTION_DAYS = 120;
/** DynamoDB TTL attribute (epoch seconds) of ledger rows. */
export const TTL_ATTRIBUTE = 'ttl';

export const LEDGER_KEY_PREFIX = 'JOB#';

/**
 * The state table's index of failed jobs, by the UTC day they failed: sparse — only a failed row carries
 * `failedDay`, so `sluice failures` reads failures alone, never the table. Each failure writes one index item and
 * its redrive deletes it (1 write unit each, the projection is under 1 KB); successes cost the index nothing. A day is
 * one partition key: failures come at most at the launch rate (< 20/s), far under a partition's 1,000 writes/s.
 */
export const FAILED_INDEX = {
  name: 'failed-by-day',
  hashKey: 'failedDay',
  rangeKey: 'finishedAt',
  /** What `sluice failures` lists without reading the rows (the cause can be kilobytes: read per example instead). */
  projected: ['jobId', 'bucket', 'objectKey', 'error'],
} as const;

/** The UTC day of an ISO time, the failed index's partition key. */
export function failedDayOf(isoTime: string): string {
  return isoTime.slice(0, 10);
}

export function ledgerKey(jobId: string) {
  return { pk: `${LEDGER_KEY_PREFIX}${jobId}` };
}

function ttlFrom(now: number): number {
  return Math.floor(now / 1000) + LEDGER_RETENTION_DAYS * 86400;
}

export interface LedgerRow {
  readonly jobId: string;
  readonly status: JobStatus;
  readonly bucket: string;
  readonly objectKey: string;
  readonly versionId: string;
  readonly sequencer: string;
  /** Admissions so far (the job's rounds). */
  readonly admissions: number;
  readonly failedRuns: number;
  readonly capacityReturns?: number;
  readonly executionName?: string;
  readonly executionArn?: string;
  readonly lease?: Lease;
  readonly error?: string;
  readonly cause?: string;
  readonly lastError?: string;
  readonly updatedAt?: string;
  /** When its latest round was admitted (its execution named above). */
  readonly startedAt?: string;
  /** The task that succeeded (the state machine records it with the result). */
  readonly taskArn?: string;
  readonly finishedAt?: string;
  /** A redrive's mark: the failure it redrove (finishedAt then) and when its message was sent. */
  readonly redriveOf?: string;
  readonly redrivenAt?: string;
  /** A redrive's mark on a queued job: the row's updatedAt it found, and when it sent the job's next round again. */
  readonly resentFor?: string;
  readonly resentAt?: string;
}

/**
 * The row's part of an admission: takes the lease and marks the job running. Holds only if no lease is held and the
 * job is new or queued — a job running, succeeded or failed is a redelivery, and the whole admission is cancelled
 * with this item named (and its row returned, so the dispatcher knows why). The row counts the job's admissions and
 * failed runs; a message's own counts (an old one's may be lower) are never written back.
 */
export function ledgerAdmissionUpdate(tableName: string, job: Job, { lease, executionArn, now }: { lease: Lease; executionArn: string; now: number }) {
  const at = new Date(now).toISOString();
  // A redrive's message also takes the one failure it redrives, and gives the job a fresh set of executions.
  const redrive = job.redriveOf !== undefined;
  return {
    TableName: tableName,
    Key: ledgerKey(job.jobId),
    UpdateExpression:
      'SET #status = :running, #lease = :lease, jobId = :jobId, #bucket = :bucket, objectKey = :key, versionId = :versionId, sequencer = :sequencer, ' +
      `admissions = if_not_exists(admissions, :zero) + :one, failedRuns = ${redrive ? ':zero' : 'if_not_exists(failedRuns, :zero)'}, ` +
      'executionName = :batch, executionArn = :arn, startedAt = :at, updatedAt = :at, ' +
      `firstSeenAt = if_not_exists(firstSeenAt, :at), #ttl = :ttl REMOVE ${FAILED_INDEX.hashKey}`,
    ConditionExpression:
      'attribute_not_exists(#lease) AND (attribute_not_exists(pk) OR #status = :queued' +
      (redrive ? ' OR (#status = :failed AND finishedAt = :redriveOf))' : ')'),
    ExpressionAttributeNames: { '#status': 'status', '#lease': 'lease', '#bucket': 'bucket', '#ttl': TTL_ATTRIBUTE },
    ExpressionAttributeValues: {
      ':running': 'running',
      ':queued': 'queued',
      ':lease': lease,
      ':jobId': job.jobId,
      ':bucket': job.bucket,
      ':key': job.key,
      ':versionId': job.versionId,
      ':sequencer': job.sequencer,
      ':zero': 0,
      ':one': 1,
      ':batch': lease.execution,
      ':arn': executionArn,
      ':at': at,
      ':ttl': ttlFrom(now),
      ...(redrive ? { ':failed': 'failed', ':redriveOf': job.redriveOf } : {}),
    },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
  };
}

/** What a lease release does to the row besides removing the lease. */
export type ReleaseOutcome =
  /**
   * Back to the queue; `failedRuns`, when given, is the row's new count (an execution died under it); `capacityReturn`:
   * given back for lack of capacity, counted apart (not a failure).
   */
  | { readonly status: 'queued'; readonly reason: string; readonly failedRuns?: number; readonly capacityReturn?: boolean }
  | { readonly status: 'failed'; readonly error: string; readonly cause: string }
  /** Its result is there; `taskArn`: the task that made it, when known. */
  | { readonly status: 'succeeded'; readonly taskArn?: string }
  /** The row keeps what it says (a result the state machine recorded without its lease, say). */
  | { readonly status: 'unchanged' };

/** The error of an object the worker refused as bad input. */
export const OBJECT_BAD_INPUT = 'Sluice.BadInput';

/**
 * The result an object's recorded end gives it, whatever became of its task afterwards: an object the worker finished
 * is done, one it refused as bad input has failed. Undefined when the worker recorded nothing for it.
 */
export function recordedResultOf(recorded: ObjectOutcome | undefined, taskArn?: string): RecordedResult | undefined {
  if (recorded?.status === 'succeeded') return { status: 'succeeded', ...(taskArn ? { taskArn } : {}) };
  if (recorded?.status === 'failed') return { status: 'failed', error: OBJECT_BAD_INPUT, cause: recorded.reason ?? 'refused as bad input by the worker' };
  return undefined;
}

type RecordedResult = Extract<ReleaseOutcome, { status: 'succeeded' | 'failed' }>;

/** A job's lease to give back, and what its row becomes. */
export interface LeaseRelease {
  readonly jobId: string;
  readonly lease: Lease;
  readonly outcome: ReleaseOutcome;
  /**
   * With a lease that holds vCPU, what the release also records (ISO times, as the state machine writes them): Fargate
   * had no capacity in the task's class (placement avoids it a while), or the account's vCPU quota was met (a hold on
   * admissions until the capacity reader measures again).
   */
  readonly classShortAt?: string;
  readonly holdAt?: string;
}

/**
 * Gives a job's lease back — only if it still belongs to `batch` — in one transaction with the released counter.
 * False if it did not (already released, or a later batch holds the job now): nothing changed then.
 */
export async function releaseLease(ddb: AwsClient, tableName: string, release: LeaseRelease, clock: Clock): Promise<boolean> {
  return retryingConflicts(
    (ms) => clock.sleep(ms),
    () => releaseLeaseOnce(ddb, tableName, release, clock.now()),
  );
}

async function releaseLeaseOnce(ddb: AwsClient, tableName: string, release: LeaseRelease, now: number): Promise<boolean> {
  const { jobId, lease, outcome } = release;
  const at = new Date(now).toISOString();
  const row = rowReleaseUpdate(outcome, at);
  const holdsVcpu = lease.vcpu > 0;
  try {
    await ddb.send(
      new TransactWriteCommand({
        ClientRequestToken: requestToken('release', jobId, lease.execution, outcome.status),
        TransactItems: [
          {
            Update: {
              TableName: tableName,
              Key: ledgerKey(jobId),
              UpdateExpression: `SET ${row.sets.join(', ')} REMOVE #lease`,
              ConditionExpression: '#lease.execution = :batch',
              ExpressionAttributeNames: { '#lease': 'lease', ...row.names },
              ExpressionAttributeValues: { ':batch': lease.execution, ':at': at, ...row.values },
            },
          },
          // A lease of no vCPU (a packed task's objects but its lead) moves no counter.
          ...(holdsVcpu ? [{ Update: releasedShardUpdate(tableName, jobId, lease, release.classShortAt) }] : []),
          ...(holdsVcpu && release.holdAt !== undefined
            ? [
                {
                  Update: {
                    TableName: tableName,
                    Key: POOL_KEY,
                    UpdateExpression: 'SET capacityLimitAt = :at',
                    ExpressionAttributeValues: { ':at': release.holdAt },
                  },
                },
              ]
            : []),
        ],
      }),
    );
    return true;
  } catch (error) {
    const cancelled = cancellationOf(error);
    if (cancelled && conditionFailedAt(cancelled, 0)) return false;
    throw error;
  }
}

/** The row's part of a release, besides removing the lease: its status and what goes with it. */
function rowReleaseUpdate(outcome: ReleaseOutcome, at: string): { sets: string[]; names: Record<string, string>; values: Record<string, unknown> } {
  const sets = ['updatedAt = :at'];
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  if (outcome.status !== 'unchanged') {
    sets.push('#status = :status');
    names['#status'] = 'status';
    values[':status'] = outcome.status;
  }
  if (outcome.status === 'queued') {
    sets.push('lastError = :reason');
    values[':reason'] = outcome.reason;
    if (outcome.failedRuns !== undefined) {
      sets.push('failedRuns = :failedRuns');
      values[':failedRuns'] = outcome.failedRuns;
    }
    if (outcome.capacityReturn) {
      sets.push('capacityReturns = if_not_exists(capacityReturns, :zero) + :one');
      Object.assign(values, { ':zero': 0, ':one': 1 });
    }
  } else if (outcome.status === 'failed') {
    sets.push('#error = :error', '#cause = :cause', 'finishedAt = :at', `${FAILED_INDEX.hashKey} = :day`);
    Object.assign(names, { '#error': 'error', '#cause': 'cause' });
    Object.assign(values, { ':day': failedDayOf(at), ':error': outcome.error, ':cause': outcome.cause });
  } else if (outcome.status === 'succeeded') {
    sets.push('finishedAt = :at', ...(outcome.taskArn !== undefined ? ['taskArn = :taskArn'] : []));
    if (outcome.taskArn !== undefined) values[':taskArn'] = outcome.taskArn;
  }
  return { sets, names, values };
}

/** The requeue message for a job's next round, as the dispatcher parses it. */
export function requeueMessageFor(
  row: Pick<LedgerRow, 'jobId' | 'bucket' | 'objectKey' | 'versionId' | 'sequencer' | 'admissions' | 'failedRuns'>,
  failedRuns: number,
): RequeueMessage {
  return {
    sluice: 'requeue',
    jobId: row.jobId,
    bucket: row.bucket,
    key: row.objectKey,
    versionId: row.versionId,
    sequencer: row.sequencer,
    round: Math.max(1, row.admissions),
    failedRuns,
  };
}

/**
 * Sends a job's next round. `returnedBy` names the execution whose lease on the job it replaces (the sender releases
 * that lease after the send): a dispatcher that meets the message before the release waits for it instead of taking
 * the message for a duplicate. `redriveOf` names the failure an operator's redrive redrives.
 */
export async function sendRequeue(
  sqs: AwsClient,
  queueUrl: string,
  message: RequeueMessage,
  attributes: { readonly returnedBy?: string; readonly redriveOf?: string; readonly delaySeconds?: number } = {},
): Promise<void> {
  const named = Object.entries({ [RETURNED_BY]: attributes.returnedBy, [REDRIVE_OF]: attributes.redriveOf }).filter(([, v]) => v !== undefined);
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: JSON.stringify(message),
      ...(attributes.delaySeconds ? { DelaySeconds: attributes.delaySeconds } : {}),
      ...(named.length > 0 ? { MessageAttributes: Object.fromEntries(named.map(([k, v]) => [k, { DataType: 'String', StringValue: v! }])) } : {}),
    }),
  );
}

export async function readLedgerRow(ddb: AwsClient, table: string, jobId: string): Promise<LedgerRow | undefined> {
  const { Item } = await ddb.send(new GetCommand({ TableName: table, Key: ledgerKey(jobId), ConsistentRead: true }));
  return Item as LedgerRow | undefined;
}

/** Many rows at once, strongly consistent, in BatchGetItem's pages of 100 (retrying what DynamoDB left unprocessed). */
export async function readLedgerRows(
  ddb: AwsClient,
  table: string,
  jobIds: readonly string[],
  sleep?: (ms: number) => Promise<void>,
): Promise<Map<string, LedgerRow>> {
  const items = await batchGetItems(ddb, { table, keys: [...new Set(jobIds)].map(ledgerKey), read: { ConsistentRead: true }, sleep });
  return new Map((items as unknown as LedgerRow[]).map((row) => [row.jobId, row]));
}

/**
 * The ledger writes the state machine makes itself, kept here beside the others so the row's shape is defined once:
 * the result and the lease's removal in one update, conditioned on the lease still being this execution's.
 */
export const LEDGER_RESULT_EXPRESSIONS = {
  succeeded: `SET #status = :status, taskArn = :taskArn, finishedAt = :at, updatedAt = :at REMOVE #error, #cause, ${FAILED_INDEX.hashKey}, #lease`,
  /** `:day` is failedDayOf(:at): the failed index's key. */
  failed: `SET #status = :status, #error = :error, #cause = :cause, finishedAt = :at, updatedAt = :at, ${FAILED_INDEX.hashKey} = :day REMOVE #lease`,
  /** Back to the queue for lack of capacity: not a failure, counted apart. */
  returned: 'SET #status = :status, lastError = :reason, updatedAt = :at, capacityReturns = if_not_exists(capacityReturns, :zero) + :one REMOVE #lease',
  heldByThisExecution: '#lease.execution = :batch',
  /** The result without the lease (it could not be released): recorded unless another execution holds the job now. */
  succeededOnly: `SET #status = :status, taskArn = :taskArn, finishedAt = :at, updatedAt = :at REMOVE #error, #cause, ${FAILED_INDEX.hashKey}`,
  failedOnly: `SET #status = :status, #error = :error, #cause = :cause, finishedAt = :at, updatedAt = :at, ${FAILED_INDEX.hashKey} = :day`,
  noOtherLease: 'attribute_not_exists(#lease) OR #lease.execution = :batch',
  names: { '#status': 'status', '#error': 'error', '#cause': 'cause', '#lease': 'lease' },
} as const;

export type RedriveResult = { readonly sent: true } | { readonly sent: false; readonly reason: string };

/**
 * Puts a job back by hand: a failed job after its cause was fixed, or a queued job whose message was lost (expired
 * after 14 days in a paused stage, say). The job's next round is sent first, then the row is marked, so no crash
 * leaves it without a message; a redrive that finds its mark (and nothing changed on the row since) sends nothing
 * again. A failed job stays failed — and listed — until its message is admitted: only a message that redrives that
 * failure admits it (REDRIVE_OF), so a redrive's message never runs a job that failed again since.
 */
export async function redriveJob(
  deps: { ddb: AwsClient; sqs: AwsClient },
  target: { tableName: string; queueUrl: string },
  row: LedgerRow,
  now: number,
): Promise<RedriveResult> {
  const at = new Date(now).toISOString();
  const recent = (sentAt: string | undefined) => sentAt !== undefined && now - Date.parse(sentAt) < INTAKE_RETENTION_SECONDS * 1000;
  if (row.status === 'failed' && row.finishedAt) {
    if (row.redriveOf === row.finishedAt && recent(row.redrivenAt))
      return { sent: false, reason: `already sent back at ${row.redrivenAt}: its message waits in the intake queue` };
    await sendRequeue(deps.sqs, target.queueUrl, requeueMessageFor(row, 0), { redriveOf: row.finishedAt });
    await tryUpdate(deps.ddb, {
      TableName: target.tableName,
      Key: ledgerKey(row.jobId),
      UpdateExpression: 'SET redriveOf = :failure, redrivenAt = :at',
      ConditionExpression: '#status = :failed AND finishedAt = :failure AND attribute_not_exists(#lease)',
      ExpressionAttributeNames: { '#status': 'status', '#lease': 'lease' },
      ExpressionAttributeValues: { ':failed': 'failed', ':failure': row.finishedAt, ':at': at },
    });
    return { sent: true };
  }
  if (row.status === 'queued' && !row.lease) {
    if (row.resentFor === row.updatedAt && recent(row.resentAt))
      return { sent: false, reason: `already sent back at ${row.resentAt}, and nothing happened to it since: its message waits in the intake queue` };
    await sendRequeue(deps.sqs, target.queueUrl, requeueMessageFor(row, row.failedRuns ?? 0));
    await tryUpdate(deps.ddb, {
      TableName: target.tableName,
      Key: ledgerKey(row.jobId),
      UpdateExpression: 'SET resentFor = updatedAt, resentAt = :at',
      ConditionExpression: '#status = :queued AND updatedAt = :seen AND attribute_not_exists(#lease)',
      ExpressionAttributeNames: { '#status': 'status', '#lease': 'lease' },
      ExpressionAttributeValues: { ':queued': 'queued', ':seen': row.updatedAt ?? '', ':at': at },
    });
    return { sent: true };
  }
  return { sent: false, reason: `${row.status}${row.lease ? ', its lease held' : ''}: nothing to redrive` };
}
