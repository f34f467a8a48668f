import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * A scenario: what arrives, how tasks behave, the account's limits, and overrides of the stage's limiter.
 * Unknown fields and bad values are rejected with the path and the allowed range.
 */
const probability = z.number().min(0, 'must be a probability from 0 to 1').max(1, 'must be a probability from 0 to 1');
const positive = (what: string) => z.number().gt(0, `must be above 0 (${what})`);
const wholeAtLeast = (min: number) => z.number().int(`must be a whole number ≥ ${min}`).min(min, `must be a whole number ≥ ${min}`);
const bucket = (burst: number, refill: number) =>
  z
    .strictObject({ burst: wholeAtLeast(1).default(burst), refillPerSecond: positive('tokens per second').default(refill) })
    .default({ burst, refillPerSecond: refill });

/**
 * Other workloads' vCPU in one Fargate class, from each time on (a step function; 0 before the first step). Sorted
 * by time, each time once: a list that is not is refused rather than reordered.
 */
const backgroundSteps = z
  .array(z.strictObject({ atSeconds: z.number().min(0, 'must be ≥ 0 seconds'), vcpu: z.number().min(0, 'must be ≥ 0 vCPU') }))
  .superRefine((steps, ctx) => {
    for (let i = 1; i < steps.length; i++) {
      if (steps[i].atSeconds <= steps[i - 1].atSeconds) {
        ctx.addIssue({
          code: 'custom',
          path: [i, 'atSeconds'],
          message: `must be after the previous step's atSeconds (${steps[i - 1].atSeconds}): list the steps in time order, each time once`,
        });
      }
    }
  });

const lognormal = z.strictObject({
  kind: z.literal('lognormal'),
  medianSeconds: positive('seconds'),
  sigma: z.number().min(0, 'sigma must be 0–3').max(3, 'sigma must be 0–3'),
});

const duration = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('fixed'), seconds: positive('seconds') }),
    z
      .strictObject({ kind: z.literal('uniform'), minSeconds: positive('seconds'), maxSeconds: positive('seconds') })
      .refine((d) => d.maxSeconds >= d.minSeconds, { message: 'maxSeconds must be ≥ minSeconds', path: ['maxSeconds'] }),
    lognormal,
  ],
  "kind must be 'fixed', 'uniform' or 'lognormal'",
);

/**
 * RunTask → RUNNING when unset: a private-subnet pull of a small image (sluice's worker is node bookworm-slim and a
 * bundle, well under 250 MB) takes "20-40 seconds when pulling images from within a VPC" (aws/containers-roadmap
 * issue 358) and ~60 s at 250 MB (issue 696). A
 * median of 35 s with sigma 0.3 puts 90 % of tasks between 21 and 57 s.
 */
export const DEFAULT_STARTUP = { kind: 'lognormal', medianSeconds: 35, sigma: 0.3 } as const;

/** Seconds, or a lognormal; a number is every task's start-up (0: instant start, the twin before start-up counted). */
const startup = z.union([z.number().min(0, 'must be 0–600 seconds').max(600, 'must be 0–600 seconds'), lognormal], {
  error: "must be a number of seconds (0–600) or { kind: 'lognormal', medianSeconds, sigma }",
});

const DEFAULT_DURATION = { kind: 'fixed', seconds: 300 } as const;

const objects = z
  .strictObject({
    /** Objects uploaded at t = 0. */
    burst: wholeAtLeast(0).default(0),
    /** Objects uploaded at a steady rate from t = 0. */
    steady: z.strictObject({ count: wholeAtLeast(1), ratePerSecond: positive('objects per second') }).optional(),
  })
  .refine((o) => o.burst + (o.steady?.count ?? 0) > 0, 'must bring at least one object (burst or steady.count)');

/**
 * One stream of uploads to one route: the top-level objects, task and rates, for that route's prefix. Its
 * start-up defaults to the top-level task's, its rates to the top-level rates.
 */
const workload = z.strictObject({
  /** The name of one of overrides.routes; without routes (the stage's one queue), a name for the stream. */
  route: z.string().regex(/^[a-z][a-z0-9-]{0,23}$/, 'must be a route name: 1–24 lowercase letters, digits or dashes, starting with a letter'),
  objects,
  task: z.strictObject({ duration, startupSeconds: startup.optional() }),
  /** The rates that belong to an object or its task (the others are the account's: top-level only). */
  rates: z.strictObject({ failure: probability.optional(), badInput: probability.optional(), poison: probability.optional() }).optional(),
});

/**
 * One route of the stage, as the scenario gives it: mapped to the stage schema's route (`prefix` is its
 * inputPrefix) and validated by it when the stage is built. A `task` is the route's own task size (its own task
 * definition); without one the route runs the stage's.
 */
