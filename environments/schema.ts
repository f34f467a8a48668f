import { z } from 'zod';
import {
  FARGATE_CPU_UNITS,
  FARGATE_LAUNCHES_PER_SECOND,
  FARGATE_MAX_STOP_TIMEOUT_SECONDS,
  INLINE_MAP_MAX_CONCURRENCY,
  describeMemoryRange,
  fargateMemoryChoices,
  vcpuOf,
} from './fargate';
import { poolProblems } from '../functions/limits';
import { INTAKE_RETENTION_SECONDS } from '../functions/jobs';
import { MAX_OBJECTS_PER_TASK } from '../functions/packing';

const INTAKE_RETENTION_DAYS = INTAKE_RETENTION_SECONDS / 86_400;

/** CloudWatch Logs accepts only these retention periods (PutRetentionPolicy). */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

/**
 * Prefixes and suffixes are matched by the EventBridge rule against the key as S3 delivers it, which may be
 * URL-encoded: only characters encoding leaves as they are (letters, digits, _ . - /) match either way.
 */
const s3Prefix = z
  .string()
  .regex(
    /^[A-Za-z0-9_./-]+\/$/,
    "must be a non-empty S3 prefix of letters, digits, '_', '.', '-' and '/' ending in '/' (characters URL encoding keeps, so the rule matches however S3 encodes the key)",
  );

/** A key suffix the rule matches after the prefix, e.g. '.csv'. */
const s3Suffix = z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, "must be 1–32 letters, digits, '_', '.' or '-' (characters URL encoding keeps)");

const intIn = (min: number, max: number) =>
  z
    .number()
    .int(`must be a whole number from ${min} to ${max}`)
    .min(min, `must be a whole number from ${min} to ${max}`)
    .max(max, `must be a whole number from ${min} to ${max}`);

const numberIn = (min: number, max: number, what = `a number from ${min} to ${max}`) => z.number().min(min, `must be ${what}`).max(max, `must be ${what}`);

const retryPolicy = (maxAttempts: number) =>
  z.strictObject({
    intervalSeconds: intIn(1, 300),
    maxAttempts: intIn(0, maxAttempts),
    backoffRate: numberIn(1, 10),
    maxDelaySeconds: intIn(1, 3600),
  });

const capacityProvider = z.strictObject({
  name: z.enum(['FARGATE', 'FARGATE_SPOT'], "must be 'FARGATE' or 'FARGATE_SPOT'"),
  weight: intIn(0, 1000),
  /**
   * Must be 0. ECS counts a base per service ("for each service", CapacityProviderStrategyItem); a standalone
   * RunTask is placed on its own, and sluice starts one task per call, so any base sends every task to its provider.
   */
  base: z.literal(
    0,
    'must be 0: sluice starts one task per RunTask call and ECS applies a base per call, so a base above 0 sends every task to that provider; split with weight instead',
  ),
});

const createdNetwork = z.strictObject({
  kind: z.literal('create'),
  cidr: z
    .string()
    .regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(1[6-9]|2[0-4])$/, 'must be an IPv4 CIDR block from /16 to /24, e.g. 10.42.0.0/16'),
  availabilityZones: z
    .array(z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$/, 'must be an AZ name like eu-west-1a'))
    .length(2, 'must list exactly two availability zones'),
});

const existingNetwork = z.strictObject({
  kind: z.literal('existing'),
  vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/, 'must be a VPC id like vpc-0123456789abcdef0'),
  privateSubnetIds: z
    .array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'must be a subnet id like subnet-0123456789abcdef0'))
    .min(1, 'must list at least one private subnet (two or more zones recommended)'),
});

const tags = z.record(z.string(), z.string().max(256, 'tag values are at most 256 characters')).superRefine((record, ctx) => {
  for (const key of Object.keys(record)) {
    if (key.length < 1 || key.length > 128 || key.toLowerCase().startsWith('aws:')) {
      ctx.addIssue({ code: 'custom', path: [key], message: "tag keys are 1–128 characters and may not start with 'aws:' (reserved by AWS)" });
    }
  }
});

/** The task's CPU units; the memory it may have depends on them (checkTaskMemory). */
const taskCpu = z.number().refine((cpu) => FARGATE_CPU_UNITS.includes(cpu), `must be one of ${FARGATE_CPU_UNITS.join(', ')} CPU units`);
const taskMemoryMiB = z.number().int('must be a whole number of MiB');
const ephemeralStorageGiB = intIn(21, 200);
const imageTag = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'must be a Docker tag (letters, digits, _ . -, at most 128)')
  .optional();
