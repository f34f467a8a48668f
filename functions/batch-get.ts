/** BatchGetItem for any number of keys of one table. */
import { BatchGetCommand, type BatchGetCommandInput, type BatchGetCommandOutput } from '@aws-sdk/lib-dynamodb';
import { chunks, systemClock, type AwsClient, type Clock } from './runtime';

/** The most keys one BatchGetItem takes. */
const BATCH_GET_LIMIT = 100;
/** Calls per page before giving up on keys DynamoDB keeps leaving unprocessed (it does when throttled). */
const UNPROCESSED_TRIES = 8;
const UNPROCESSED_BASE_DELAY_MS = 25;

/** One table's keys to read, and how. */
export interface BatchGet {
  readonly table: string;
  readonly keys: ReadonlyArray<Record<string, unknown>>;
  /** Given with every page's keys. */
  readonly read?: { readonly ConsistentRead?: boolean; readonly ProjectionExpression?: string };
  /** The pause before unprocessed keys are asked again (a twin's or a test's clock passes its own). */
  readonly sleep?: Clock['sleep'];
}

/**
 * The items of `keys` in `table`, in BatchGetItem's pages of 100; in no particular order, and none for a key with no
 * item. Keys DynamoDB leaves unprocessed (a throttled partition, the 16 MB answer limit) are asked again after a
 * jittered, doubling pause, as the API reference asks; still unprocessed after a few tries, the read fails.
 */
export async function batchGetItems(ddb: AwsClient, { table, keys, read = {}, sleep = systemClock.sleep }: BatchGet): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  for (const page of chunks(keys, BATCH_GET_LIMIT)) {
    let request: BatchGetCommandInput['RequestItems'] = { [table]: { Keys: page, ...read } };
    for (let tries = 1; request; tries++) {
      // Typed here: the loop's `request` comes from the answer, which TypeScript cannot infer through the loop.
      const { Responses, UnprocessedKeys }: BatchGetCommandOutput = await ddb.send(new BatchGetCommand({ RequestItems: request }));
      items.push(...(Responses?.[table] ?? []));
      request = UnprocessedKeys && Object.keys(UnprocessedKeys).length > 0 ? UnprocessedKeys : undefined;
      if (!request) break;
      if (tries >= UNPROCESSED_TRIES) {
        const left = request[table]?.Keys?.length ?? 0;
        throw Object.assign(new Error(`BatchGetItem on ${table}: ${left} key(s) still unprocessed after ${tries} tries`), { name: 'UnprocessedKeys' });
      }
      await sleep(Math.ceil(Math.random() * UNPROCESSED_BASE_DELAY_MS * 2 ** tries));
    }
  }
  return items;
}
