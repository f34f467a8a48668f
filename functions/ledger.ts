/**
 * The ledger: one row per job (`JOB#<jobId>`) saying queued, running, succeeded or failed, with the
 * attempts, the execution, the error and timestamps. The first sight of a job is conditional, so a
 * redelivered event finds its row and starts nothing.
 */
import { GetCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Job, RequeueMessage } from './jobs';
import { isConditionFailure, type DocumentClient } from './pool';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

/** Rows outlive Step Functions' 90-day execution-name window, so late duplicates are still recognised. */
export const LEDGER_RETENTION_DAYS = 120;
/** DynamoDB TTL attribute (epoch seconds) of ledger rows. */
export const TTL_ATTRIBUTE = 'ttl';

export function ledgerKey(jobId: string) {
  return { pk: `JOB#${jobId}` };
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
  readonly attempts: number;
  readonly executionName?: string;
  readonly error?: string;
  readonly cause?: string;
}

/** Creates the row as queued, or refreshes it while still queued; fails (false) for a job already started. */
export async function recordFirstSight(ddb: DocumentClient, table: string, job: Job, now: number): Promise<boolean> {
  const at = new Date(now).toISOString();
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: table,
        Key: ledgerKey(job.jobId),
        UpdateExpression:
          'SET #status = :queued, jobId = :jobId, #bucket = :bucket, objectKey = :key, versionId = :versionId, sequencer = :sequencer, ' +
          'attempts = if_not_exists(attempts, :zero), firstSeenAt = if_not_exists(firstSeenAt, :at), updatedAt = :at, #ttl = :ttl',
        ConditionExpression: 'attribute_not_exists(pk) OR #status = :queued',
        ExpressionAttributeNames: { '#status': 'status', '#bucket': 'bucket', '#ttl': TTL_ATTRIBUTE },
        ExpressionAttributeValues: {
          ':queued': 'queued',
          ':jobId': job.jobId,
          ':bucket': job.bucket,
          ':key': job.key,
          ':versionId': job.versionId,
          ':sequencer': job.sequencer,
          ':zero': 0,
          ':at': at,
          ':ttl': ttlFrom(now),
        },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

export function markRunningCommand(table: string, job: Job, executionName: string, executionArn: string, now: number): UpdateCommandInput {
  const at = new Date(now).toISOString();
  return {
    TableName: table,
    Key: ledgerKey(job.jobId),
    UpdateExpression: 'SET #status = :running, attempts = :attempts, executionName = :name, executionArn = :arn, startedAt = :at, updatedAt = :at',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':running': 'running', ':attempts': job.attempt + 1, ':name': executionName, ':arn': executionArn, ':at': at },
  };
}

/**
 * Puts a job back: its row goes from `from` (running: its execution ended without a result; failed: an
 * operator redrives it) to queued, then a re-queue message for its next attempt goes to the intake
 * queue. False if the row was not in `from` (someone settled it meanwhile); nothing is sent then.
 */
export async function requeueJob(
  deps: { ddb: DocumentClient; sqs: { send(command: unknown): Promise<unknown> } },
  target: { tableName: string; queueUrl: string },
  row: LedgerRow,
  from: 'running' | 'failed',
  reason: string,
  now: number,
): Promise<boolean> {
  try {
    await deps.ddb.send(
      new UpdateCommand({
        TableName: target.tableName,
        Key: ledgerKey(row.jobId),
        UpdateExpression: 'SET #status = :queued, lastError = :reason, updatedAt = :at',
        ConditionExpression: '#status = :from',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':queued': 'queued', ':from': from, ':reason': reason, ':at': new Date(now).toISOString() },
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
  const message: RequeueMessage = {
    sluice: 'requeue',
    jobId: row.jobId,
    bucket: row.bucket,
    key: row.objectKey,
    versionId: row.versionId,
    sequencer: row.sequencer,
    attempt: Math.max(1, row.attempts),
  };
  await deps.sqs.send(new SendMessageCommand({ QueueUrl: target.queueUrl, MessageBody: JSON.stringify(message) }));
  return true;
}

/**
 * The ledger writes the state machine makes itself (Step Functions' DynamoDB integration), kept here
 * beside the others so the row's shape is defined once.
 */
export const LEDGER_RESULT_EXPRESSIONS = {
  succeeded: 'SET #status = :status, taskArn = :taskArn, finishedAt = :at, updatedAt = :at REMOVE #error, #cause',
  failed: 'SET #status = :status, #error = :error, #cause = :cause, finishedAt = :at, updatedAt = :at',
  names: { '#status': 'status', '#error': 'error', '#cause': 'cause' },
} as const;

export function markFailedCommand(table: string, jobId: string, error: string, cause: string, now: number): UpdateCommandInput {
  const at = new Date(now).toISOString();
  return {
    TableName: table,
    Key: ledgerKey(jobId),
    UpdateExpression: LEDGER_RESULT_EXPRESSIONS.failed,
    ExpressionAttributeNames: LEDGER_RESULT_EXPRESSIONS.names,
    ExpressionAttributeValues: { ':status': 'failed', ':error': error, ':cause': cause, ':at': at },
  };
}

export async function readLedgerRow(ddb: DocumentClient, table: string, jobId: string): Promise<LedgerRow | undefined> {
  const { Item } = await ddb.send(new GetCommand({ TableName: table, Key: ledgerKey(jobId), ConsistentRead: true }));
  return Item as LedgerRow | undefined;
}

export interface RedriveOutcome {
  readonly redriven: string[];
  /** Jobs left as they are, with the status that kept them (only failed jobs are redriven). */
  readonly skipped: Array<{ jobId: string; status: JobStatus | 'unknown' }>;
}

/** Puts failed jobs back on the intake queue as their next attempt, after their cause was fixed. */
export async function redriveFailedJobs(
  deps: { ddb: DocumentClient; sqs: { send(command: unknown): Promise<unknown> } },
  target: { tableName: string; queueUrl: string },
  jobIds: readonly string[],
  now: number,
): Promise<RedriveOutcome> {
  const outcome: RedriveOutcome = { redriven: [], skipped: [] };
  for (const jobId of jobIds) {
    const row = await readLedgerRow(deps.ddb, target.tableName, jobId);
    if (row?.status === 'failed' && (await requeueJob(deps, target, row, 'failed', `redriven after: ${row.error ?? 'failure'}`, now))) {
      outcome.redriven.push(jobId);
    } else {
      outcome.skipped.push({ jobId, status: row?.status ?? 'unknown' });
    }
  }
  return outcome;
}
