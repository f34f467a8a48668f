/** What DynamoDB's errors say: a condition that did not hold, a transaction cancelled (and why, item by item), a conflict. */
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

function errorName(error: unknown): string | undefined {
  return (error as { name?: string })?.name;
}

export function isConditionFailure(error: unknown): boolean {
  return errorName(error) === 'ConditionalCheckFailedException';
}

/** A plain write refused because a transaction under way holds the item; the SDK does not retry it. */
export function isTransactionConflict(error: unknown): boolean {
  return errorName(error) === 'TransactionConflictException';
}

/** Why a transaction was cancelled, item by item (the request's order), as DynamoDB reports it. */
export interface Cancellation {
  readonly codes: string[];
  /** The item as it stood, for items asked with ReturnValuesOnConditionCheckFailure = ALL_OLD. */
  readonly items: Array<Record<string, unknown> | undefined>;
}

export function cancellationOf(error: unknown): Cancellation | undefined {
  if (errorName(error) !== 'TransactionCanceledException') return undefined;
  const reasons = (error as { CancellationReasons?: Array<{ Code?: string; Item?: Record<string, unknown> }> }).CancellationReasons ?? [];
  return { codes: reasons.map((r) => r.Code ?? 'None'), items: reasons.map((r) => r.Item) };
}

/** Whether the transaction's item at `index` (the request's order) was cancelled because its condition failed. */
export function conditionFailedAt(cancelled: Cancellation, index: number): boolean {
  return cancelled.codes[index] === 'ConditionalCheckFailed';
}

/** The item at `index` as it stood, in the document client's shape: a cancellation's item comes back in DynamoDB's wire shape, whatever client sent the request. */
export function cancelledItem(cancelled: Cancellation, index: number): Record<string, unknown> | undefined {
  const item = cancelled.items[index];
  if (!item) return undefined;
  const wire = Object.values(item).every(
    (v) => v && typeof v === 'object' && Object.keys(v).length === 1 && /^(S|N|M|L|BOOL|NULL|SS|NS|B|BS)$/.test(Object.keys(v)[0]),
  );
  return wire ? unmarshall(item as Record<string, AttributeValue>) : item;
}

/** Reasons that say "not now": another transaction was writing an item, or an item's partition was throttled. */
const TRANSIENT_CANCELLATIONS = ['TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded'];

/** Cancelled only for a transient reason (no condition failed): trying again can succeed. */
export function isRetryableCancellation(error: unknown): boolean {
  const cancelled = cancellationOf(error);
  return (
    cancelled !== undefined && cancelled.codes.some((code) => TRANSIENT_CANCELLATIONS.includes(code)) && !cancelled.codes.includes('ConditionalCheckFailed')
  );
}