const route = z.strictObject({
  name: z.string(),
  prefix: z.string(),
  share: z.number(),
  priority: z.number(),
  maxVcpu: z.number().optional(),
  reservedVcpu: z.number().optional(),
  task: z.strictObject({ cpu: z.number(), memoryMiB: z.number() }).optional(),
  /** Objects one of its tasks runs (the stage schema's `packing.objectsPerTask` of the route). */
  objectsPerTask: z.number().optional(),
});

const scenarioFields = z.strictObject({
  description: z.string().optional(),
  /** Seed of every random draw: the same seed gives the same run. */
  seed: wholeAtLeast(0).default(1),
  /** What arrives, for a stage taking one stream (or give `workloads`, one per route). */
  objects: objects.optional(),
  /** Streams of uploads, one per route, instead of `objects`: each under its route's prefix, with its own tasks. */
  workloads: z.array(workload).min(1, 'must list at least one workload (or give objects instead)').optional(),
  task: z
    .strictObject({
      /** vCPU of one task; defaults to the stage's task.cpu / 1024. */
      vcpu: z
        .number()
        .refine((v) => [0.25, 0.5, 1, 2, 4, 8, 16].includes(v), 'must be a Fargate size: 0.25, 0.5, 1, 2, 4, 8 or 16')
        .optional(),
      /** How long each task runs (300 s when unset); with `workloads`, each workload gives its own. */
      duration: duration.optional(),
      /** RunTask → RUNNING (PROVISIONING, image pull), drawn per task; vCPU is held meanwhile. A workload may give its own. */
      startupSeconds: startup.default(DEFAULT_STARTUP),
    })
    .default({ startupSeconds: DEFAULT_STARTUP }),
  rates: z
    .strictObject({
      /** Per attempt: the task exits 75 (transient). */
      failure: probability.default(0),
      /** Per object: the task always exits 65 (bad input). */
      badInput: probability.default(0),
      /** Per Spot task: interrupted (SIGTERM, exit 75, StopCode SpotInterruption). */
      spotInterruption: probability.default(0),
      /** Per event: EventBridge delivers it twice. */
      duplicate: probability.default(0),
      /** Per object: its event is not for this pipeline (another bucket) — the intake must dead-letter it. */
      poison: probability.default(0),
      /** Per accepted RunTask: `failures[]` "Capacity is unavailable…". */
      capacityError: probability.default(0),
      /** Per accepted RunTask on FARGATE_SPOT, besides `capacityError`: the same answer, Spot's pool empty while On-Demand's is not. */
      spotCapacityError: probability.default(0),
      /**
       * Per RunTask call: ECS.InvalidParameterException "Error retrieving security group information … Request limit
       * exceeded." — ECS's own EC2 calls throttled, which RunTask reports as a bad parameter.
       */
      invalidParameter: probability.default(0),
    })
    .default({ failure: 0, badInput: 0, spotInterruption: 0, duplicate: 0, poison: 0, capacityError: 0, spotCapacityError: 0, invalidParameter: 0 }),
  /** Other workloads in the account: their vCPU per Fargate class over time (counted against the same quotas). */
  background: z
    .strictObject({
      /** FARGATE (Service Quotas L-3032A538, AWS/Usage Class Standard/OnDemand). */
      onDemand: backgroundSteps.default([]),
      /** FARGATE_SPOT (L-36FBB829, Standard/Spot). */
      spot: backgroundSteps.default([]),
    })
    .default({ onDemand: [], spot: [] }),
  /** Failures injected into the pipeline's own moving parts (each a probability; see twin/engines/faults.ts). */
  faults: z
    .strictObject({
      /** Per dispatcher invocation: it dies between two of its AWS calls. */
      dispatcherCrash: probability.default(0),
      /** Per janitor invocation: the same. */
      janitorCrash: probability.default(0),
      /** Per StartExecution call from the functions: a 5xx (ServiceUnavailable) before it reaches Step Functions. */
      startExecutionError: probability.default(0),
      /** Per StartExecution call: it creates the execution, and the answer is lost (a 5xx all the same). */
      startExecutionLostAnswer: probability.default(0),
      /** Per DynamoDB request: ProvisionedThroughputExceededException. */
      dynamodbThrottle: probability.default(0),
    })
    .default({ dispatcherCrash: 0, janitorCrash: 0, startExecutionError: 0, startExecutionLostAnswer: 0, dynamodbThrottle: 0 }),
  quotas: z
    .strictObject({
      /**
       * The emulated ACCOUNT's "Fargate On-Demand vCPU resource count" (L-3032A538); defaults to the stage's
       * accountVcpuQuota. The stage's own setting is not derived from it (see overrides.accountVcpuQuota).
       */
      fargateVcpu: positive('vCPU').optional(),
      /** The account's "Fargate Spot vCPU resource count" (L-36FBB829); defaults to fargateVcpu. */
      fargateSpotVcpu: positive('vCPU').optional(),
      /** ECS RunTask/StartTask/StopTask bucket. */
      ecsApi: bucket(100, 40),
      /** Fargate RunTask calls per second (burst and sustained). */
      fargateRunTaskPerSecond: positive('calls per second').default(20),
      /** Fargate task launches. */
      fargateLaunch: bucket(100, 20),
      /** Step Functions StartExecution. */
      startExecution: bucket(1300, 300),
    })
    .default({
      ecsApi: { burst: 100, refillPerSecond: 40 },
      fargateRunTaskPerSecond: 20,
      fargateLaunch: { burst: 100, refillPerSecond: 20 },
      startExecution: { burst: 1300, refillPerSecond: 300 },
    }),
  /** Overrides of the stage's capacity settings (validated with the stage schema). */
  overrides: z
    .strictObject({
      /** The stage config's capacity.accountVcpuQuota (what the stage believes; the account's is quotas.*). */
      accountVcpuQuota: wholeAtLeast(1).optional(),
      vcpuBudget: positive('vCPU').optional(),
      launchRatePerSecond: positive('launches per second').optional(),
      launchBurst: wholeAtLeast(1).optional(),
      mapMaxConcurrency: wholeAtLeast(1).optional(),
      jobsPerExecution: wholeAtLeast(1).optional(),
      batchWindowSeconds: z.number().optional(),
      /** The stage's task.capacityProviders (validated by the stage schema). */
      capacityProviders: z.array(z.strictObject({ name: z.string(), weight: z.number(), base: z.number() })).optional(),
      /** Objects one task runs (the stage schema's `packing.objectsPerTask`): a packed stage. */
      objectsPerTask: z.number().optional(),
      /** The stage's routes (validated by the stage schema as its `routes`, `prefix` as their inputPrefix). */
      routes: z.array(route).optional(),
    })
    .default({}),
  /** Stop the run after this much virtual time (what is unfinished then counts as lost). */
  maxVirtualSeconds: positive('seconds').default(14 * 24 * 3600),
});

