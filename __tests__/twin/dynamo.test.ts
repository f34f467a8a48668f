import { BatchGetCommand, GetCommand, PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { admitBatch } from '../../functions/admission';
import { readBatchRecord, scanBatchRecords } from '../../functions/batches';
import type { Job } from '../../functions/jobs';
import { readLedgerRow, releaseLease } from '../../functions/ledger';
import { configureCommand, readPool, releasedShardKey } from '../../functions/limiter';
import { VirtualClock } from '../../twin/engines/clock';
import { DynamoDb, errorName } from '../../twin/engines/dynamo';
import { Recorder } from '../../twin/engines/recorder';
import { BATCH_TABLE, PK_TABLE, startMotoDynamo, type MotoDynamo } from '../support/moto';
import { clockAt } from '../support/clocks';

/**
 * The twin runs dynalite's engine in-process, with transactions of its own over it, and marshals the functions'
 * lib-dynamodb commands itself. Each case here runs the same commands through the real DynamoDBDocumentClient to
 * moto's server (an engine nobody here wrote) and through the twin, and wants the same outputs and the same errors
 * (name; for a cancelled transaction, the reason of every item).
 */
let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

async function twin(names = { tableName: 'state', batchesTableName: 'batches' }) {
  const clock = new VirtualClock();
  const recorder = new Recorder(clock);
  const engine = new DynamoDb(clock, recorder);
  await engine.createTable({ TableName: names.tableName, ...PK_TABLE });
  await engine.createTable({ TableName: names.batchesTableName, ...BATCH_TABLE });
  return { engine, ddb: driven(clock, engine.documentClient), recorder, clock, ...names };
}

/** The twin's client with its clock run until each answer comes (a transaction answers when its hold ends). */
function driven(clock: VirtualClock, client: { send(command: unknown): Promise<any> }) {
  return {
    async send(command: unknown): Promise<any> {
      const answer = client.send(command);
      let answered = false;
      answer.then(
        () => (answered = true),
        () => (answered = true),
      );
      while (!answered) await clock.run();
      return answer;
    },
  };
}

type Outcome = { output: unknown } | { error: { name: string; reasons?: unknown[] } };

async function outcome(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    const output = (await run()) as Record<string, unknown> | undefined;
    if (output && typeof output === 'object' && '$metadata' in output) {
      const { $metadata: _metadata, ConsumedCapacity: _capacity, ...rest } = output;
      // moto answers TransactWriteItems with an empty ItemCollectionMetrics DynamoDB leaves out unless asked for.
      if (JSON.stringify(rest.ItemCollectionMetrics) === '{}') delete rest.ItemCollectionMetrics;
      return { output: rest };
    }
    return { output };
  } catch (error) {
    const reasons = (error as { CancellationReasons?: Array<{ Code?: string; Item?: unknown }> }).CancellationReasons;
    return {
      error: {
        name: (error as Error).name,
        ...(reasons ? { reasons: reasons.map((r) => ({ code: r.Code ?? 'None', item: r.Item ? 'returned' : undefined })) } : {}),
      },
    };
  }
}

type Tables = { tableName: string; batchesTableName: string; stateMachineArn: string };
type Step = (ddb: { send(command: unknown): Promise<any> }, tables: Tables) => Promise<unknown>;

/** Runs `steps` against both; every step's outcome must match. */
async function sameOutcomes(steps: Step[]): Promise<Outcome[]> {
  const stateMachineArn = 'arn:aws:states:eu-west-1:111111111111:stateMachine:parity';
  const server = { ...(await moto.createTables()), stateMachineArn };
  const local = await twin(server); // the same table names: answers name their tables
  const results: Outcome[] = [];
  for (const [i, step] of steps.entries()) {
    const viaMoto = await outcome(() => step(moto.ddb, server));
    const viaTwin = await outcome(() => step(local.ddb, { ...local, stateMachineArn }));
    expect({ step: i, ...viaTwin }).toEqual({ step: i, ...viaMoto });
    results.push(viaTwin);
  }
  return results;
}

const job = (i: number): Job => ({
  jobId: `${i}`.padStart(32, 'a'),
  bucket: 'in',
  key: `input/${i}.csv`,
  versionId: `v${i}`,
  sequencer: '0A',
  round: 0,
  failedRuns: 0,
});
const lease = (execution: string) => ({ execution, vcpu: 1, admittedAt: 1_000_000, expiresAt: 1_060_000 });