const imageDigest = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>')
  .optional();
const oneOfTagOrDigest = (image: { tag?: string; digest?: string }) => (image.tag === undefined) !== (image.digest === undefined);

/** Longest a task may run; also how long a lease lives before it expires by itself. */
const taskTimeoutSeconds = intIn(60, 7 * 24 * 3600);

/**
 * A route's own task: its jobs run on a task definition of its own, of this size (and image, and timeout).
 * Architecture, capacity providers and stop timeout stay the stage's.
 */
const routeTask = z.strictObject({
  cpu: taskCpu,
  memoryMiB: taskMemoryMiB,
  /** Unset: the stage's. */
  timeoutSeconds: taskTimeoutSeconds.optional(),
  /** Unset: the stage's. */
  ephemeralStorageGiB: ephemeralStorageGiB.optional(),
  /** A tag or digest in the stage's repository; unset: the stage's image. */
  image: z.strictObject({ tag: imageTag, digest: imageDigest }).refine(oneOfTagOrDigest, 'set exactly one of tag or digest').optional(),
});

/**
 * Packing (functions/packing.ts): a task runs up to `objectsPerTask` objects one after another, so short jobs pay a
 * task's start-up once per task rather than once per object. Every object keeps its own ledger row, result and error.
 */
const objectsPerTaskAllowed = `must be a whole number from 1 to ${MAX_OBJECTS_PER_TASK}`;
const packing = z.strictObject({
  /** 1: a task per object. At most what one admission's transaction holds beside its own items. */
  objectsPerTask: z
    .number(objectsPerTaskAllowed)
    .int(objectsPerTaskAllowed)
    .min(1, objectsPerTaskAllowed)
    .max(MAX_OBJECTS_PER_TASK, `${objectsPerTaskAllowed}: every object of a task is admitted in one DynamoDB transaction`),
});

/**
 * The routes travel in the dispatcher's and janitor's environment, which Lambda caps at 4 KB in all: each route with
 * its queue's URL, its task definition's ARN and its objects per task, some 460 bytes at the longest names; the
 * dispatcher's whole environment 3.3 KB at the most routes (__tests__/modules/routes.test.ts).
 */
export const MAX_ROUTES = 6;

/**
 * One route of a stage: the uploads under its prefix (and with its suffix) wait in a queue of their own and share the
 * stage's vCPU budget with the other routes by weight, a higher priority class admitted first. The route named
 * `default` keeps the stage's own intake queue and rule.
 */
const route = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,23}$/, 'must be 1–24 lowercase letters, digits or dashes, starting with a letter'),
  inputPrefix: s3Prefix,
  inputSuffix: s3Suffix.optional(),
  /** A weight: the routes' shares are relative to each other. */
  share: z.number().gt(0, 'must be above 0 (a weight: shares are relative to the other routes)'),
  /** A higher class is admitted first; 0 by default. */
  priority: intIn(0, 9).default(0),
  /** A hard cap on the vCPU the route's jobs hold at once. */
  maxVcpu: z.number().gt(0, "must be at least one task's vCPU and at most capacity.vcpuBudget").optional(),
  /** vCPU kept for the route while it does not use them: never lent to other routes. */
  reservedVcpu: z.number().gt(0, "must be at least one task's vCPU, at most the route's maxVcpu and, with the others', the budget").optional(),
  /** Unset: the route runs the stage's task. */
  task: routeTask.optional(),
  /** Unset: the stage's packing. */
  packing: packing.optional(),
});

