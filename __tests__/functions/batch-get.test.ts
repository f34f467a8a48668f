/**
 * BatchGetItem's unprocessed keys (review A6): asked again after a doubling, jittered pause, and not forever.
 */
import { batchGetItems } from '../../functions/batch-get';
import { standIn } from '../../functions/runtime';

/** A client that leaves the first `unprocessedFor` answers' keys unprocessed, then answers them all. */
function throttledClient(unprocessedFor: number) {
  const requests: number[] = [];
  return standIn({
    requests,
    async send(command: { input: { RequestItems: Record<string, { Keys: Array<{ pk: string }> }> } }) {
      const { Keys } = command.input.RequestItems.t;
      requests.push(Keys.length);
      if (requests.length <= unprocessedFor) return { Responses: { t: [] }, UnprocessedKeys: { t: { Keys } } };
      return { Responses: { t: Keys.map((k) => ({ ...k, found: true })) } };
    },
  });
}

test('keys left unprocessed are asked again after pauses that double, and every item comes back', async () => {
  const client = throttledClient(3);
  const pauses: number[] = [];
  const items = await batchGetItems(client, { table: 't', keys: [{ pk: 'a' }, { pk: 'b' }], sleep: async (ms) => void pauses.push(ms) });
  expect(items.map((i) => i.pk).sort()).toEqual(['a', 'b']);
  expect(client.requests).toEqual([2, 2, 2, 2]);
  expect(pauses).toHaveLength(3);
  // Full jitter under a ceiling that doubles: 50, 100, 200 ms.
  pauses.forEach((ms, i) => expect(ms).toBeLessThanOrEqual(25 * 2 ** (i + 1)));
});

test('keys DynamoDB keeps leaving unprocessed fail the read after a few tries, not a hot loop', async () => {
  const client = throttledClient(Infinity);
  await expect(batchGetItems(client, { table: 't', keys: [{ pk: 'a' }], sleep: async () => undefined })).rejects.toThrow(
    /1 key\(s\) still unprocessed after 8 tries/,
  );
  expect(client.requests).toHaveLength(8);
});

test('the keys go in pages of 100, each page read as asked', async () => {
  const pages: Array<Record<string, unknown>> = [];
  const client = standIn({
    async send(command: { input: { RequestItems: Record<string, { Keys: Array<{ pk: string }> }> } }) {
      const { Keys, ...read } = command.input.RequestItems.t;
      pages.push({ keys: Keys.length, ...read });
      return { Responses: { t: Keys } };
    },
  });
  const keys = Array.from({ length: 150 }, (_, i) => ({ pk: `k${i}` }));
  const items = await batchGetItems(client, { table: 't', keys, read: { ConsistentRead: true, ProjectionExpression: 'pk' } });
  expect(items).toHaveLength(150);
  expect(pages).toEqual([
    { keys: 100, ConsistentRead: true, ProjectionExpression: 'pk' },
    { keys: 50, ConsistentRead: true, ProjectionExpression: 'pk' },
  ]);
});