describe("the twin's DynamoDB gives what DynamoDBDocumentClient on moto's server gives", () => {
  test('the limiter: configure, admit (one transaction), read, refusals, release twice', async () => {
    const now = 1_000_000;
    const settings = { budgetVcpu: 4, ratePerSecond: 10, burst: 5 };
    const results = await sameOutcomes([
      (ddb, t) => ddb.send(new UpdateCommand(configureCommand(t.tableName, settings, now))),
      async (ddb, t) =>
        (await admitBatch(ddb, t, { pool: await readPool(ddb, t.tableName), jobs: [job(1), job(2)], batch: 'exec-1', taskVcpu: 1, leaseMs: 60_000, now })).kind,
      (ddb, t) => readPool(ddb, t.tableName),
      (ddb, t) => readLedgerRow(ddb, t.tableName, job(1).jobId),
      (ddb, t) => readBatchRecord(ddb, t.batchesTableName, 'exec-1'),
      // The same job again: refused, the row returned, nothing written.
      async (ddb, t) => {
        const result = await admitBatch(ddb, t, {
          pool: await readPool(ddb, t.tableName),
          jobs: [job(3), job(1)],
          batch: 'exec-2',
          taskVcpu: 1,
          leaseMs: 60_000,
          now: now + 1_000,
        });
        return result.kind === 'refused' ? result.refused.map((r) => [r.index, r.row?.status, r.row?.lease?.execution]) : result.kind;
      },
      // Over the budget on a stale read: the pool's part refuses.
      async (ddb, t) =>
        (
          await admitBatch(ddb, t, {
            pool: { ...(await readPool(ddb, t.tableName)), admittedVcpu: 0 },
            jobs: [job(4), job(5), job(6)],
            batch: 'exec-3',
            taskVcpu: 1,
            leaseMs: 60_000,
            now: now + 2_000,
          })
        ).kind,
      (ddb, t) => releaseLease(ddb, t.tableName, { jobId: job(1).jobId, lease: lease('exec-1'), outcome: { status: 'unchanged' } }, clockAt(now + 3_000)),
      (ddb, t) => releaseLease(ddb, t.tableName, { jobId: job(1).jobId, lease: lease('exec-1'), outcome: { status: 'unchanged' } }, clockAt(now + 3_000)),
      (ddb, t) => readPool(ddb, t.tableName),
      (ddb, t) => scanBatchRecords(ddb, t.batchesTableName),
    ]);
    // The cases are not vacuous: two leases were taken, the repeat refused, the stale plan refused, one release given.
    expect(results[1]).toEqual({ output: 'admitted' });
    expect(results[2]).toMatchObject({ output: { admittedVcpu: 2, releasedVcpu: 0 } });
    expect(results[5]).toEqual({ output: [[1, 'running', 'exec-1']] });
    expect(results[6]).toEqual({ output: 'stale' });
    expect(results[7]).toEqual({ output: true });
    expect(results[8]).toEqual({ output: false });
    expect(results[9]).toMatchObject({ output: { admittedVcpu: 2, releasedVcpu: 1 } });
  });

  test('transactions: all or nothing, a reason per item, and malformed ones refused as DynamoDB refuses them', async () => {
    const put = (t: Tables, pk: string, condition?: string) => ({
      Put: { TableName: t.tableName, Item: { pk, n: 1 }, ...(condition ? { ConditionExpression: condition } : {}) },
    });
    const results = await sameOutcomes([
      (ddb, t) => ddb.send(new TransactWriteCommand({ TransactItems: [put(t, 'a'), put(t, 'b')] })),
      // The second item's condition fails: neither is written (c stays absent), and each item has its reason.
      (ddb, t) =>
        ddb.send(
          new TransactWriteCommand({
            TransactItems: [
              put(t, 'c'),
              {
                ...put(t, 'a', 'attribute_not_exists(pk)'),
                Put: { ...put(t, 'a', 'attribute_not_exists(pk)').Put, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' },
              },
            ],
          }),
        ),
      (ddb, t) => ddb.send(new GetCommand({ TableName: t.tableName, Key: { pk: 'c' }, ConsistentRead: true })),
      (ddb, t) =>
        ddb.send(
          new TransactWriteCommand({
            TransactItems: [
              { ConditionCheck: { TableName: t.tableName, Key: { pk: 'b' }, ConditionExpression: 'n = :one', ExpressionAttributeValues: { ':one': 1 } } },
              put(t, 'd'),
            ],
          }),
        ),
      (ddb, t) => ddb.send(new BatchGetCommand({ RequestItems: { [t.tableName]: { Keys: [{ pk: 'd' }, { pk: 'zz' }], ConsistentRead: true } } })),
      // Two operations on one item; an expression that does not parse; a table that does not exist.
      (ddb, t) => ddb.send(new TransactWriteCommand({ TransactItems: [put(t, 'e'), put(t, 'e')] })),
      (ddb, t) =>
        ddb.send(new TransactWriteCommand({ TransactItems: [{ Update: { TableName: t.tableName, Key: { pk: 'a' }, UpdateExpression: 'SET n = n +' } }] })),
      (ddb) => ddb.send(new TransactWriteCommand({ TransactItems: [{ Put: { TableName: 'no-such-table', Item: { pk: 'x' } } }] })),
    ]);
    expect(results[1]).toEqual({
      error: {
        name: 'TransactionCanceledException',
        reasons: [
          { code: 'None', item: undefined },
          { code: 'ConditionalCheckFailed', item: 'returned' },
        ],
      },
    });
    expect(results[2]).toEqual({ output: {} });
    expect(results[5]).toMatchObject({ error: { name: 'ValidationException' } });
  });

  test('values of every kind round-trip, and bad requests fail alike', async () => {
    const item = {
      pk: 'kinds',
      n: 1.5,
      big: 12345678901234,
      s: 'x',
      b: true,
      nul: null,
      list: [1, 'a', { m: 2 }],
      map: { deep: { deeper: [true] } },
      set: new Set(['a', 'b']),
    };
    await sameOutcomes([
      (ddb, t) => ddb.send(new PutCommand({ TableName: t.tableName, Item: item })),
      (ddb, t) => ddb.send(new GetCommand({ TableName: t.tableName, Key: { pk: 'kinds' }, ConsistentRead: true })),
      // `map` is a reserved word: named, as DynamoDB requires (moto, unlike DynamoDB, would take it bare).
      (ddb, t) =>
        ddb.send(
          new GetCommand({ TableName: t.tableName, Key: { pk: 'kinds' }, ProjectionExpression: '#m.deep, n', ExpressionAttributeNames: { '#m': 'map' } }),
        ),
      // A syntax error in an expression, undefined values (top level: left out; nested: an error), a wrong key type,
      // a table that does not exist.
      (ddb, t) =>
        ddb.send(
          new UpdateCommand({ TableName: t.tableName, Key: { pk: 'kinds' }, UpdateExpression: 'SET n = n +', ExpressionAttributeValues: { ':one': 1 } }),
        ),
      (ddb, t) => ddb.send(new PutCommand({ TableName: t.tableName, Item: { pk: 'u', missing: undefined } })),
      (ddb, t) => ddb.send(new PutCommand({ TableName: t.tableName, Item: { pk: 'u', nested: { missing: undefined } } })),
      (ddb) => ddb.send(new GetCommand({ TableName: 'no-such-table', Key: { pk: 'x' } })),
    ]);
  });

  test('a key of the wrong type is refused, as DynamoDB refuses it (moto answers it with no item)', async () => {
    const { engine, tableName } = await twin();
    await expect(engine.documentClient.send(new GetCommand({ TableName: tableName, Key: { pk: 7 } }))).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining('key element does not match the schema'),
    });
  });
});