const environmentFields = z.strictObject({
  /** Stage name: the stack is `sluice-<stage>`. */
  stage: z.string().regex(/^[a-z][a-z0-9]{1,9}$/, 'must be 2–10 lowercase letters or digits, starting with a letter'),
  account: z.strictObject({
    id: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
    region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'must be an AWS Region code like eu-west-1'),
  }),
  /**
   * Whether `terraform destroy` may remove the stage with its data: the state table without deletion protection,
   * the bucket and the image repository emptied first. False keeps them (AWS refuses the destroy);
   * `npm run teardown` lifts it for one deliberate teardown.
   */
  allowDestroy: z.boolean('must be true or false'),
  /** Prefix of every resource name of this stage. */
  namePrefix: z.string().regex(/^[a-z][a-z0-9-]{2,20}[a-z0-9]$/, 'must be 4–22 lowercase letters, digits or dashes'),
  tags,
  bucket: z.strictObject({
    inputPrefix: s3Prefix,
    /** Only keys ending with this are processed, e.g. '.csv'. Unset on a stage with routes: each route has its own. */
    inputSuffix: s3Suffix.optional(),
    resultsPrefix: s3Prefix,
    resultsRetentionDays: intIn(1, 3650),
    /**
     * How long an overwritten upload's version is kept. At least the intake queue's 14 days: a job may wait that long
     * for its turn (a paused stage), and a version gone before its job runs fails as bad input, beyond any redrive.
     */
    noncurrentVersionRetentionDays: z
      .number()
      .int(`must be a whole number of days from ${INTAKE_RETENTION_DAYS} to 365`)
      .min(
        INTAKE_RETENTION_DAYS,
        `must be at least ${INTAKE_RETENTION_DAYS} days, the intake queue's retention: a job may wait that long, and its version must still be there`,
      )
      .max(365, `must be a whole number of days from ${INTAKE_RETENTION_DAYS} to 365`),
  }),
  capacity: z.strictObject({
    /** The account's "Fargate On-Demand vCPU resource count" quota (L-3032A538) in this Region. */
    accountVcpuQuota: intIn(1, 100000),
    /** vCPU this pipeline may hold at once: a share of the quota left for everything else. */
    vcpuBudget: numberIn(0.25, 100000, 'at least 0.25 vCPU'),
    /** Task launches per second the limiter admits; Fargate launches at most 20/s. */
    launchRatePerSecond: z
      .number()
      .gt(0, `must be above 0 and below ${FARGATE_LAUNCHES_PER_SECOND} (Fargate's launch rate)`)
      .lt(FARGATE_LAUNCHES_PER_SECOND, `must be above 0 and below ${FARGATE_LAUNCHES_PER_SECOND} (Fargate's launch rate)`),
    /**
     * Launch tokens that may accumulate while idle. Fargate's launch bucket bursts to 100, but RunTask
     * itself is capped at 20 calls/s: a larger burst is spent on throttled calls.
     */
    launchBurst: intIn(1, FARGATE_LAUNCHES_PER_SECOND),
    /** Parallel RunTask iterations within one execution (inline Map allows 40). */
    mapMaxConcurrency: intIn(1, INLINE_MAP_MAX_CONCURRENCY),
    /** Admitted jobs handed to one execution. */
    jobsPerExecution: intIn(1, INLINE_MAP_MAX_CONCURRENCY),
    /**
     * How long a batch short of full may wait for more room (releases, launch tokens) before it is admitted as it
     * is; a batch short of budget goes as soon as releases fill it (the dispatcher looks every 100 ms). Jobs that end
     * together start together, and a batch's fixed costs are shared. 0 admits at once.
     */
    batchWindowSeconds: numberIn(0, 10, 'from 0 to 10 seconds'),
    /** How long a job given back for lack of capacity (vCPU limit, no Fargate capacity) waits in the intake queue (SQS allows 900). */
    capacityRetryDelaySeconds: intIn(1, 900),
  }),
  task: z.strictObject({
    cpu: taskCpu,
    memoryMiB: taskMemoryMiB,
    architecture: z.enum(['X86_64', 'ARM64'], "must be 'X86_64' or 'ARM64'"),
    capacityProviders: z.array(capacityProvider).min(1, 'must list FARGATE and/or FARGATE_SPOT').max(2, 'must list FARGATE and/or FARGATE_SPOT'),
    /** Seconds between SIGTERM and SIGKILL; Fargate allows up to 120. */
    stopTimeoutSeconds: intIn(2, FARGATE_MAX_STOP_TIMEOUT_SECONDS),
    timeoutSeconds: taskTimeoutSeconds,
    ephemeralStorageGiB,
  }),
  retry: z.strictObject({
    /** ECS.AmazonECSException / AmazonECS.Unknown: throttling, capacity, failures[]. */
    ecsApi: retryPolicy(20),
    /** States.TaskFailed with a retryable exit code: Spot interruption, transient trouble. */
    taskFailed: retryPolicy(5),
  }),
  intake: z.strictObject({
    /** Receives of one message before SQS moves it to the DLQ. Deferral for capacity never counts. */
    maxReceiveCount: intIn(1, 1000),
    /** EventBridge → SQS delivery retries before the event goes to the rule's DLQ. */
    ruleRetryAttempts: intIn(0, 185),
    ruleMaxEventAgeSeconds: intIn(60, 86400),
    /** Alarm when the oldest queued message is older than this. */
    backlogAlarmAgeSeconds: intIn(60, 1209600),
  }),
  /** Objects a task runs (a route without packing of its own takes this); unset: one. */
  packing: packing.optional(),
  /** Several input prefixes, each with its own intake queue, sharing the budget; unset: one, bucket.inputPrefix. */
  routes: z
    .array(route)
    .min(1, `must list 1 to ${MAX_ROUTES} routes (or leave routes unset)`)
    .max(MAX_ROUTES, `must list 1 to ${MAX_ROUTES} routes`)
    .optional(),
  network: z.discriminatedUnion('kind', [createdNetwork, existingNetwork], "kind must be 'create' or 'existing'"),
  image: z
    .strictObject({
      /** ECR repository the stack creates and the task pulls from. */
      repository: z
        .string()
        .regex(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, 'must be a valid ECR repository name (lowercase)')
        .max(256),
      tag: imageTag,
      digest: imageDigest,
    })
    .refine(oneOfTagOrDigest, 'set exactly one of tag or digest'),
  logRetentionDays: z
    .number()
    .refine(
      (days) => (LOG_RETENTION_DAYS as readonly number[]).includes(days),
      `must be one of ${LOG_RETENTION_DAYS.join(', ')} (CloudWatch Logs retention values)`,
    ),
  alarmEmail: z.email('must be an email address'),
  alarms: z.strictObject({
    /**
     * Alarm when a janitor sweep (every 5 minutes) reclaims more leases than this: each was held for an execution
     * that had ended or never started, capacity kept from waiting work for up to a sweep.
     */
    reclaimedLeasesAbove: intIn(0, 100000),
    /**
     * Alarm when more jobs than this failed (bad input, a task that kept failing, executions that kept dying) in
     * 15 minutes, as the janitor counts them when it settles their batches.
     */
    failedJobsAbove: intIn(0, 1000000),
  }),
  backend: z.strictObject({
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name (3–63 lowercase letters, digits, dots, dashes)'),
    key: z.string().regex(/^[A-Za-z0-9!_.'()/-]+\.tfstate$/, "must be an S3 key ending in '.tfstate'"),
    region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'must be an AWS Region code like eu-west-1'),
  }),
});

