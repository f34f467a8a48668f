/**
 * What each handler is configured with, and the Lambda environment that carries it: the stack writes
 * it with `…Environment(settings)`, the handler reads it back with `…SettingsFromEnv()`, so each
 * variable is named once. Kept free of AWS SDK imports: synth loads this file.
 */
import { z } from 'zod';
import { positiveInt, positiveNumber, settingsFromEnv } from './runtime';

export interface DispatcherSettings {
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly tableName: string;
  readonly stateMachineArn: string;
  readonly bucketName: string;
  readonly inputPrefix: string;
  readonly inputSuffix?: string;
  readonly taskVcpu: number;
  readonly jobsPerExecution: number;
  readonly leaseSeconds: number;
  readonly maxRunMs: number;
}

export interface JanitorSettings {
  readonly tableName: string;
  readonly queueUrl: string;
  readonly stateMachineArn: string;
  readonly dispatcherFunctionName: string;
  /** Executions a job may have before it is marked failed. */
  readonly maxExecutionAttempts: number;
  /** How long after admission a lease without an execution is given before it is reclaimed. */
  readonly startGraceMs: number;
}

export interface ConfigurePoolSettings {
  readonly tableName: string;
  /** One task's vCPU: how many leases a budget means, so a budget the pool item cannot hold is refused. */
  readonly taskVcpu: number;
}

export function dispatcherEnvironment(s: DispatcherSettings): Record<string, string> {
  return {
    QUEUE_URL: s.queueUrl,
    DEAD_LETTER_QUEUE_URL: s.deadLetterQueueUrl,
    TABLE_NAME: s.tableName,
    STATE_MACHINE_ARN: s.stateMachineArn,
    BUCKET_NAME: s.bucketName,
    INPUT_PREFIX: s.inputPrefix,
    INPUT_SUFFIX: s.inputSuffix ?? '',
    TASK_VCPU: String(s.taskVcpu),
    JOBS_PER_EXECUTION: String(s.jobsPerExecution),
    LEASE_SECONDS: String(s.leaseSeconds),
    MAX_RUN_SECONDS: String(s.maxRunMs / 1000),
  };
}

const dispatcherVariables = z.object({
  QUEUE_URL: z.string().url(),
  DEAD_LETTER_QUEUE_URL: z.string().url(),
  TABLE_NAME: z.string().min(1),
  STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  BUCKET_NAME: z.string().min(1),
  INPUT_PREFIX: z.string().min(1),
  INPUT_SUFFIX: z.string().optional(),
  TASK_VCPU: positiveNumber,
  JOBS_PER_EXECUTION: positiveInt,
  LEASE_SECONDS: positiveInt,
  MAX_RUN_SECONDS: positiveInt,
});

export function dispatcherSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): DispatcherSettings {
  const e = settingsFromEnv(dispatcherVariables, env);
  return {
    queueUrl: e.QUEUE_URL,
    deadLetterQueueUrl: e.DEAD_LETTER_QUEUE_URL,
    tableName: e.TABLE_NAME,
    stateMachineArn: e.STATE_MACHINE_ARN,
    bucketName: e.BUCKET_NAME,
    inputPrefix: e.INPUT_PREFIX,
    inputSuffix: e.INPUT_SUFFIX || undefined,
    taskVcpu: e.TASK_VCPU,
    jobsPerExecution: e.JOBS_PER_EXECUTION,
    leaseSeconds: e.LEASE_SECONDS,
    maxRunMs: e.MAX_RUN_SECONDS * 1000,
  };
}

export function janitorEnvironment(s: JanitorSettings): Record<string, string> {
  return {
    TABLE_NAME: s.tableName,
    QUEUE_URL: s.queueUrl,
    STATE_MACHINE_ARN: s.stateMachineArn,
    DISPATCHER_FUNCTION_NAME: s.dispatcherFunctionName,
    MAX_EXECUTION_ATTEMPTS: String(s.maxExecutionAttempts),
    START_GRACE_SECONDS: String(s.startGraceMs / 1000),
  };
}

const janitorVariables = z.object({
  TABLE_NAME: z.string().min(1),
  QUEUE_URL: z.string().url(),
  STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  DISPATCHER_FUNCTION_NAME: z.string().min(1),
  MAX_EXECUTION_ATTEMPTS: positiveInt,
  START_GRACE_SECONDS: positiveInt,
});

export function janitorSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): JanitorSettings {
  const e = settingsFromEnv(janitorVariables, env);
  return {
    tableName: e.TABLE_NAME,
    queueUrl: e.QUEUE_URL,
    stateMachineArn: e.STATE_MACHINE_ARN,
    dispatcherFunctionName: e.DISPATCHER_FUNCTION_NAME,
    maxExecutionAttempts: e.MAX_EXECUTION_ATTEMPTS,
    startGraceMs: e.START_GRACE_SECONDS * 1000,
  };
}

export function configurePoolEnvironment(s: ConfigurePoolSettings): Record<string, string> {
  return { TABLE_NAME: s.tableName, TASK_VCPU: String(s.taskVcpu) };
}

const configurePoolVariables = z.object({ TABLE_NAME: z.string().min(1), TASK_VCPU: positiveNumber });

export function configurePoolSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ConfigurePoolSettings {
  const e = settingsFromEnv(configurePoolVariables, env);
  return { tableName: e.TABLE_NAME, taskVcpu: e.TASK_VCPU };
}
