import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { recordFirstSight, readLedgerRow } from '../../functions/ledger';
import { admissionCommand, configureCommand, readPool, releaseCommand } from '../../functions/pool';
import { VirtualClock } from '../../twin/engines/clock';
import { DynamoDb, errorName } from '../../twin/engines/dynamo';
import { Recorder } from '../../twin/engines/recorder';
import { PK_TABLE, startDynalite, type LocalDynamo } from '../support/dynalite';

/**
 * The twin runs dynalite's engine in-process and marshals the functions' lib-dynamodb commands itself.
 * Each case here runs the same commands through the real DynamoDBDocumentClient (default options, as the
 * Lambda functions build it) to a dynalite server, and through the twin, and wants the same outputs and errors.
 */
let server: LocalDynamo;
beforeAll(async () => {
  server = await startDynalite();
});
afterAll(() => server.close());

async function twin(): Promise<{ engine: DynamoDb; recorder: Recorder; table: string }> {
  const clock = new VirtualClock();
  const recorder = new Recorder(clock);
  const engine = new DynamoDb(clock, recorder);
  await engine.createTable({ TableName: 'state', ...PK_TABLE });
  return { engine, recorder, table: 'state' };
}

type Outcome = { output: unknown } | { error: { name: string; message: string } };

async function outcome(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    const output = (await run()) as Record<string, unknown> | undefined;
    if (output && typeof output === 'object' && '$metadata' in output) {
      const { $metadata: _metadata, ...rest } = output;
      return { output: rest };
    }
    return { output };
  } catch (error) {
    return { error: { name: (error as Error).name, message: (error as Error).message } };
  }
}

/** Runs `steps` against both; every step's outcome must match. */
async function sameOutcomes(steps: Array<(ddb: { send(command: unknown): Promise<any> }, table: string) => Promise<unknown>>): Promise<Outcome[]> {
  const serverTable = await server.createTable();
  const { engine, table } = await twin();
  const results: Outcome[] = [];
  for (const step of steps) {
    const viaSdk = await outcome(() => step(server.ddb, serverTable));
    const viaTwin = await outcome(() => step(engine.documentClient, table));
    expect(viaTwin).toEqual(viaSdk);
    results.push(viaTwin);
  }
  return results;
}

const job = { jobId: 'job-1', bucket: 'in', key: 'input/a.csv', versionId: 'v1', sequencer: '0A', attempt: 0 };