type EnvironmentFields = z.output<typeof environmentFields>;
type Route = NonNullable<EnvironmentFields['routes']>[number];
type Ctx = z.RefinementCtx<EnvironmentFields>;

/** Each field valid on its own, then the rules across fields (called in the order their issues are reported). */
export const environmentSchema = environmentFields.superRefine((env, ctx) => {
  checkTaskMemory(env, ctx);
  checkVcpuBudget(env, ctx);
  checkJobsPerExecution(env, ctx);
  checkPrefixesApart(env, ctx);
  checkCapacityProviders(env, ctx);
  checkCreatedNetworkZones(env, ctx);
  checkRetryDelays(env, ctx);
  checkRoutes(env, ctx);
});

/** Fargate accepts only certain memory sizes per CPU size; ECS refuses a task definition with another pair. */
function checkTaskMemory({ task, routes }: EnvironmentFields, ctx: Ctx): void {
  const check = (size: { cpu: number; memoryMiB: number }, path: Array<string | number>) => {
    const choices = fargateMemoryChoices(size.cpu);
    if (choices.length > 0 && !choices.includes(size.memoryMiB)) {
      ctx.addIssue({ code: 'custom', path: [...path, 'memoryMiB'], message: `with cpu ${size.cpu} Fargate accepts ${describeMemoryRange(size.cpu)}` });
    }
  };
  check(task, ['task']);
  routes?.forEach((r, index) => {
    if (r.task) check(r.task, ['routes', index, 'task']);
  });
}

