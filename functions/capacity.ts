/**
 * The capacity reader: every minute (AWS/Usage's resolution), what the account can still give this stage. Per
 * Fargate capacity class the stage uses, the quota (Service Quotas, service `fargate`: L-3032A538 On-Demand,
 * L-36FBB829 Spot) and the vCPU in use in the account (CloudWatch AWS/Usage ResourceCount, Service=Fargate,
 * Type=Resource, Resource=vCPU, Class=Standard/OnDemand|Standard/Spot, Maximum per minute); other workloads' use is
 * that minus this stage's own leased vCPU in the class. Each batch goes to a class with room for it
 * (functions/placement.ts), so the stage may hold, over all its tasks, what the classes leave: Σ (quota − others).
 * Written to the pool (`account`), where admission reads it; a vCPU-limit hold (capacityLimitAt) older than the
 * reading is lifted.
 */
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetAWSDefaultServiceQuotaCommand, GetServiceQuotaCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { capacitySettingsFromEnv, type CapacitySettings } from './environment';
import { isConditionFailure } from './dynamo-errors';
import { effectiveBudget, inUseVcpu, POOL_KEY, readPool, updateRetryingConflicts, type AccountView } from './limiter';
import { jsonLog, systemClock, type Clock, type Log, type AwsClient } from './runtime';

import { FARGATE_QUOTA_CODE, USAGE_CLASS, type CapacityClass } from './capacity-codes';
import { ownByClass, placeableClasses, type ByClass, type ClassWeights } from './placement';
import { ownByRoute } from './routes';

/** The AWS/Usage metric of one class, as GetMetricData names it. */
export function usageMetric(capacityClass: CapacityClass) {
  return {
    Namespace: 'AWS/Usage',
    MetricName: 'ResourceCount',
    Dimensions: [
      { Name: 'Service', Value: 'Fargate' },
      { Name: 'Type', Value: 'Resource' },
      { Name: 'Resource', Value: 'vCPU' },
      { Name: 'Class', Value: USAGE_CLASS[capacityClass] },
    ],
  };
}

interface ClassReading {
  readonly quotaVcpu: number;
  /** The account's use, this stage's tasks included; undefined when no datapoint is there (nothing runs, or too new). */
  readonly usedVcpu: number | undefined;
  /** When the minute of that datapoint began (epoch ms). */
  readonly usedAt?: number;
}

/**
 * What the stage may hold, from the readings and its own use per class: each class it places tasks in keeps
 * quota − others for this stage, and each batch goes where there is room, so the classes' room adds up.
 */
export function accountView(
  readings: Readonly<Partial<Record<CapacityClass, ClassReading>>>,
  weights: ClassWeights,
  own: ByClass,
  readAt: number,
): AccountView {
  const classes: Record<string, { quotaVcpu: number; usedVcpu: number; othersVcpu: number }> = {};
  let freeVcpu = 0;
  for (const name of placeableClasses(weights)) {
    const reading = readings[name];
    if (!reading) continue;
    const used = reading.usedVcpu ?? 0;
    const others = Math.max(0, used - (own[name] ?? 0));
    classes[name] = { quotaVcpu: reading.quotaVcpu, usedVcpu: used, othersVcpu: others };
    freeVcpu += Math.max(0, reading.quotaVcpu - others);
  }
  return { freeVcpu: Math.floor(freeVcpu * 1000) / 1000, readAt, classes };
}

interface CapacityDeps {
  readonly quotas: AwsClient;
  readonly cloudwatch: AwsClient;
  readonly ddb: AwsClient;
  readonly clock: Clock;
  readonly settings: CapacitySettings;
  readonly log?: Log;
}

/** How far back to look for the newest complete minute of AWS/Usage (it arrives a minute or two late). */
const USAGE_LOOKBACK_MS = 5 * 60_000;

/**
 * The quota of a class: the account's applied value, or AWS's default where none is applied ("For some quotas, only
 * the default values are available", GetServiceQuota: it answers NoSuchResourceException then).
 */
async function quotaOf(deps: CapacityDeps, capacityClass: CapacityClass): Promise<number> {
  const request = { ServiceCode: 'fargate', QuotaCode: FARGATE_QUOTA_CODE[capacityClass] };
  let value: number | undefined;
  try {
    value = (await deps.quotas.send(new GetServiceQuotaCommand(request))).Quota?.Value;
  } catch (error) {
    if ((error as Error).name !== 'NoSuchResourceException') throw error;
    value = (await deps.quotas.send(new GetAWSDefaultServiceQuotaCommand(request))).Quota?.Value;
  }
  if (value === undefined) throw new Error(`Service Quotas returned no value for fargate ${request.QuotaCode}`);
  return value;
}

