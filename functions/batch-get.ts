/** BatchGetItem for any number of keys of one table. */
import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import { chunks, type AwsClient } from './runtime';

/** The most keys one BatchGetItem takes. */
const BATCH_GET_LIMIT = 100;

/**
 * The items of `keys` in `table`, in BatchGetItem's pages of 100, retrying what DynamoDB left unprocessed; in no
 * particular order, and none for a key with no item.
 */
export async function batchGetItems(
  ddb: AwsClient,
  table: string,
  keys: ReadonlyArray<Record<string, unknown>>,
  options: { readonly ConsistentRead?: boolean; readonly ProjectionExpression?: string } = {},
): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  for (const page of chunks(keys, BATCH_GET_LIMIT)) {
    let request: Record<string, unknown> | undefined = { [table]: { Keys: page, ...options } };
    while (request) {
      const { Responses, UnprocessedKeys } = (await ddb.send(new BatchGetCommand({ RequestItems: request as never }))) as {
        Responses?: Record<string, Array<Record<string, unknown>>>;
        UnprocessedKeys?: Record<string, unknown>;
      };
      items.push(...(Responses?.[table] ?? []));
      request = UnprocessedKeys && Object.keys(UnprocessedKeys).length > 0 ? UnprocessedKeys : undefined;
    }
  }
  return items;
}