/** The vCPU of one of the route's tasks (routeCpuOf); undefined for a CPU size Fargate does not have (reported on its own). */
function routeTaskVcpu(task: Pick<EnvironmentFields['task'], 'cpu'>, route: Pick<Route, 'task'>): number | undefined {
  const cpu = routeCpuOf(task, route);
  return FARGATE_CPU_UNITS.includes(cpu) ? vcpuOf(cpu) : undefined;
}

/**
 * The budget must fit the account's quota, hold at least one task, and stay within what a janitor sweep and an
 * admission transaction can handle. With routes, the tasks are the routes' (a route's own or the stage's): the budget
 * holds the smallest (checkReserves holds each route to its own), and the sweep's bound counts the smallest.
 */
function checkVcpuBudget(config: EnvironmentFields, ctx: Ctx): void {
  const { task, capacity, routes } = config;
  if (capacity.vcpuBudget > capacity.accountVcpuQuota) {
    ctx.addIssue({
      code: 'custom',
      path: ['capacity', 'vcpuBudget'],
      message: `must not exceed capacity.accountVcpuQuota (${capacity.accountVcpuQuota} vCPU)`,
    });
  }
  // An unknown CPU size is reported by its cpu field; its vCPU is meaningless here.
  const sizes = (routes ?? [{}]).map((r) => routeTaskVcpu(task, r));
  if (sizes.some((vcpu) => vcpu === undefined)) return;
  const smallest = Math.min(...(sizes as number[]));
  if (capacity.vcpuBudget < smallest) {
    ctx.addIssue({
      code: 'custom',
      path: ['capacity', 'vcpuBudget'],
      message: `must be at least one task's vCPU (${smallest}), or nothing is ever admitted`,
    });
  }
  const mostObjects = Math.max(...(routes ?? [undefined]).map((route) => objectsPerTaskOf(config, route)));
  for (const problem of poolProblems(capacity.vcpuBudget, smallest, capacity.jobsPerExecution, mostObjects)) {
    ctx.addIssue({ code: 'custom', path: ['capacity', 'vcpuBudget'], message: `${problem}: lower the budget or run larger tasks` });
  }
}

/** A batch larger than the Map's concurrency leaves admitted jobs waiting while they hold a lease. */
function checkJobsPerExecution({ capacity }: EnvironmentFields, ctx: Ctx): void {
  if (capacity.jobsPerExecution > capacity.mapMaxConcurrency) {
    ctx.addIssue({
      code: 'custom',
      path: ['capacity', 'jobsPerExecution'],
      message: `must not exceed capacity.mapMaxConcurrency (${capacity.mapMaxConcurrency}): an admitted job must not wait inside the Map holding its lease`,
    });
  }
}

/** Results written under the input prefix would be picked up as new uploads. */
function checkPrefixesApart({ bucket }: EnvironmentFields, ctx: Ctx): void {
  if (bucket.resultsPrefix.startsWith(bucket.inputPrefix) || bucket.inputPrefix.startsWith(bucket.resultsPrefix)) {
    ctx.addIssue({
      code: 'custom',
      path: ['bucket', 'resultsPrefix'],
      message: `must not overlap bucket.inputPrefix ('${bucket.inputPrefix}'): results written there would trigger new jobs`,
    });
  }
}

/** A strategy names each provider once, and at least one of them must receive tasks. */
function checkCapacityProviders({ task }: EnvironmentFields, ctx: Ctx): void {
  const providers = task.capacityProviders;
  if (new Set(providers.map((p) => p.name)).size !== providers.length) {
    ctx.addIssue({ code: 'custom', path: ['task', 'capacityProviders'], message: 'must not list a capacity provider twice' });
  }
  if (!providers.some((p) => p.weight > 0)) {
    ctx.addIssue({ code: 'custom', path: ['task', 'capacityProviders'], message: 'at least one provider needs a weight above 0' });
  }
}

/** A VPC the stack creates spans two distinct zones of the stage's Region. */
function checkCreatedNetworkZones({ network, account }: EnvironmentFields, ctx: Ctx): void {
  if (network.kind !== 'create') return;
  network.availabilityZones.forEach((zone, index) => {
    if (!zone.startsWith(account.region)) {
      ctx.addIssue({
        code: 'custom',
        path: ['network', 'availabilityZones', index],
        message: `must be a zone of account.region ${account.region}`,
      });
    }
  });
  if (new Set(network.availabilityZones).size !== network.availabilityZones.length) {
    ctx.addIssue({ code: 'custom', path: ['network', 'availabilityZones'], message: 'must be two different zones' });
  }
}

