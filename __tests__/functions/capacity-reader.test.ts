/**
 * The capacity reader against moto's DynamoDB, Service Quotas and CloudWatch answered here: a hold is lifted only by a
 * reading made after it; a quota with no applied value is read as AWS's default; a write meeting an admission under
 * way is tried again.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { readCapacity } from '../../functions/capacity';
import { configureCommand, POOL_KEY, readPool } from '../../functions/limiter';
import { configurePool } from '../../functions/configure-pool';
import { standIn } from '../../functions/runtime';
import { AwsError } from '../../twin/engines/errors';
import { startMotoDynamo, type MotoDynamo } from '../support/moto';

let moto: MotoDynamo;
beforeAll(async () => {
  moto = await startMotoDynamo();
});
afterAll(() => moto.close());

const MINUTE = 60_000;
const NOW = Date.parse('2026-12-07T10:00:30.000Z');
const clock = { now: () => NOW, sleep: async () => undefined };

async function pool(options: { holdAt?: number } = {}) {
  const { tableName } = await moto.createTables();
  await moto.ddb.send(new UpdateCommand(configureCommand(tableName, { budgetVcpu: 10, ratePerSecond: 2, burst: 4 }, NOW)));
  if (options.holdAt !== undefined)
    await moto.ddb.send(
      new UpdateCommand({
        TableName: tableName,
        Key: POOL_KEY,
        UpdateExpression: 'SET capacityLimitAt = :at',
        ExpressionAttributeValues: { ':at': new Date(options.holdAt).toISOString() },
      }),
    );
  return tableName;
}

/** Service Quotas and AWS/Usage: a quota (or none applied), and the newest datapoint's minute. */
function account(options: { quota?: number; applied?: boolean; usedVcpu: number; minuteAt: number }) {
  const calls: string[] = [];
  const client = standIn({
    calls,
    async send(command: { constructor: { name: string } }) {
      calls.push(command.constructor.name);
      switch (command.constructor.name) {
        case 'GetServiceQuotaCommand':
          if (options.applied === false)
            throw new AwsError('NoSuchResourceException', 'The request failed because the specified service quota does not exist.', false);
          return { Quota: { Value: options.quota ?? 100 } };
        case 'GetAWSDefaultServiceQuotaCommand':
          return { Quota: { Value: 6 } };
        case 'GetMetricDataCommand':
          return { MetricDataResults: [{ Id: 'usage', Values: [options.usedVcpu], Timestamps: [new Date(options.minuteAt)] }] };
        default:
          throw new Error(`unexpected ${command.constructor.name}`);
      }
    },
  });
  return client;
}

const settings = (tableName: string) => ({ tableName, weights: { FARGATE: 1 } });

test('a hold is lifted by a reading whose minute began after it, not by one from before it', async () => {
  const holdAt = NOW - 90_000; // 09:59:00
  const tableName = await pool({ holdAt });
  const before = account({ usedVcpu: 20, minuteAt: holdAt - MINUTE });
  await readCapacity({ quotas: before, cloudwatch: before, ddb: moto.ddb, clock, settings: settings(tableName) });
  expect((await readPool(moto.ddb, tableName)).capacityLimitAt).toBeDefined();

  const after = account({ usedVcpu: 20, minuteAt: holdAt });
  await readCapacity({ quotas: after, cloudwatch: after, ddb: moto.ddb, clock, settings: settings(tableName) });
  expect((await readPool(moto.ddb, tableName)).capacityLimitAt).toBeUndefined();
});

test('a quota with no applied value is read as AWS’s default', async () => {
  const tableName = await pool();
  const fresh = account({ applied: false, usedVcpu: 0, minuteAt: NOW - MINUTE });
  const view = await readCapacity({ quotas: fresh, cloudwatch: fresh, ddb: moto.ddb, clock, settings: settings(tableName) });
  expect(fresh.calls).toEqual(['GetServiceQuotaCommand', 'GetAWSDefaultServiceQuotaCommand', 'GetMetricDataCommand']);
  expect(view.freeVcpu).toBe(6);
});

test('writes of POOL meeting an admission under way (TransactionConflictException) are tried again', async () => {
  const tableName = await pool();
  let conflicts = 0;
  const busy = standIn({
    async send(command: { constructor: { name: string } }) {
      if (command.constructor.name === 'UpdateCommand' && conflicts++ < 2)
        throw new AwsError('TransactionConflictException', 'Transaction is ongoing for the item', false);
      return moto.ddb.send(command as never);
    },
  });
  const reading = account({ usedVcpu: 0, minuteAt: NOW - MINUTE });
  await readCapacity({ quotas: reading, cloudwatch: reading, ddb: busy, clock, settings: settings(tableName) });
  expect((await readPool(moto.ddb, tableName)).account?.freeVcpu).toBe(100);

  conflicts = 0;
  const configureSettings = { tableName, taskVcpu: 1, jobsPerExecution: 2, accountVcpuQuota: 20 };
  await configurePool(busy, { settings: configureSettings, input: { budgetVcpu: 12, ratePerSecond: 2, burst: 4 }, now: NOW, sleep: async () => undefined });
  expect((await readPool(moto.ddb, tableName)).budgetVcpu).toBe(12);
  expect(conflicts).toBe(3);
});

test('setting the pool (deploy, resume, resize) lifts a vCPU-limit hold: whoever sets it says admission may go on', async () => {
  const tableName = await pool({ holdAt: NOW - 1_000 });
  await configurePool(moto.ddb, {
    settings: { tableName, taskVcpu: 1, jobsPerExecution: 2, accountVcpuQuota: 20 },
    input: { budgetVcpu: 10, ratePerSecond: 2, burst: 4 },
    now: NOW,
  });
  expect((await readPool(moto.ddb, tableName)).capacityLimitAt).toBeUndefined();
});