async function readClass(deps: CapacityDeps, capacityClass: CapacityClass, now: number): Promise<ClassReading> {
  const quotaVcpu = await quotaOf(deps, capacityClass);
  const { MetricDataResults = [] } = await deps.cloudwatch.send(
    new GetMetricDataCommand({
      StartTime: new Date(now - USAGE_LOOKBACK_MS),
      EndTime: new Date(now),
      ScanBy: 'TimestampDescending',
      MetricDataQueries: [{ Id: 'usage', MetricStat: { Metric: usageMetric(capacityClass), Period: 60, Stat: 'Maximum' } }],
    }),
  );
  const values = MetricDataResults[0]?.Values ?? [];
  const timestamps = MetricDataResults[0]?.Timestamps ?? [];
  return {
    quotaVcpu,
    usedVcpu: values.length > 0 ? Number(values[0]) : undefined,
    ...(timestamps.length > 0 ? { usedAt: new Date(timestamps[0]).getTime() } : {}),
  };
}

/**
 * A vCPU-limit hold says the account was full when RunTask said so. It is lifted by a reading of every class whose
 * datapoint's minute began after it: one measured before the error would say nothing of what the error said.
 */
function liftsTheHold(readings: Readonly<Partial<Record<CapacityClass, ClassReading>>>, holdAt: number): boolean {
  const read = Object.values(readings);
  return read.length > 0 && read.every((r) => r!.usedAt !== undefined && r!.usedAt >= holdAt);
}

export async function readCapacity(deps: CapacityDeps): Promise<AccountView> {
  const { ddb, clock, settings } = deps;
  const log = deps.log ?? (() => undefined);
  const now = clock.now();
  const readings: Partial<Record<CapacityClass, ClassReading>> = {};
  for (const capacityClass of Object.keys(settings.weights) as CapacityClass[]) readings[capacityClass] = await readClass(deps, capacityClass, now);
  const pool = await readPool(ddb, settings.tableName);
  const view = accountView(readings, settings.weights, ownByClass(pool), now);
  const previous = pool.account?.freeVcpu;
  const lift = pool.capacityLimitAt !== undefined && liftsTheHold(readings, Date.parse(pool.capacityLimitAt));
  try {
    await updateRetryingConflicts(
      ddb,
      {
        TableName: settings.tableName,
        Key: POOL_KEY,
        UpdateExpression: lift ? 'SET #account = :view REMOVE capacityLimitAt' : 'SET #account = :view',
        ConditionExpression: pool.capacityLimitAt !== undefined ? 'capacityLimitAt = :limitAt' : 'attribute_not_exists(capacityLimitAt)',
        ExpressionAttributeNames: { '#account': 'account' },
        ExpressionAttributeValues: { ':view': view, ...(pool.capacityLimitAt !== undefined ? { ':limitAt': pool.capacityLimitAt } : {}) },
      },
      (ms) => clock.sleep(ms),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    log({ event: 'capacityReadingSuperseded', reason: 'a vCPU-limit hold was set meanwhile; the next reading lifts it' });
    return view;
  }
  const effective = effectiveBudget({ ...pool, account: view, ...(lift ? { capacityLimitAt: undefined } : {}) }, now).vcpu;
  log({
    event: 'capacityRead',
    freeVcpu: view.freeVcpu,
    budgetVcpu: pool.budgetVcpu,
    effectiveVcpu: effective,
    inUseVcpu: inUseVcpu(pool),
    classes: view.classes,
    changed: previous !== view.freeVcpu,
  });
  for (const [route, vcpu] of Object.entries(ownByRoute(pool))) log({ event: 'routeUse', route, inUseVcpu: vcpu ?? 0 });
  return view;
}

let clients: { quotas: ServiceQuotasClient; cloudwatch: CloudWatchClient; ddb: DynamoDBDocumentClient } | undefined;

export async function handler(): Promise<AccountView> {
  clients ??= { quotas: new ServiceQuotasClient({}), cloudwatch: new CloudWatchClient({}), ddb: DynamoDBDocumentClient.from(new DynamoDBClient({})) };
  return readCapacity({ ...clients, clock: systemClock, settings: capacitySettingsFromEnv(), log: jsonLog('capacity') });
}