describe("the twin's DynamoDB", () => {
  test('meters reads, writes and the capacity units they cost, not table management', async () => {
    const { engine, recorder, tableName: table } = await twin();
    const big = 'x'.repeat(5000); // a 5 KB item: 5 write units, 2 strongly consistent read units, 1 eventually consistent
    await engine.documentClient.send(new PutCommand({ TableName: table, Item: { pk: 'a', big } }));
    await engine.documentClient.send(new GetCommand({ TableName: table, Key: { pk: 'a' }, ConsistentRead: true }));
    const eventual = await engine.call('GetItem', { TableName: table, Key: { pk: { S: 'a' } } });
    // A failed condition is billed on the item as it stands.
    await expect(
      engine.documentClient.send(new PutCommand({ TableName: table, Item: { pk: 'a' }, ConditionExpression: 'attribute_not_exists(pk)' })),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    // Capacity is returned only to a caller that asks for it.
    expect(eventual.ConsumedCapacity).toBeUndefined();
    const asked = await engine.call('GetItem', { TableName: table, Key: { pk: { S: 'a' } }, ReturnConsumedCapacity: 'TOTAL' });
    expect(asked.ConsumedCapacity).toMatchObject({ CapacityUnits: 1 });
    recorder.flushMeters();
    expect(recorder.events.find((e) => e.type === 'meter')).toEqual(
      expect.objectContaining({ ddbWrites: 2, ddbReads: 3, ddbWriteUnits: 5 + 5, ddbReadUnits: 2 + 1 + 1 }),
    );
  });

  test('bills a projected read like a full one: DynamoDB charges the whole item, not what is returned', async () => {
    const { engine, recorder, tableName: table } = await twin();
    await engine.documentClient.send(new PutCommand({ TableName: table, Item: { pk: 'p', small: 1, big: 'x'.repeat(9000) } }));
    recorder.flushMeters();
    await engine.documentClient.send(new GetCommand({ TableName: table, Key: { pk: 'p' }, ConsistentRead: true, ProjectionExpression: 'small' }));
    await engine.documentClient.send(new GetCommand({ TableName: table, Key: { pk: 'p' }, ConsistentRead: true }));
    recorder.flushMeters();
    const [, reads] = recorder.events.filter((e) => e.type === 'meter');
    expect(reads).toEqual(expect.objectContaining({ ddbReads: 2, ddbReadUnits: 3 + 3 }));
  });

  test('a transaction holds its items until it answers: a transaction or write touching one meanwhile conflicts', async () => {
    const { engine, ddb, tableName } = await twin();
    const update = (pk: string) => ({
      Update: { TableName: tableName, Key: { pk }, UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': 1 } },
    });
    const errorOf = (request: Promise<unknown>) =>
      request.then(
        () => undefined,
        (error: unknown) => error,
      );
    // Sent together: the first takes the items, the others meet its hold.
    const first = ddb.send(new TransactWriteCommand({ TransactItems: [update('RELEASED#1'), update('JOB#a')] }));
    const second = errorOf(engine.documentClient.send(new TransactWriteCommand({ TransactItems: [update('RELEASED#1'), update('JOB#b')] })));
    const write = errorOf(engine.documentClient.send(new UpdateCommand(update('JOB#a').Update)));
    await first;
    expect(await second).toMatchObject({ name: 'TransactionCanceledException', CancellationReasons: [{ Code: 'TransactionConflict' }, { Code: 'None' }] });
    expect(await write).toMatchObject({ name: 'TransactionConflictException' });
    // Once it has answered it holds nothing: its caller's next transaction on the same item goes through.
    await ddb.send(new TransactWriteCommand({ TransactItems: [update('RELEASED#1'), update('JOB#b')] }));
    const { Item } = await ddb.send(new GetCommand({ TableName: tableName, Key: { pk: 'RELEASED#1' } }));
    expect(Item).toEqual({ pk: 'RELEASED#1', n: 2 });
  });

  test('a transaction cancelled by a conflict extends no other transaction’s hold', async () => {
    const { engine, clock, tableName } = await twin();
    const update = { TableName: tableName, Key: { pk: 'POOL' }, UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': 1 } };
    const errorOf = (request: Promise<unknown>) =>
      request.then(
        () => undefined,
        (error: unknown) => error,
      );
    const first = engine.documentClient.send(new TransactWriteCommand({ TransactItems: [{ Update: update }] })); // holds POOL for 0–20 ms
    await clock.run({ untilMs: 10 });
    const second = errorOf(engine.documentClient.send(new TransactWriteCommand({ TransactItems: [{ Update: update }] }))); // at 10 ms
    await clock.run({ untilMs: 25 });
    await first;
    // At 25 ms POOL is free: the cancelled transaction never took it, so it did not hold it on until 30 ms.
    expect(await errorOf(engine.documentClient.send(new UpdateCommand(update)))).toBeUndefined();
    await clock.run();
    expect(await second).toMatchObject({ name: 'TransactionCanceledException', CancellationReasons: [{ Code: 'TransactionConflict' }] });
  });

  test('a release that meets another transaction on its shard tries again and gives the vCPU back once', async () => {
    const { engine, ddb, clock, tableName, batchesTableName } = await twin();
    const now = 1_000_000;
    await ddb.send(new UpdateCommand(configureCommand(tableName, { budgetVcpu: 4, ratePerSecond: 10, burst: 5 }, now)));
    const admitted = await admitBatch(
      ddb,
      { tableName, batchesTableName, stateMachineArn: 'arn:aws:states:eu-west-1:111111111111:stateMachine:retry' },
      { pool: await readPool(ddb, tableName), jobs: [job(1)], batch: 'exec-1', taskVcpu: 1, leaseMs: 60_000, now },
    );
    if (admitted.kind !== 'admitted') throw new Error(`not admitted: ${admitted.kind}`);
    // Another job's release holds job 1's shard; job 1's release comes while it does.
    const shard = releasedShardKey(job(1).jobId);
    const other = engine.documentClient.send(
      new TransactWriteCommand({
        TransactItems: [
          { Update: { TableName: tableName, Key: shard, UpdateExpression: 'ADD releasedVcpu :zero', ExpressionAttributeValues: { ':zero': 0 } } },
        ],
      }),
    );
    const sleeps: number[] = [];
    const virtual = { now: () => clock.now(), sleep: (ms: number) => (sleeps.push(ms), clock.sleep(ms)) };
    const released = releaseLease(engine.documentClient, tableName, { jobId: job(1).jobId, lease: admitted.lease, outcome: { status: 'unchanged' } }, virtual);
    await clock.run();
    await other;
    expect(await released).toBe(true);
    expect(sleeps.length).toBeGreaterThan(0);
    expect(await readPool(ddb, tableName)).toMatchObject({ admittedVcpu: 1, releasedVcpu: 1 });
  });

  test('a client request token answers a repeat within 10 minutes from the first, and refuses a different request', async () => {
    const { ddb, clock, tableName } = await twin();
    const tx = (n: number) =>
      new TransactWriteCommand({
        ClientRequestToken: 'token-1',
        TransactItems: [{ Update: { TableName: tableName, Key: { pk: 'c' }, UpdateExpression: 'ADD n :n', ExpressionAttributeValues: { ':n': n } } }],
      });
    await ddb.send(tx(1));
    clock.setTimeout(() => undefined, 1_000);
    await clock.run();
    await ddb.send(tx(1)); // applied once
    await expect(ddb.send(tx(2))).rejects.toMatchObject({ name: 'IdempotentParameterMismatchException' });
    expect((await ddb.send(new GetCommand({ TableName: tableName, Key: { pk: 'c' } }))).Item).toEqual({ pk: 'c', n: 1 });
  });

  test('bills a transaction two write units per item, a cancelled one one per item; a partition takes 1,000 units a second', async () => {
    const { engine, ddb, recorder, tableName } = await twin();
    const put = (pk: string, condition?: string) => ({ Put: { TableName: tableName, Item: { pk }, ...(condition ? { ConditionExpression: condition } : {}) } });
    await ddb.send(new TransactWriteCommand({ TransactItems: [put('x'), put('y')] }));
    await expect(ddb.send(new TransactWriteCommand({ TransactItems: [put('z'), put('w'), put('x', 'attribute_not_exists(pk)')] }))).rejects.toMatchObject({
      name: 'TransactionCanceledException',
    });
    recorder.flushMeters();
    expect(recorder.events.find((e) => e.type === 'meter')).toEqual(expect.objectContaining({ ddbWriteUnits: 2 * 2 + 3 }));
    // A 5 KB item written over and over in one second: its partition refuses the 201st write.
    const big = 'x'.repeat(5000);
    let throttled = 0;
    for (let i = 0; i < 210; i++) {
      await engine.documentClient.send(new PutCommand({ TableName: tableName, Item: { pk: 'hot', big } })).catch((error) => {
        expect(error.name).toBe('ProvisionedThroughputExceededException');
        throttled++;
      });
    }
    expect(throttled).toBe(10);
  });

  test('takes only lib-dynamodb commands and known operations', async () => {
    const { engine } = await twin();
    await expect(engine.documentClient.send({ input: {} })).rejects.toThrow(/takes lib-dynamodb commands/);
    expect(() => engine.call('TransactGetItems', {})).toThrow(/does not run TransactGetItems/);
  });

  test('names errors as the SDK does', () => {
    expect(errorName('com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException')).toBe('ConditionalCheckFailedException');
    expect(errorName('com.amazon.coral.validate#ValidationException')).toBe('ValidationException');
    expect(errorName('ResourceNotFoundException:http://internal')).toBe('ResourceNotFoundException');
  });
});
