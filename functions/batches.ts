/**
 * Batch records: one item per admitted batch (= one execution) in the stage's batches table, written in the same
 * transaction as its leases and deleted once the janitor has settled it. They make the leases that may still be
 * held enumerable without scanning the ledger: a Scan of this table reads only batches not yet settled.
 */
import { DeleteCommand, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { CapacityClass } from './capacity-codes';
import type { ObjectOutcome } from './packing';
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