describe("the twin's DynamoDB gives what DynamoDBDocumentClient on a dynalite server gives", () => {
  test('the limiter: configure, admit, read, a second admission of the same job refused, release twice', async () => {
    const now = 1_000_000;
    const pool = { budgetVcpu: 4, ratePerSecond: 10, burst: 5, inUseVcpu: 0, tat: 0, leases: {} };
    const results = await sameOutcomes([
      (ddb, table) => ddb.send(new UpdateCommand(configureCommand(table, pool, now))),
      (ddb, table) => ddb.send(new UpdateCommand({ ...admissionCommand(table, pool, now, [{ jobId: 'job-1', vcpu: 1 }], 'exec-1', 60_000), ReturnValues: 'ALL_NEW' })),
      (ddb, table) => readPool(ddb, table),
      (ddb, table) => readPool(ddb, table, { leases: false }),
      (ddb, table) => ddb.send(new UpdateCommand(admissionCommand(table, { ...pool, tat: now + 100 }, now, [{ jobId: 'job-1', vcpu: 1 }], 'exec-2', 60_000))),
      (ddb, table) => ddb.send(new UpdateCommand(releaseCommand(table, [{ jobId: 'job-1', vcpu: 1, execution: 'exec-1' }], now))),
      (ddb, table) => ddb.send(new UpdateCommand(releaseCommand(table, [{ jobId: 'job-1', vcpu: 1, execution: 'exec-1' }], now))),
    ]);
    // The cases are not vacuous: a lease was held, the repeat admission and the repeat release were refused.
    expect(results[2]).toMatchObject({ output: { inUseVcpu: 1, leases: { 'job-1': { execution: 'exec-1', vcpu: 1 } } } });
    expect(results[4]).toEqual({ error: { name: 'ConditionalCheckFailedException', message: 'The conditional request failed' } });
    expect(results[6]).toMatchObject({ error: { name: 'ConditionalCheckFailedException' } });
  });

  test('the ledger: first sight once, then a row read back', async () => {
    const results = await sameOutcomes([
      (ddb, table) => recordFirstSight(ddb, table, job, 5_000),
      (ddb, table) => ddb.send(new UpdateCommand({ TableName: table, Key: { pk: 'JOB#job-1' }, UpdateExpression: 'SET #s = :r', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':r': 'running' } })),
      (ddb, table) => recordFirstSight(ddb, table, job, 6_000),
      (ddb, table) => readLedgerRow(ddb, table, 'job-1'),
      (ddb, table) => ddb.send(new GetCommand({ TableName: table, Key: { pk: 'nothing' } })),
    ]);
    expect(results[0]).toEqual({ output: true });
    expect(results[2]).toEqual({ output: false });
  });

  test('values of every kind round-trip, and bad requests fail alike', async () => {
    const item = { pk: 'kinds', n: 1.5, big: 12345678901234, s: 'x', b: true, nul: null, list: [1, 'a', { m: 2 }], map: { deep: { deeper: [true] } }, set: new Set(['a', 'b']) };
    await sameOutcomes([
      (ddb, table) => ddb.send(new PutCommand({ TableName: table, Item: item })),
      (ddb, table) => ddb.send(new GetCommand({ TableName: table, Key: { pk: 'kinds' }, ConsistentRead: true })),
      (ddb, table) => ddb.send(new GetCommand({ TableName: table, Key: { pk: 'kinds' }, ProjectionExpression: 'map.deep, n' })),
      // A syntax error in an expression, undefined values (top level: left out; nested: an error), a wrong key type,
      // a table that does not exist.
      (ddb, table) => ddb.send(new UpdateCommand({ TableName: table, Key: { pk: 'kinds' }, UpdateExpression: 'SET n = n +', ExpressionAttributeValues: { ':one': 1 } })),
      (ddb, table) => ddb.send(new PutCommand({ TableName: table, Item: { pk: 'u', missing: undefined } })),
      (ddb, table) => ddb.send(new PutCommand({ TableName: table, Item: { pk: 'u', nested: { missing: undefined } } })),
      (ddb, table) => ddb.send(new GetCommand({ TableName: table, Key: { pk: 7 } })),
      (ddb) => ddb.send(new GetCommand({ TableName: 'no-such-table', Key: { pk: 'x' } })),
    ]);
  });
});

describe("the twin's DynamoDB", () => {
  test('meters reads, writes and the capacity units they cost, not table management', async () => {
    const { engine, recorder, table } = await twin();
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
    const { engine, recorder, table } = await twin();
    await engine.documentClient.send(new PutCommand({ TableName: table, Item: { pk: 'p', small: 1, big: 'x'.repeat(9000) } }));
    recorder.flushMeters();
    await engine.documentClient.send(new GetCommand({ TableName: table, Key: { pk: 'p' }, ConsistentRead: true, ProjectionExpression: 'small' }));
    await engine.documentClient.send(new GetCommand({ TableName: table, Key: { pk: 'p' }, ConsistentRead: true }));
    recorder.flushMeters();
    const [, reads] = recorder.events.filter((e) => e.type === 'meter');
    expect(reads).toEqual(expect.objectContaining({ ddbReads: 2, ddbReadUnits: 3 + 3 }));
  });

  test('takes only lib-dynamodb commands and known operations', async () => {
    const { engine } = await twin();
    await expect(engine.documentClient.send({ input: {} })).rejects.toThrow(/takes lib-dynamodb commands/);
    expect(() => engine.call('TransactWriteItems', {})).toThrow(/does not run TransactWriteItems/);
  });

  test('names errors as the SDK does', () => {
    expect(errorName('com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException')).toBe('ConditionalCheckFailedException');
    expect(errorName('com.amazon.coral.validate#ValidationException')).toBe('ValidationException');
    expect(errorName('ResourceNotFoundException:http://internal')).toBe('ResourceNotFoundException');
  });
});
