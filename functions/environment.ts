/**
 * What each handler is configured with, and the Lambda environment that carries it: one table per function family
 * names each setting's variable once and says how its value is written and read. The stack writes the environment
 * with `…Environment(settings)`, the handler reads it back with `…SettingsFromEnv()`. Kept free of AWS SDK imports:
 * synth loads this file.
 */
import { z } from 'zod';
import { CAPACITY_CLASSES, type CapacityClass } from './capacity-codes';
import { placeableClasses, type ClassWeights } from './placement';
import { MAX_OBJECTS_PER_TASK } from './packing';
import type { RouteSettings } from './routes';
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
  /** The capacity classes batches may be placed in, and the split the stage keeps while both have room. */
  readonly capacityWeights: ClassWeights;
  /** The stage's routes, each with its own intake queue (absent: one route, the intake queue above). */
  readonly routes?: readonly RouteSettings[];
  /** Objects one task runs, without routes (functions/packing.ts); unset: 1, a task per object. */
  readonly objectsPerTask?: number;
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
  /** The stage's routes: a job goes back to its route's queue (absent: the intake queue above). */
  readonly routes?: readonly RouteSettings[];
}

/** The packed-task finisher (functions/finish-task.ts): where it records each object's end and sends objects back. */
export interface FinisherSettings {
  readonly tableName: string;
  readonly batchesTableName: string;
  /** Where an object goes back without routes (with routes: its job's intakeQueueUrl). */
  readonly queueUrl: string;
  /** How long an object given back for lack of capacity waits in the intake queue (the state machine's DelaySeconds). */
  readonly capacityRetryDelaySeconds: number;
  /** Rounds a job may end without a result before it is failed (the janitor's too). */
  readonly maxExecutionAttempts: number;
}

export interface CapacitySettings {
  readonly tableName: string;
  /** The capacity providers' weights: the classes the stage places tasks in (those above 0). */
  readonly weights: ClassWeights;
}

export interface ConfigurePoolSettings {
  readonly tableName: string;
  /** One task's vCPU and a batch's size: what a budget means in tasks and transactions, so one past the limits is refused. */
  readonly taskVcpu: number;
  readonly jobsPerExecution: number;
  /** The stage's Fargate vCPU quota (environments/<stage>.ts): no budget above it. */
  readonly accountVcpuQuota: number;
  /** The most objects one of its tasks runs (a lease each; unset: 1). */
  readonly objectsPerTask?: number;
}

/** One setting in a Lambda environment variable: the variable's name, and how its value is written and read back. */
interface Variable<T> {
  readonly name: string;
  /** Undefined leaves the variable out (an optional setting a stage does not use changes nothing in its environment). */
  readonly write: (value: T) => string | undefined;
  /** Reads the variable's text; a missing or bad one names itself. */
  readonly read: z.ZodType<T>;
}

/** A family's settings, each with its variable. The table's order is the environment's. */
type Table<S> = { readonly [K in keyof S]-?: Variable<S[K]> };

const text = (name: string, read: z.ZodType<string> = z.string().min(1)): Variable<string> => ({ name, write: (value) => value, read });
/** Empty when absent: the environment carries every variable. */
const optionalText = (name: string): Variable<string | undefined> => ({
  name,
  write: (value) => value ?? '',
  read: z
    .string()
    .optional()
    .transform((value) => value || undefined),
});
const number = (name: string, read: z.ZodType<number>): Variable<number> => ({ name, write: String, read });
/** A duration kept in milliseconds, carried in whole seconds. */
const seconds = (name: string, read: z.ZodType<number> = positiveInt): Variable<number> => ({
  name,
  write: (ms) => String(ms / 1000),
  read: read.transform((s) => s * 1000),
});

function environmentOf<S>(table: Table<S>, settings: S): Record<string, string> {
  return Object.fromEntries(
    (Object.keys(table) as Array<keyof S>).flatMap((key) => {
      const value = table[key].write(settings[key]);
      return value === undefined ? [] : [[table[key].name, value]];
    }),
  );
}

function settingsOf<S>(table: Table<S>, env: NodeJS.ProcessEnv): S {
  const keys = Object.keys(table) as Array<keyof S>;
  const variables = settingsFromEnv(z.object(Object.fromEntries(keys.map((key) => [table[key].name, table[key].read]))), env) as Record<string, unknown>;
  return Object.fromEntries(keys.map((key) => [key, variables[table[key].name]])) as S;
}

/** The capacity providers' weights, as JSON: `{"FARGATE":1,"FARGATE_SPOT":3}`. */
function capacityWeights(): Variable<ClassWeights> {
  return {
    name: 'CAPACITY_WEIGHTS',
    write: (weights) => JSON.stringify(weights),
    read: z.string().transform((json, ctx) => {
      try {
        const weights = z.partialRecord(z.enum(CAPACITY_CLASSES as [CapacityClass, ...CapacityClass[]]), z.number().min(0)).parse(JSON.parse(json));
        if (placeableClasses(weights).length > 0) return weights;
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: 'must be JSON like {"FARGATE":1,"FARGATE_SPOT":3}, with a weight above 0' });
      return z.NEVER;
    }),
  };
}

const routeSettings = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,23}$/),
  queueUrl: z.string().url(),
  inputPrefix: z.string().min(1),
  inputSuffix: z.string().min(1).optional(),
  share: z.number().gt(0),
  priority: z.number().int().min(0),
  maxVcpu: z.number().gt(0).optional(),
  reservedVcpu: z.number().gt(0).optional(),
  taskVcpu: z.number().gt(0),
  taskDefinitionArn: z.string().startsWith('arn:').optional(),
  objectsPerTask: z.number().int().min(1).max(MAX_OBJECTS_PER_TASK).optional(),
});

