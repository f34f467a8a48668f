/**
 * Every name (and the ARN built from one) that is fixed by the stage's prefix, account and Region, in one place.
 * They are known before their resources exist, and that is why they are built rather than read from a resource:
 * the dispatcher starts executions of a state machine that wakes the dispatcher (a reference each way would be a
 * cycle Terraform refuses), alarms and the dashboard name functions and queues, and the `sluice` command finds a
 * deployed stage's resources from `environments/<stage>.ts` alone. Each resource is created with the name built here.
 */
import type { EnvironmentConfig } from './schema';
import { partitionOf } from './partition';

/** A stage's Terraform stack (and the prefix of its delivery roles and boundaries). */
export function stackName(stage: string): string {
  return `sluice-${stage}`;
}

type Place = { readonly namePrefix: string; readonly account: { readonly id: string; readonly region: string } };

/** The stage's bucket: account and Region in the name keep it globally unique. */
export function stageBucketName(config: Place): string {
  return `${config.namePrefix}-${config.account.id}-${config.account.region}`;
}

export function intakeQueueName(namePrefix: string): string {
  return `${namePrefix}-intake`;
}

/** What decides a route's names: the stage's prefix and input prefix, and its routes. */
type RoutedStage = {
  readonly namePrefix: string;
  readonly bucket: { readonly inputPrefix: string };
  readonly routes?: ReadonlyArray<{ readonly name: string; readonly inputPrefix: string }>;
};

/**
 * The route that keeps the stage's own intake queue and rule: the one at the stage's input prefix (the schema requires
 * one). A stage takes up routes by keeping its prefix on a route, so nothing is replaced, and no queue is left unread.
 */
export function stageRouteName(config: RoutedStage): string | undefined {
  return config.routes?.find((route) => route.inputPrefix === config.bucket.inputPrefix)?.name;
}

/** A route's intake queue: the stage's own for the route at the stage's prefix. */
export function routeQueueName(config: RoutedStage, route: string): string {
  return route === stageRouteName(config) ? intakeQueueName(config.namePrefix) : `${config.namePrefix}-intake-${route}`;
}

/** The rule that sends uploads to the intake queue; a route other than the one at the stage's prefix has its own. */
export function objectCreatedRuleName(config: RoutedStage, route: string | undefined): string {
  return route === undefined || route === stageRouteName(config) ? `${config.namePrefix}-object-created` : `${config.namePrefix}-object-created-${route}`;
}

/** Poison messages and messages whose start failed maxReceiveCount times. */
export function intakeDeadLetterQueueName(namePrefix: string): string {
  return `${namePrefix}-intake-dlq`;
}

/** Events EventBridge could not deliver to the intake queue. */
export function ruleDeadLetterQueueName(namePrefix: string): string {
  return `${namePrefix}-intake-rule-dlq`;
}

/** The limiter's counters, the ledger (a row per job) and the failed-jobs index. */
export function stateTableName(namePrefix: string): string {
  return `${namePrefix}-state`;
}

/** A record per admitted batch until the janitor settles it. */
export function batchesTableName(namePrefix: string): string {
  return `${namePrefix}-batches`;
}

/** The batches table's ARN: the worker's role names it before the table exists (the tasks' roles are built first). */
export function batchesTableArnOf(config: Place): string {
  const { region, id } = config.account;
  return `arn:${partitionOf(region)}:dynamodb:${region}:${id}:table/${batchesTableName(config.namePrefix)}`;
}

export function stateMachineName(namePrefix: string): string {
  return `${namePrefix}-jobs`;
}

export function stateMachineArnOf(config: EnvironmentConfig): string {
  const { region, id } = config.account;
  return `arn:${partitionOf(region)}:states:${region}:${id}:stateMachine:${stateMachineName(config.namePrefix)}`;
}

/** The stage's functions, by role. */
type FunctionRole = 'dispatcher' | 'janitor' | 'configure-pool' | 'capacity' | 'finish-task';

export function functionNameOf(namePrefix: string, role: FunctionRole): string {
  return `${namePrefix}-${role}`;
}

/** The worker tasks' role: the only principal that writes results (the bucket policy names it). */
export function taskRoleName(namePrefix: string): string {
  return `${namePrefix}-task`;
}

export function taskRoleArnOf(config: Place): string {
  return `arn:${partitionOf(config.account.region)}:iam::${config.account.id}:role/${taskRoleName(config.namePrefix)}`;
}

/**
 * The folder under the input prefix that `sluice smoke` uploads its canaries to: an ordinary input to the pipeline,
 * and a lifecycle rule of the stage's bucket expires the canaries and their results.
 */
export const SMOKE_FOLDER = '_sluice-smoke/';
