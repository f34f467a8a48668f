/**
 * Batch records: one item per admitted batch (= one execution) in the stage's batches table, written in the same
 * transaction as its leases and deleted once the janitor has settled it. They make the leases that may still be
 * held enumerable without scanning the ledger: a Scan of this table reads only batches not yet settled.
 */
import { DeleteCommand, GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './dynamo-errors';
import type { CapacityClass } from './capacity-codes';
import { OUTCOMES_ATTRIBUTE, type ObjectOutcome } from './packing';
import type { AwsClient } from './runtime';

export interface BatchRecord {
  /** The batch's execution name (its key). */
  readonly execution: string;
  /** Each job's vCPU and, once batches are placed, the capacity class its task runs in; its route when the stage has routes. */
  readonly jobs: ReadonlyArray<BatchRecordJob>;
  readonly admittedAt: number;
  readonly expiresAt: number;
  /** A packed batch's objects' ends as its workers recorded them, by job id (functions/packing.ts); {} at admission. */
  readonly outcomes?: Readonly<Record<string, ObjectOutcome>>;
}

export interface BatchRecordJob {
  readonly jobId: string;
  /** Its lease's vCPU: a packed task's lead carries the task's, the others 0. */
  readonly vcpu: number;
  readonly capacityProvider?: CapacityClass;
  readonly route?: string;
  /** On a stage that packs: the index of the task that runs it, and its object (the task's list). */
  readonly task?: number;
  readonly bucket?: string;
  readonly key?: string;
  readonly versionId?: string;
}

/** A packed task's objects (the record's jobs of its task index, in order), each with whether its end is recorded. */
export function objectsOfTask(record: BatchRecord | undefined, task: number): Array<BatchRecordJob & { readonly recorded: boolean }> {
  return (record?.jobs ?? []).filter((j) => j.task === task).map((j) => ({ ...j, recorded: record?.outcomes?.[j.jobId] !== undefined }));
}

/** The batch record's part of an admission: a new item (a name reused means the same batch admitted twice). */
export function batchRecordPut(tableName: string, record: BatchRecord) {
  return { TableName: tableName, Item: record, ConditionExpression: 'attribute_not_exists(execution)' };
}

export async function readBatchRecord(ddb: AwsClient, tableName: string, batch: string): Promise<BatchRecord | undefined> {
  const { Item } = await ddb.send(new GetCommand({ TableName: tableName, Key: { execution: batch }, ConsistentRead: true }));
  return Item as BatchRecord | undefined;
}

/** Every batch not yet settled, page by page (the table holds only those). */
export async function scanBatchRecords(ddb: AwsClient, tableName: string): Promise<BatchRecord[]> {
  const records: BatchRecord[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const { Items = [], LastEvaluatedKey } = await ddb.send(new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: start }));
    records.push(...(Items as BatchRecord[]));
    start = LastEvaluatedKey;
  } while (start);
  return records;
}

export async function deleteBatchRecord(ddb: AwsClient, tableName: string, batch: string): Promise<void> {
  await ddb.send(new DeleteCommand({ TableName: tableName, Key: { execution: batch } }));
}

/**
 * Records a packed task's object's end on its batch record, as the worker does (task-image/src: the worker's own copy
 * of this write): false when the record is gone, the batch settled. The twin's and the explorer's workers use it.
 */
export async function recordObjectOutcome(ddb: AwsClient, tableName: string, batch: string, jobId: string, outcome: ObjectOutcome): Promise<boolean> {
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { execution: batch },
        UpdateExpression: `SET ${OUTCOMES_ATTRIBUTE}.#job = :outcome`,
        ConditionExpression: 'attribute_exists(execution)',
        ExpressionAttributeNames: { '#job': jobId },
        ExpressionAttributeValues: { ':outcome': outcome },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}
