/**
 * Sets the limiter's budget, rate and burst. `terraform apply` invokes it with the stage's values
 * (aws_lambda_invocation, again whenever they change); an operator may invoke it to change them at run
 * time — budget 0 pauses admission, leases already held run to completion.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { configurePoolSettingsFromEnv, type ConfigurePoolSettings } from './environment';
import { configureCommand, updateRetryingConflicts, type PoolSettings } from './limiter';
import { poolProblems } from './limits';
import { jsonLog, systemClock, type AwsClient, type Clock } from './runtime';

const poolSettingsSchema = z.strictObject({
  budgetVcpu: z.number().min(0, 'budgetVcpu must be 0 (paused) or more'),
  ratePerSecond: z.number().gt(0, 'ratePerSecond must be above 0').lt(20, "ratePerSecond must stay below Fargate's 20 launches/s"),
  burst: z.number().int().min(1).max(20, "burst must stay within Fargate's 20 RunTask calls/s"),
});

/** A request to set the pool: the stage's settings it is checked against, and the input (not yet validated). */
export interface PoolConfiguration {
  readonly settings: ConfigurePoolSettings;
  readonly input: unknown;
  readonly now: number;
  /** With budget 0: what `sluice resume` restores. */
  readonly pausedFromVcpu?: number;
  /** The pause between tries of a write that met a conflicting one (a test passes its own). */
  readonly sleep?: Clock['sleep'];
}

/** Validates and applies pool settings. */
export async function configurePool(
  ddb: AwsClient,
  { settings, input, now, pausedFromVcpu, sleep = systemClock.sleep }: PoolConfiguration,
): Promise<PoolSettings> {
  const parsed = poolSettingsSchema.safeParse(input);
  const problems = parsed.success
    ? [
        ...poolProblems(parsed.data.budgetVcpu, settings.taskVcpu, settings.jobsPerExecution, settings.objectsPerTask).map((p) => `budgetVcpu: ${p}`),
        ...(parsed.data.budgetVcpu > settings.accountVcpuQuota
          ? [`budgetVcpu: must not exceed the stage's accountVcpuQuota (${settings.accountVcpuQuota} vCPU)`]
          : []),
      ]
    : parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`);
  if (!parsed.success || problems.length > 0) throw new Error(`invalid pool settings: ${problems.join('; ')}`);
  await updateRetryingConflicts(ddb, configureCommand(settings.tableName, parsed.data, now, parsed.data.budgetVcpu === 0 ? pausedFromVcpu : undefined), sleep);
  return parsed.data;
}

let ddb: DynamoDBDocumentClient | undefined;

export async function handler(event: unknown): Promise<PoolSettings> {
  ddb ??= DynamoDBDocumentClient.from(new DynamoDBClient({}));
  const applied = await configurePool(ddb, { settings: configurePoolSettingsFromEnv(), input: event, now: Date.now() });
  jsonLog('configure-pool')({ event: 'poolConfigured', ...applied });
  return applied;
}
