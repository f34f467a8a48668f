/**
 * What each handler is configured with, and the Lambda environment that carries it: the stack writes
 * it with `…Environment(settings)`, the handler reads it back with `…SettingsFromEnv()`, so each
 * variable is named once. Kept free of AWS SDK imports: synth loads this file.
 */
import { z } from 'zod';
import { nonNegativeInt, positiveInt, positiveNumber, settingsFromEnv } from './runtime';

export interface DispatcherSettings {
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly tableName: string;
  readonly batchesTableName: string;
  readonly stateMachineArn: string;
  readonly bucketName: string;
  readonly inputPrefix: string;
  readonly inputSuffix?: string;
  readonly taskVcpu: number;
  readonly jobsPerExecution: number;
  readonly leaseSeconds: number;
  readonly maxRunMs: number;
  /** How long a batch short of full may wait for more room before it is admitted as it is. */
  readonly batchWindowMs: number;
  /** How long after admission a batch's execution must have had to show before "it does not exist" is believed (the janitor's too). */
  readonly startGraceMs: number;
}

export interface JanitorSettings {
  readonly tableName: string;
  readonly batchesTableName: string;
  readonly queueUrl: string;
  readonly stateMachineArn: string;
  readonly dispatcherFunctionName: string;
  /** Executions a job may have before it is marked failed. */
  readonly maxExecutionAttempts: number;
  /** How long after admission a lease without an execution is given before it is reclaimed. */
  readonly startGraceMs: number;
  /** How long after an execution that did not succeed its tasks may still be stopping (the task's stop timeout and a margin). */
  readonly stopGraceMs: number;
}

export interface CapacitySettings {
  readonly tableName: string;
  /** The capacity providers' weights: how the stage's tasks split over the Fargate classes. */
  readonly weights: Readonly<Partial<Record<'FARGATE' | 'FARGATE_SPOT', number>>>;
}

export function capacityEnvironment(s: CapacitySettings): Record<string, string> {
  return { TABLE_NAME: s.tableName, CAPACITY_WEIGHTS: JSON.stringify(s.weights) };
}

const capacityVariables = z.object({
  TABLE_NAME: z.string().min(1),
  CAPACITY_WEIGHTS: z.string().transform((text, ctx) => {
    try {
      return z.partialRecord(z.enum(['FARGATE', 'FARGATE_SPOT']), z.number().min(0)).parse(JSON.parse(text));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON like {"FARGATE":1,"FARGATE_SPOT":3}' });
      return z.NEVER;
    }
  }),
});

export function capacitySettingsFromEnv(env: NodeJS.ProcessEnv = process.env): CapacitySettings {
  const e = settingsFromEnv(capacityVariables, env);
  return { tableName: e.TABLE_NAME, weights: e.CAPACITY_WEIGHTS };
}

export interface ConfigurePoolSettings {
  readonly tableName: string;
  /** One task's vCPU and a batch's size: what a budget means in tasks and transactions, so one past the limits is refused. */
  readonly taskVcpu: number;
  readonly jobsPerExecution: number;
  /** The stage's Fargate vCPU quota (environments/<stage>.ts): no budget above it. */
  readonly accountVcpuQuota: number;
}

export function dispatcherEnvironment(s: DispatcherSettings): Record<string, string> {
  return {
    QUEUE_URL: s.queueUrl,
    DEAD_LETTER_QUEUE_URL: s.deadLetterQueueUrl,
    TABLE_NAME: s.tableName,
    BATCHES_TABLE_NAME: s.batchesTableName,
    STATE_MACHINE_ARN: s.stateMachineArn,
    BUCKET_NAME: s.bucketName,
    INPUT_PREFIX: s.inputPrefix,
    INPUT_SUFFIX: s.inputSuffix ?? '',
    TASK_VCPU: String(s.taskVcpu),
    JOBS_PER_EXECUTION: String(s.jobsPerExecution),
    LEASE_SECONDS: String(s.leaseSeconds),
    MAX_RUN_SECONDS: String(s.maxRunMs / 1000),
    BATCH_WINDOW_MS: String(s.batchWindowMs),
    START_GRACE_SECONDS: String(s.startGraceMs / 1000),
  };
}