/** A retry's backoff is capped by maxDelaySeconds: a cap below the first interval contradicts it. */
function checkRetryDelays({ retry }: EnvironmentFields, ctx: Ctx): void {
  for (const policy of ['ecsApi', 'taskFailed'] as const) {
    const { intervalSeconds, maxDelaySeconds } = retry[policy];
    if (maxDelaySeconds < intervalSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['retry', policy, 'maxDelaySeconds'],
        message: `must be at least retry.${policy}.intervalSeconds (${intervalSeconds})`,
      });
    }
  }
}

/**
 * A route's queue is `<namePrefix>-intake-<name>` (environments/names.ts): these names would make it one of the
 * stage's dead-letter queues.
 */
const ROUTE_NAMES_OF_DEAD_LETTER_QUEUES = ['dlq', 'rule-dlq'];

/**
 * Every upload belongs to at most one route: no route's prefix lies inside another's, nor in the results. The stage's
 * own inputPrefix stays one route's (the smoke test uploads there), so a stage takes up routes by keeping its prefix on
 * a route (whatever its name: it keeps the stage's queue and rule) and adding others beside it. Each route has its own suffix, so the stage has none; a cap holds at
 * least one of the route's tasks and fits the budget.
 */
function checkRoutes({ routes, bucket, task, capacity }: EnvironmentFields, ctx: Ctx): void {
  if (routes === undefined) return;
  const issue = (index: number, field: string | undefined, message: string) =>
    ctx.addIssue({ code: 'custom', path: ['routes', index, ...(field ? [field] : [])], message });
  if (bucket.inputSuffix !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['bucket', 'inputSuffix'], message: 'must be unset when the stage has routes: each route has its own inputSuffix' });
  }
  if (!routes.some((r) => r.inputPrefix === bucket.inputPrefix)) {
    ctx.addIssue({
      code: 'custom',
      path: ['bucket', 'inputPrefix'],
      message: `must be the inputPrefix of one of the routes (${routes.map((r) => `'${r.inputPrefix}'`).join(', ')}): the stage's first input, where its smoke test uploads`,
    });
  }
  routes.forEach((r, index) => {
    const earlier = routes.slice(0, index);
    const sameName = earlier.findIndex((other) => other.name === r.name);
    if (sameName >= 0) issue(index, 'name', `must be unique in the stage (routes.${sameName} has the same name)`);
    if (ROUTE_NAMES_OF_DEAD_LETTER_QUEUES.includes(r.name)) {
      issue(
        index,
        'name',
        `must not be ${ROUTE_NAMES_OF_DEAD_LETTER_QUEUES.map((n) => `'${n}'`).join(' or ')}: its queue would take the name of one of the stage's dead-letter queues`,
      );
    }
    if (r.inputPrefix.startsWith(bucket.resultsPrefix) || bucket.resultsPrefix.startsWith(r.inputPrefix)) {
      issue(index, 'inputPrefix', `must not overlap bucket.resultsPrefix ('${bucket.resultsPrefix}'): results written there would trigger new jobs`);
    }
    const overlapping = earlier.findIndex((other) => other.inputPrefix.startsWith(r.inputPrefix) || r.inputPrefix.startsWith(other.inputPrefix));
    if (overlapping >= 0) {
      const other = routes[overlapping];
      issue(
        index,
        'inputPrefix',
        `must not overlap the inputPrefix of routes.${overlapping} ('${other.name}': '${other.inputPrefix}'): a key must belong to exactly one route`,
      );
    }
    const taskVcpu = routeTaskVcpu(task, r);
    if (taskVcpu === undefined) return;
    if (r.maxVcpu !== undefined && (r.maxVcpu < taskVcpu || r.maxVcpu > capacity.vcpuBudget)) {
      issue(index, 'maxVcpu', `must be at least one task's vCPU (${taskVcpu}) and at most capacity.vcpuBudget (${capacity.vcpuBudget})`);
    }
    if (r.reservedVcpu !== undefined && (r.reservedVcpu < taskVcpu || r.reservedVcpu > (r.maxVcpu ?? Infinity))) {
      issue(index, 'reservedVcpu', `must be at least one task's vCPU (${taskVcpu}) and at most the route's maxVcpu (${r.maxVcpu ?? 'none'})`);
    }
  });
  checkReserves(routes, task, capacity, issue, ctx);
}

