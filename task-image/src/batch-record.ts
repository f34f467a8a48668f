/**
 * A packed task's list and its objects' ends, as they stand on the batch record (the stage's batches table, one item
 * per admitted batch). This is the worker's copy of that wire format: the image holds only task-image/src/. The control
 * plane's is functions/packing.ts and functions/batches.ts; __tests__/task-image/batch-record.test.ts keeps them in step.
 */
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** The record's key: the batch's execution name. */
export const BATCH_KEY_ATTRIBUTE = 'execution';
/** Every object of the batch, each with the index of the task that runs it. */
export const JOBS_ATTRIBUTE = 'jobs';
/** Each object's end as its worker recorded it, by job id; {} at admission. */
export const OUTCOMES_ATTRIBUTE = 'outcomes';

/** 'succeeded': processed, found already done, or superseded by a newer upload; 'failed': bad input (final). */
export const OBJECT_OUTCOME_STATUSES = ['succeeded', 'failed'] as const;

export interface ObjectOutcome {
  readonly status: (typeof OBJECT_OUTCOME_STATUSES)[number];
  /** Why it failed (bad input). */
  readonly reason?: string;
  readonly at: string;
}

/** One entry of the record's `jobs` as the worker reads it (the control plane's BatchRecordJob carries more). */
export interface BatchRecordObject {
  readonly jobId: string;
  readonly task?: number;
  readonly bucket?: string;
  readonly key?: string;
  /** Empty or absent: the bucket is not versioned; read the current version. */
  readonly versionId?: string;
}

/** An object of this task, checked: what the worker needs to process it. */
export interface TaskObject {
  readonly jobId: string;
  readonly bucket: string;
  readonly key: string;
  readonly versionId: string | undefined;
}

export interface TaskList {
  /** In the record's order. */
  readonly objects: readonly TaskObject[];
  readonly outcomes: Readonly<Record<string, ObjectOutcome>>;
}

/** Why the record gives this task no list: never the objects' fault, so a retry (or the janitor) settles it. */
export interface UnusableRecord {
  readonly unusable: string;
}

/**
 * A stored reason stays this short, in UTF-8 bytes (DynamoDB sizes items in bytes): a record holds up to 98 objects'
 * outcomes within its 400 KB item.
 */
export const MAX_OUTCOME_REASON_BYTES = 1_000;

/** `text` cut to `max` UTF-8 bytes, an ellipsis (3 bytes) ending what was cut; never a character split. */
function cutToBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let kept = '';
  for (const character of text) {
    if (Buffer.byteLength(kept + character) > max - 3) break;
    kept += character;
  }
  return `${kept}…`;
}

const isText = (value: unknown): value is string => typeof value === 'string' && value !== '';
const isMap = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The objects of task `taskIndex` and the outcomes recorded so far, or why the record cannot say. */
export function taskListOf(item: Record<string, unknown> | undefined, taskIndex: number): TaskList | UnusableRecord {
  if (!item) return { unusable: 'the batch record does not exist (settled, or never admitted)' };
  const jobs = item[JOBS_ATTRIBUTE];
  const outcomes = item[OUTCOMES_ATTRIBUTE] ?? {};
  if (!Array.isArray(jobs)) return { unusable: `the batch record has no "${JOBS_ATTRIBUTE}" list` };
  if (!isMap(outcomes)) return { unusable: `the batch record's "${OUTCOMES_ATTRIBUTE}" is not a map` };
  // Read through BatchRecordObject's names, which the agreement test holds to the control plane's.
  const entries = (jobs as unknown[]).filter(isMap) as Array<{ [Field in keyof BatchRecordObject]?: unknown }>;
  const mine = entries.filter((entry) => entry.task === taskIndex);
  if (mine.length === 0) return { unusable: `the batch record lists no objects for task ${taskIndex}` };
  const objects: TaskObject[] = [];
  for (const entry of mine) {
    const { jobId, bucket, key, versionId } = entry;
    if (!isText(jobId) || !isText(bucket) || !isText(key) || (versionId !== undefined && typeof versionId !== 'string')) {
      return { unusable: `the batch record's entry for task ${taskIndex} is malformed: ${JSON.stringify(entry)}` };
    }
    objects.push({ jobId, bucket, key, versionId: versionId || undefined });
  }
  return { objects, outcomes: outcomes as Record<string, ObjectOutcome> };
}

/** The record as it stands (a consistent read: outcomes this task recorded on an earlier attempt count). */
export async function readTaskList(
  ddb: DynamoDBDocumentClient,
  where: { tableName: string; batch: string; taskIndex: number },
  signal: AbortSignal,
): Promise<TaskList | UnusableRecord> {
  const { Item } = await ddb.send(new GetCommand({ TableName: where.tableName, Key: { [BATCH_KEY_ATTRIBUTE]: where.batch }, ConsistentRead: true }), {
    abortSignal: signal,
  });
  return taskListOf(Item, where.taskIndex);
}

/** An object's end, stamped now; a long reason is cut. */
export function objectOutcome(status: ObjectOutcome['status'], reason?: string, now = new Date()): ObjectOutcome {
  if (reason === undefined) return { status, at: now.toISOString() };
  return { status, reason: cutToBytes(reason, MAX_OUTCOME_REASON_BYTES), at: now.toISOString() };
}

/**
 * Records one object's end. Refused (ConditionalCheckFailedException) once the record is gone: the batch was settled
 * without this task, and what it did is no longer the record's to say.
 */
export function outcomeUpdate(tableName: string, batch: string, jobId: string, outcome: ObjectOutcome) {
  return {
    TableName: tableName,
    Key: { [BATCH_KEY_ATTRIBUTE]: batch },
    UpdateExpression: `SET ${OUTCOMES_ATTRIBUTE}.#job = :outcome`,
    ConditionExpression: `attribute_exists(${BATCH_KEY_ATTRIBUTE})`,
    ExpressionAttributeNames: { '#job': jobId },
    ExpressionAttributeValues: { ':outcome': outcome },
  };
}

export async function recordOutcome(ddb: DynamoDBDocumentClient, where: { tableName: string; batch: string }, jobId: string, outcome: ObjectOutcome) {
  // Not aborted by a stop: the object's work is done, and this small write lands well inside the forced exit's second.
  await ddb.send(new UpdateCommand(outcomeUpdate(where.tableName, where.batch, jobId, outcome)));
}

export function isOutcomeRefused(error: unknown): boolean {
  return (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}
