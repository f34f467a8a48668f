/**
 * The stage the explorer runs: dev's configuration made small enough to explore (one or two tasks' budget, batches of
 * one or two, short tasks and few retries), validated by the stage schema and synthesized like any stage, so the state
 * machine, the functions' settings and the queues are the ones that would deploy with those values.
 */
import { ENVIRONMENT_INPUTS, validateEnvironment, type EnvironmentConfig } from '../environments';
import {
  capacitySettingsFromEnv,
  configurePoolSettingsFromEnv,
  dispatcherSettingsFromEnv,
  finisherSettingsFromEnv,
  janitorSettingsFromEnv,
  type CapacitySettings,
  type ConfigurePoolSettings,
  type DispatcherSettings,
  type FinisherSettings,
  type JanitorSettings,
} from '../functions/environment';
import { synthesizeStageJson } from '../synth/stage';
import { readStage, type Stage } from '../twin/synthesized-stage';
import type { TerraformJson } from '../synth/output';

/** What a configuration of the explorer sets; everything else is the dev stage's. */
export interface StageShape {
  /** Concurrent 1-vCPU tasks the budget holds. */
  readonly budgetTasks: number;
  readonly jobsPerExecution: number;
  readonly mapMaxConcurrency: number;
  /** The schema's lowest delay: a capacity requeue visible again after 1 s makes the return's race as wide as it gets. */
  readonly capacityRetryDelaySeconds: number;
  readonly batchWindowSeconds: number;
  /** Two routes: one of half-size tasks capped at one of them, and the stage's own prefix (its queue), which keeps a reserve of one task. */
  readonly routes?: true;
  /** Tasks of two objects each (packing: functions/packing.ts): a lead and an object that holds no vCPU. */
  readonly packed?: true;
}

export const DEFAULT_SHAPE: StageShape = {
  budgetTasks: 2,
  jobsPerExecution: 2,
  mapMaxConcurrency: 2,
  capacityRetryDelaySeconds: 1,
  batchWindowSeconds: 0,
};

/** The default shape with two routes: the first runs half-size tasks, one at most; the second is the stage's own prefix, with a reserve. */
export const ROUTED_SHAPE: StageShape = { ...DEFAULT_SHAPE, routes: true };

/** The default shape with tasks of two objects: an admission of two tasks leases four objects. */
export const PACKED_SHAPE: StageShape = { ...DEFAULT_SHAPE, packed: true };

/** The shape a search or a counterexample names. */
export function shapeOf(found: { readonly routes?: boolean; readonly packed?: boolean }): StageShape {
  return found.routes ? ROUTED_SHAPE : found.packed ? PACKED_SHAPE : DEFAULT_SHAPE;
}

export interface ExplorerStage {
  readonly config: EnvironmentConfig;
  /** The stage as synthesized (its IAM policies, for checking what the actors call). */
  readonly json: TerraformJson;
  readonly stage: Stage;
  readonly dispatcher: DispatcherSettings;
  readonly janitor: JanitorSettings;
  readonly capacity: CapacitySettings;
  readonly configurePool: ConfigurePoolSettings;
  /** A stage that packs: its finisher's settings and Lambda timeout. */
  readonly finisher?: { readonly settings: FinisherSettings; readonly name: string; readonly timeoutMs: number };
  /** What `terraform apply` seeds the pool with. */
  readonly seed: { budgetVcpu: number; ratePerSecond: number; burst: number };
  /** The Lambda timeouts (a run past it is killed) and the janitor's schedule, as synthesized. */
  readonly dispatcherTimeoutMs: number;
  readonly janitorTimeoutMs: number;
  readonly janitorPeriodMs: number;
}

export function explorerConfig(shape: StageShape): EnvironmentConfig {
  const dev = ENVIRONMENT_INPUTS.dev;
  return validateEnvironment('dev', {
    ...dev,
    routes: shape.routes
      ? [
          // Its share would give it most of the budget: the cap is what holds it to one of its half-size tasks (its own
          // task definition, so the stage's counters hold mixed sizes).
          { name: 'capped', inputPrefix: 'capped/', share: 3, maxVcpu: 0.5, task: { cpu: 512, memoryMiB: 1024 } },
          { name: 'default', inputPrefix: dev.bucket.inputPrefix, share: 1, reservedVcpu: 1 },
        ]
      : undefined,
    ...(shape.packed ? { packing: { objectsPerTask: 2 } } : {}),
    capacity: {
      ...dev.capacity,
      vcpuBudget: shape.budgetTasks,
      jobsPerExecution: shape.jobsPerExecution,
      mapMaxConcurrency: shape.mapMaxConcurrency,
      launchRatePerSecond: 2,
      launchBurst: 4,
      batchWindowSeconds: shape.batchWindowSeconds,
      capacityRetryDelaySeconds: shape.capacityRetryDelaySeconds,
    },
    // Both capacity classes, as stg and prod: every admission places its batch in one.
    task: {
      ...dev.task,
      timeoutSeconds: 300,
      capacityProviders: [
        { name: 'FARGATE', weight: 1, base: 0 },
        { name: 'FARGATE_SPOT', weight: 1, base: 0 },
      ],
    },
    retry: {
      ecsApi: { intervalSeconds: 2, maxAttempts: 2, backoffRate: 2, maxDelaySeconds: 10 },
      taskFailed: { intervalSeconds: 5, maxAttempts: 1, backoffRate: 2, maxDelaySeconds: 10 },
    },
  } as typeof dev);
}

/** Synthesizes the explorer's stage (seconds: once per process) and reads what the actors need from it. */
export function explorerStage(shape: StageShape = DEFAULT_SHAPE): ExplorerStage {
  const config = explorerConfig(shape);
  const json = synthesizeStageJson(config);
  const stage = readStage(json);
  return {
    config,
    json,
    stage,
    dispatcher: dispatcherSettingsFromEnv(stage.dispatcher.env),
    janitor: janitorSettingsFromEnv(stage.janitor.env),
    capacity: capacitySettingsFromEnv(stage.capacity.env),
    configurePool: configurePoolSettingsFromEnv(stage.configurePool.env),
    ...(stage.finisher
      ? { finisher: { settings: finisherSettingsFromEnv(stage.finisher.env), name: stage.finisher.name, timeoutMs: stage.finisher.timeoutSeconds * 1000 } }
      : {}),
    seed: stage.configurePool.seed as ExplorerStage['seed'],
    dispatcherTimeoutMs: stage.dispatcher.timeoutSeconds * 1000,
    janitorTimeoutMs: stage.janitor.timeoutSeconds * 1000,
    janitorPeriodMs: janitorPeriodSeconds(stage) * 1000,
  };
}

/** The janitor's schedule: the scheduled rule that targets it. */
function janitorPeriodSeconds(stage: Stage): number {
  const rule = stage.rules.find((r) => r.everySeconds !== undefined && r.targets.some((t) => t.kind === 'function' && t.functionName === stage.janitor.name));
  if (!rule?.everySeconds) throw new Error('explorer: the synthesized stage has no schedule for the janitor');
  return rule.everySeconds;
}