type ScenarioFields = z.output<typeof scenarioFields>;

/**
 * One stream (objects) or one per route (workloads), never both; a routed stage takes its uploads per route, and a
 * workload names one of its routes.
 */
function checkStreams(s: ScenarioFields, ctx: z.RefinementCtx): void {
  const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  if (s.objects && s.workloads) issue(['workloads'], 'give either objects (one stream) or workloads (one per route), not both');
  if (!s.objects && !s.workloads) issue(['objects'], 'is required: give objects, or workloads (one per route)');
  if (s.workloads && s.task.duration) issue(['task', 'duration'], 'must be unset with workloads: each workload gives its own task.duration');
  const routes = s.overrides.routes;
  if (!routes) return;
  if (s.objects) issue(['objects'], 'must be workloads when overrides.routes is set: each workload names the route its objects go to');
  const names = routes.map((r) => r.name);
  s.workloads?.forEach((w, index) => {
    if (!names.includes(w.route))
      issue(['workloads', index, 'route'], `must be one of overrides.routes (${names.map((n) => `'${n}'`).join(', ')}), got '${w.route}'`);
  });
}

const scenarioSchema = scenarioFields
  .superRefine(checkStreams)
  .transform((s) => ({ ...s, task: { ...s.task, duration: s.task.duration ?? DEFAULT_DURATION } }));

export type Scenario = z.output<typeof scenarioSchema>;

export function parseScenario(input: unknown, source = 'scenario'): Scenario {
  const result = scenarioSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `  - ${issue.path.join('.') || '(root)'}: ${issue.message}`).join('\n');
    throw new Error(`${source} is invalid:\n${problems}`);
  }
  return result.data;
}

export function loadScenario(path: string): Scenario {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: cannot read scenario JSON: ${(error as Error).message}`, { cause: error });
  }
  return parseScenario(raw, path);
}

/** A stream of uploads as the twin draws it: the top-level one, or a workload with the scenario's defaults filled in. */
export interface Workload {
  /** The workload's route (on a stage without routes, its stream's name); undefined for the top-level objects. */
  readonly route?: string;
  readonly objects: z.output<typeof objects>;
  readonly duration: Scenario['task']['duration'];
  readonly startupSeconds: Scenario['task']['startupSeconds'];
  readonly rates: { readonly failure: number; readonly badInput: number; readonly poison: number };
}

export function workloadsOf(scenario: Scenario): Workload[] {
  const { task, rates } = scenario;
  if (!scenario.workloads) return [{ objects: scenario.objects!, duration: task.duration, startupSeconds: task.startupSeconds, rates }];
  return scenario.workloads.map((w) => ({
    route: w.route,
    objects: w.objects,
    duration: w.task.duration,
    startupSeconds: w.task.startupSeconds ?? task.startupSeconds,
    rates: { failure: w.rates?.failure ?? rates.failure, badInput: w.rates?.badInput ?? rates.badInput, poison: w.rates?.poison ?? rates.poison },
  }));
}