/** Reserves fit the budget together, and leave every route room for a task beside what the others keep. */
function checkReserves(
  routes: readonly Route[],
  task: EnvironmentFields['task'],
  capacity: EnvironmentFields['capacity'],
  issue: (index: number, field: string | undefined, message: string) => void,
  ctx: Ctx,
): void {
  for (const problem of routeRoomProblems(routes, task, capacity.vcpuBudget, 'capacity.vcpuBudget')) {
    if (problem.route === undefined) ctx.addIssue({ code: 'custom', path: ['routes'], message: problem.message });
    else issue(problem.route, undefined, problem.message);
  }
}

/**
 * What a budget of `budgetVcpu` leaves the routes: their reserves must fit it, and every route must be able to run a
 * task beside what the others keep for themselves. Checked by the schema, and by `sluice resize` on a new budget.
 */
export function routeRoomProblems(
  routes: ReadonlyArray<Pick<Route, 'reservedVcpu' | 'task'>>,
  task: Pick<EnvironmentFields['task'], 'cpu'>,
  budgetVcpu: number,
  budgetName: string,
): Array<{ route?: number; message: string }> {
  const reserved = routes.reduce((sum, r) => sum + (r.reservedVcpu ?? 0), 0);
  if (reserved > budgetVcpu) {
    return [{ message: `reserve ${reserved} vCPU in all (Σ reservedVcpu), more than ${budgetName} (${budgetVcpu}): a reserve is room kept for its route` }];
  }
  return routes.flatMap((r, index) => {
    const othersKeep = reserved - (r.reservedVcpu ?? 0);
    const taskVcpu = routeTaskVcpu(task, r);
    return taskVcpu !== undefined && budgetVcpu - othersKeep < taskVcpu
      ? [{ route: index, message: `could never run its task (${taskVcpu} vCPU): the other routes reserve ${othersKeep} of ${budgetName}'s ${budgetVcpu} vCPU` }]
      : [];
  });
}

/** The timeout of a route's tasks: its own task's, or the stage's. */
export function routeTimeoutOf(task: { readonly timeoutSeconds: number }, route: { readonly task?: { readonly timeoutSeconds?: number } }): number {
  return route.task?.timeoutSeconds ?? task.timeoutSeconds;
}

/** The CPU units a route's jobs run with: its own task's, or the stage's. */
export function routeCpuOf(task: { readonly cpu: number }, route: { readonly task?: { readonly cpu: number } }): number {
  return (route.task ?? task).cpu;
}

/** The vCPU of one of a route's tasks (of a validated configuration: its CPU size is one Fargate has). */
export function routeVcpuOf(task: { readonly cpu: number }, route: { readonly task?: { readonly cpu: number } }): number {
  return vcpuOf(routeCpuOf(task, route));
}

/** Objects one task runs, of the stage's own tasks (no route given) or a route's: its own packing, else the stage's, else 1. */
export function objectsPerTaskOf(
  config: { readonly packing?: { readonly objectsPerTask: number } },
  route?: { readonly packing?: { readonly objectsPerTask: number } },
): number {
  return route?.packing?.objectsPerTask ?? config.packing?.objectsPerTask ?? 1;
}

/**
 * Whether some task of the stage runs more than one object: without routes the stage's own, with routes any route's
 * (its own packing, or the stage's it takes). A stage that packs runs every job as a packed task's list (its state
 * machine, the finisher, the worker's batch record); one that does not is built as before packing existed.
 */
export function stagePacks(config: Pick<EnvironmentFields, 'packing' | 'routes'>): boolean {
  const tasks = config.routes ?? [undefined];
  return tasks.some((route) => objectsPerTaskOf(config, route) > 1);
}

/** Where a stage's uploads are taken from: each route's prefix, or the stage's one input prefix. */
export function inputPrefixesOf(config: Pick<EnvironmentFields, 'bucket' | 'routes'>): string[] {
  return config.routes?.map((r) => r.inputPrefix) ?? [config.bucket.inputPrefix];
}

/** Written by hand in environments/<stage>.ts. */
export type EnvironmentInput = z.input<typeof environmentSchema>;
/** Validated; what the stacks are built from. */
export type EnvironmentConfig = z.output<typeof environmentSchema>;
