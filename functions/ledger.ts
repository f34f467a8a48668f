/**
 * The ledger: one row per job (`JOB#<jobId>`) saying queued, running, succeeded or failed, with the
 * attempts, the execution, the error and timestamps. The first sight of a job is conditional, so a
 * redelivered event finds its row and starts nothing.
 */
import { GetCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import type { Job } from './jobs';
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
          'SET #status = :queued, jobId = :jobId, bucket = :bucket, objectKey = :key, versionId = :versionId, sequencer = :sequencer, ' +
          'attempts = if_not_exists(attempts, :zero), firstSeenAt = if_not_exists(firstSeenAt, :at), updatedAt = :at, #ttl = :ttl',
        ConditionExpression: 'attribute_not_exists(pk) OR #status = :queued',
        ExpressionAttributeNames: { '#status': 'status', '#ttl': TTL_ATTRIBUTE },
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

/** Puts a job whose execution ended without a result back to queued (the janitor then re-enqueues it). */
export function markRequeuedCommand(table: string, jobId: string, reason: string, now: number): UpdateCommandInput {
  const at = new Date(now).toISOString();
  return {
    TableName: table,
    Key: ledgerKey(jobId),
    UpdateExpression: 'SET #status = :queued, lastError = :reason, updatedAt = :at',
    ConditionExpression: '#status = :running',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':queued': 'queued', ':running': 'running', ':reason': reason, ':at': at },
  };
}

export function markFailedCommand(table: string, jobId: string, error: string, cause: string, now: number): UpdateCommandInput {
  const at = new Date(now).toISOString();
  return {
    TableName: table,
    Key: ledgerKey(jobId),
    UpdateExpression: 'SET #status = :failed, #error = :error, #cause = :cause, finishedAt = :at, updatedAt = :at',
    ExpressionAttributeNames: { '#status': 'status', '#error': 'error', '#cause': 'cause' },
    ExpressionAttributeValues: { ':failed': 'failed', ':error': error, ':cause': cause, ':at': at },
  };
}

export async function readLedgerRow(ddb: DocumentClient, table: string, jobId: string): Promise<LedgerRow | undefined> {
  const { Item } = await ddb.send(new GetCommand({ TableName: table, Key: ledgerKey(jobId), ConsistentRead: true }));
  return Item as LedgerRow | undefined;
}

/**
 * The ledger writes the state machine makes itself (Step Functions' DynamoDB integration), kept here
 * beside the others so the row's shape is defined once.
 */
export const LEDGER_RESULT_EXPRESSIONS = {
  succeeded: 'SET #status = :status, taskArn = :taskArn, finishedAt = :at, updatedAt = :at REMOVE #error, #cause',
  failed: 'SET #status = :status, #error = :error, #cause = :cause, finishedAt = :at, updatedAt = :at',
  names: { succeeded: { '#status': 'status', '#error': 'error', '#cause': 'cause' }, failed: { '#status': 'status', '#error': 'error', '#cause': 'cause' } },
} as const;