const dispatcherVariables = z.object({
  QUEUE_URL: z.string().url(),
  DEAD_LETTER_QUEUE_URL: z.string().url(),
  TABLE_NAME: z.string().min(1),
  BATCHES_TABLE_NAME: z.string().min(1),
  STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  BUCKET_NAME: z.string().min(1),
  INPUT_PREFIX: z.string().min(1),
  INPUT_SUFFIX: z.string().optional(),
  TASK_VCPU: positiveNumber,
  JOBS_PER_EXECUTION: positiveInt,
  LEASE_SECONDS: positiveInt,
  MAX_RUN_SECONDS: positiveInt,
  BATCH_WINDOW_MS: nonNegativeInt,
  START_GRACE_SECONDS: positiveInt,
});

export function dispatcherSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): DispatcherSettings {
  const e = settingsFromEnv(dispatcherVariables, env);
  return {
    queueUrl: e.QUEUE_URL,
    deadLetterQueueUrl: e.DEAD_LETTER_QUEUE_URL,
    tableName: e.TABLE_NAME,
    batchesTableName: e.BATCHES_TABLE_NAME,
    stateMachineArn: e.STATE_MACHINE_ARN,
    bucketName: e.BUCKET_NAME,
    inputPrefix: e.INPUT_PREFIX,
    inputSuffix: e.INPUT_SUFFIX || undefined,
    taskVcpu: e.TASK_VCPU,
    jobsPerExecution: e.JOBS_PER_EXECUTION,
    leaseSeconds: e.LEASE_SECONDS,
    maxRunMs: e.MAX_RUN_SECONDS * 1000,
    batchWindowMs: e.BATCH_WINDOW_MS,
    startGraceMs: e.START_GRACE_SECONDS * 1000,
  };
}

export function janitorEnvironment(s: JanitorSettings): Record<string, string> {
  return {
    TABLE_NAME: s.tableName,
    BATCHES_TABLE_NAME: s.batchesTableName,
    QUEUE_URL: s.queueUrl,
    STATE_MACHINE_ARN: s.stateMachineArn,
    DISPATCHER_FUNCTION_NAME: s.dispatcherFunctionName,
    MAX_EXECUTION_ATTEMPTS: String(s.maxExecutionAttempts),
    START_GRACE_SECONDS: String(s.startGraceMs / 1000),
    STOP_GRACE_SECONDS: String(s.stopGraceMs / 1000),
  };
}

const janitorVariables = z.object({
  TABLE_NAME: z.string().min(1),
  BATCHES_TABLE_NAME: z.string().min(1),
  QUEUE_URL: z.string().url(),
  STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  DISPATCHER_FUNCTION_NAME: z.string().min(1),
  MAX_EXECUTION_ATTEMPTS: positiveInt,
  START_GRACE_SECONDS: positiveInt,
  STOP_GRACE_SECONDS: nonNegativeInt,
});

export function janitorSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): JanitorSettings {
  const e = settingsFromEnv(janitorVariables, env);
  return {
    tableName: e.TABLE_NAME,
    batchesTableName: e.BATCHES_TABLE_NAME,
    queueUrl: e.QUEUE_URL,
    stateMachineArn: e.STATE_MACHINE_ARN,
    dispatcherFunctionName: e.DISPATCHER_FUNCTION_NAME,
    maxExecutionAttempts: e.MAX_EXECUTION_ATTEMPTS,
    startGraceMs: e.START_GRACE_SECONDS * 1000,
    stopGraceMs: e.STOP_GRACE_SECONDS * 1000,
  };
}

export function configurePoolEnvironment(s: ConfigurePoolSettings): Record<string, string> {
  return {
    TABLE_NAME: s.tableName,
    TASK_VCPU: String(s.taskVcpu),
    JOBS_PER_EXECUTION: String(s.jobsPerExecution),
    ACCOUNT_VCPU_QUOTA: String(s.accountVcpuQuota),
  };
}

const configurePoolVariables = z.object({
  TABLE_NAME: z.string().min(1),
  TASK_VCPU: positiveNumber,
  JOBS_PER_EXECUTION: positiveInt,
  ACCOUNT_VCPU_QUOTA: positiveNumber,
});

export function configurePoolSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ConfigurePoolSettings {
  const e = settingsFromEnv(configurePoolVariables, env);
  return { tableName: e.TABLE_NAME, taskVcpu: e.TASK_VCPU, jobsPerExecution: e.JOBS_PER_EXECUTION, accountVcpuQuota: e.ACCOUNT_VCPU_QUOTA };
}