/** Objects per task; the variable is absent at 1 (a stage that does not pack keeps its environment). */
function objectsPerTask(): Variable<number | undefined> {
  return {
    name: 'OBJECTS_PER_TASK',
    write: (value) => (value === undefined || value === 1 ? undefined : String(value)),
    read: z
      .string()
      .optional()
      .transform((text, ctx) => {
        if (text === undefined || text === '') return undefined;
        const parsed = z.coerce.number().int().min(1).max(MAX_OBJECTS_PER_TASK).safeParse(text);
        if (parsed.success) return parsed.data;
        ctx.addIssue({ code: 'custom', message: `must be a whole number from 1 to ${MAX_OBJECTS_PER_TASK}` });
        return z.NEVER;
      }),
  };
}

/** The routes, as JSON; the variable is absent when the stage has none. */
function routes(): Variable<readonly RouteSettings[] | undefined> {
  return {
    name: 'ROUTES',
    write: (value) => (value === undefined ? undefined : JSON.stringify(value)),
    read: z
      .string()
      .optional()
      .transform((json, ctx) => {
        if (json === undefined || json === '') return undefined;
        try {
          return z.array(routeSettings).min(1).parse(JSON.parse(json));
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be a JSON list of routes: [{"name","queueUrl","inputPrefix","share","priority","taskVcpu"}]' });
          return z.NEVER;
        }
      }),
  };
}

const DISPATCHER: Table<DispatcherSettings> = {
  queueUrl: text('QUEUE_URL', z.string().url()),
  deadLetterQueueUrl: text('DEAD_LETTER_QUEUE_URL', z.string().url()),
  tableName: text('TABLE_NAME'),
  batchesTableName: text('BATCHES_TABLE_NAME'),
  stateMachineArn: text('STATE_MACHINE_ARN', z.string().startsWith('arn:')),
  bucketName: text('BUCKET_NAME'),
  inputPrefix: text('INPUT_PREFIX'),
  inputSuffix: optionalText('INPUT_SUFFIX'),
  taskVcpu: number('TASK_VCPU', positiveNumber),
  jobsPerExecution: number('JOBS_PER_EXECUTION', positiveInt),
  leaseSeconds: number('LEASE_SECONDS', positiveInt),
  maxRunMs: seconds('MAX_RUN_SECONDS'),
  batchWindowMs: number('BATCH_WINDOW_MS', nonNegativeInt),
  startGraceMs: seconds('START_GRACE_SECONDS'),
  capacityWeights: capacityWeights(),
  routes: routes(),
  objectsPerTask: objectsPerTask(),
};

export function dispatcherEnvironment(s: DispatcherSettings): Record<string, string> {
  return environmentOf(DISPATCHER, s);
}

export function dispatcherSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): DispatcherSettings {
  return settingsOf(DISPATCHER, env);
}

const JANITOR: Table<JanitorSettings> = {
  tableName: text('TABLE_NAME'),
  batchesTableName: text('BATCHES_TABLE_NAME'),
  queueUrl: text('QUEUE_URL', z.string().url()),
  stateMachineArn: text('STATE_MACHINE_ARN', z.string().startsWith('arn:')),
  dispatcherFunctionName: text('DISPATCHER_FUNCTION_NAME'),
  maxExecutionAttempts: number('MAX_EXECUTION_ATTEMPTS', positiveInt),
  startGraceMs: seconds('START_GRACE_SECONDS'),
  stopGraceMs: seconds('STOP_GRACE_SECONDS', nonNegativeInt),
  routes: routes(),
};

export function janitorEnvironment(s: JanitorSettings): Record<string, string> {
  return environmentOf(JANITOR, s);
}

export function janitorSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): JanitorSettings {
  return settingsOf(JANITOR, env);
}

const FINISHER: Table<FinisherSettings> = {
  tableName: text('TABLE_NAME'),
  batchesTableName: text('BATCHES_TABLE_NAME'),
  queueUrl: text('QUEUE_URL', z.string().url()),
  capacityRetryDelaySeconds: number('CAPACITY_RETRY_DELAY_SECONDS', positiveInt),
  maxExecutionAttempts: number('MAX_EXECUTION_ATTEMPTS', positiveInt),
};

export function finisherEnvironment(s: FinisherSettings): Record<string, string> {
  return environmentOf(FINISHER, s);
}

export function finisherSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): FinisherSettings {
  return settingsOf(FINISHER, env);
}

const CAPACITY: Table<CapacitySettings> = {
  tableName: text('TABLE_NAME'),
  weights: capacityWeights(),
};

export function capacityEnvironment(s: CapacitySettings): Record<string, string> {
  return environmentOf(CAPACITY, s);
}

export function capacitySettingsFromEnv(env: NodeJS.ProcessEnv = process.env): CapacitySettings {
  return settingsOf(CAPACITY, env);
}

const CONFIGURE_POOL: Table<ConfigurePoolSettings> = {
  tableName: text('TABLE_NAME'),
  taskVcpu: number('TASK_VCPU', positiveNumber),
  jobsPerExecution: number('JOBS_PER_EXECUTION', positiveInt),
  accountVcpuQuota: number('ACCOUNT_VCPU_QUOTA', positiveNumber),
  objectsPerTask: objectsPerTask(),
};

export function configurePoolEnvironment(s: ConfigurePoolSettings): Record<string, string> {
  return environmentOf(CONFIGURE_POOL, s);
}

export function configurePoolSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ConfigurePoolSettings {
  return settingsOf(CONFIGURE_POOL, env);
}
