import { ENVIRONMENT_INPUTS, ConfigError, loadEnvironments, objectsPerTaskOf, stagePacks, validateEnvironment, validateEnvironments } from '../../environments';
import { intakeDeadLetterQueueName, intakeQueueName, routeQueueName, ruleDeadLetterQueueName } from '../../environments/names';
import { ROUTED_DEV } from '../support/routed-stage';

type Mutable = Record<string, any>;

/** A deep copy of dev's configuration with one change applied. */
function devWith(change: (config: Mutable) => void): Mutable {
  const copy = structuredClone(ENVIRONMENT_INPUTS.dev) as Mutable;
  change(copy);
  return copy;
}

/** Gives a configuration two routes, as ROUTED_DEV has them, and returns it. */
function routed(config: Mutable): Mutable {
  config.routes = structuredClone(ROUTED_DEV.routes);
  return config;
}

function problemsOf(input: unknown, name = 'dev'): string {
  try {
    validateEnvironment(name, input);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected the configuration to be rejected');
}

test('the shipped stages are valid', () => {
  expect(loadEnvironments().map((c) => c.stage)).toEqual(['dev', 'stg', 'prod']);
});

// Each rule: the change that breaks it, the field the message must name, and what it must say is allowed.
const rules: Array<[string, (c: Mutable) => void, string, RegExp]> = [
  ['account id', (c) => (c.account.id = '12345'), 'account.id', /12-digit AWS account id.*got "12345"/],
  ['region', (c) => (c.account.region = 'Europe'), 'account.region', /AWS Region code/],
  ['name prefix', (c) => (c.namePrefix = 'Sluice_Dev'), 'namePrefix', /lowercase letters, digits or dashes/],
  ['reserved tag key', (c) => (c.tags['aws:owner'] = 'x'), 'tags.aws:owner', /may not start with 'aws:'/],
  ['input prefix without slash', (c) => (c.bucket.inputPrefix = 'incoming'), 'bucket.inputPrefix', /ending in '\/'/],
  ['input prefix with wildcard', (c) => (c.bucket.inputPrefix = 'in*/'), 'bucket.inputPrefix', /letters, digits, '_', '.', '-' and '\/'/],
  ['input prefix that URL encoding changes', (c) => (c.bucket.inputPrefix = 'new uploads/'), 'bucket.inputPrefix', /characters URL encoding keeps/],
  ['suffix with slash', (c) => (c.bucket.inputSuffix = 'a/b'), 'bucket.inputSuffix', /letters, digits, '_', '.' or '-'/],
  [
    'results inside input',
    (c) => (c.bucket.resultsPrefix = 'incoming/results/'),
    'bucket.resultsPrefix',
    /must not overlap bucket.inputPrefix.*trigger new jobs/,
  ],
  ['results retention', (c) => (c.bucket.resultsRetentionDays = 0), 'bucket.resultsRetentionDays', /from 1 to 3650/],
  [
    'noncurrent retention',
    (c) => (c.bucket.noncurrentVersionRetentionDays = 14.5),
    'bucket.noncurrentVersionRetentionDays',
    /whole number of days from 14 to 365/,
  ],
  [
    'noncurrent retention shorter than the queue',
    (c) => (c.bucket.noncurrentVersionRetentionDays = 7),
    'bucket.noncurrentVersionRetentionDays',
    /at least 14 days, the intake queue's retention/,
  ],
  ['budget over quota', (c) => (c.capacity.vcpuBudget = 7), 'capacity.vcpuBudget', /must not exceed capacity.accountVcpuQuota \(6 vCPU\)/],
  ['budget under one task', (c) => (c.capacity.vcpuBudget = 0.5), 'capacity.vcpuBudget', /at least one task's vCPU \(1\)/],
  [
    'pool past what a janitor sweep can check',
    (c) => ((c.capacity.accountVcpuQuota = 10000), (c.capacity.vcpuBudget = 6000), (c.task.cpu = 256), (c.task.memoryMiB = 512)),
    'capacity.vcpuBudget',
    /6000 vCPU of 0.25-vCPU tasks is 24000 concurrent tasks, over the 20000 leases a janitor sweep can check/,
  ],
  [
    "pool past what a janitor sweep can check, counted in a route's smaller tasks",
    (c) => ((c.capacity.accountVcpuQuota = 10000), (c.capacity.vcpuBudget = 6000), (routed(c).routes[1].task = { cpu: 256, memoryMiB: 512 })),
    'capacity.vcpuBudget',
    /6000 vCPU of 0.25-vCPU tasks is 24000 concurrent tasks, over the 20000 leases a janitor sweep can check/,
  ],
  [
    'pool past what a janitor sweep can check, counted in leases: a packed task holds one per object',
    (c) => ((c.capacity.accountVcpuQuota = 1000), (c.capacity.vcpuBudget = 600), (c.packing = { objectsPerTask: 50 })),
    'capacity.vcpuBudget',
    /600 vCPU of 1-vCPU tasks is 600 concurrent tasks of 50 objects each, 30000 leases, over the 20000 leases a janitor sweep can check/,
  ],
  ['batch window', (c) => (c.capacity.batchWindowSeconds = 11), 'capacity.batchWindowSeconds', /from 0 to 10 seconds/],
  ['capacity retry delay', (c) => (c.capacity.capacityRetryDelaySeconds = 901), 'capacity.capacityRetryDelaySeconds', /from 1 to 900/],
  ['launch rate at Fargate limit', (c) => (c.capacity.launchRatePerSecond = 20), 'capacity.launchRatePerSecond', /below 20/],
  ['launch rate zero', (c) => (c.capacity.launchRatePerSecond = 0), 'capacity.launchRatePerSecond', /above 0/],
  ['launch burst', (c) => (c.capacity.launchBurst = 21), 'capacity.launchBurst', /from 1 to 20/],
  ['map concurrency', (c) => (c.capacity.mapMaxConcurrency = 41), 'capacity.mapMaxConcurrency', /from 1 to 40/],
  ['jobs per execution over map', (c) => (c.capacity.jobsPerExecution = 11), 'capacity.jobsPerExecution', /must not exceed capacity.mapMaxConcurrency \(10\)/],
  ['task cpu', (c) => (c.task.cpu = 300), 'task.cpu', /one of 256, 512, 1024, 2048, 4096, 8192, 16384/],
  [
    'task memory for cpu',
    (c) => ((c.task.cpu = 256), (c.task.memoryMiB = 4096)),
    'task.memoryMiB',
    /with cpu 256 Fargate accepts 512–2048 MiB in steps of 512.*got 4096/,
  ],
  ['task memory step', (c) => ((c.task.cpu = 8192), (c.task.memoryMiB = 17408)), 'task.memoryMiB', /16384–61440 MiB in steps of 4096/],
  ['architecture', (c) => (c.task.architecture = 'ARM'), 'task.architecture', /'X86_64' or 'ARM64'/],
  [
    'capacity provider name',
    (c) => (c.task.capacityProviders = [{ name: 'EC2', weight: 1, base: 0 }]),
    'task.capacityProviders.0.name',
    /'FARGATE' or 'FARGATE_SPOT'/,
  ],
  [
    'capacity provider twice',
    (c) =>
      (c.task.capacityProviders = [
        { name: 'FARGATE', weight: 1, base: 0 },
        { name: 'FARGATE', weight: 1, base: 0 },
      ]),
    'task.capacityProviders',
    /twice/,
  ],
  ['capacity provider weights', (c) => (c.task.capacityProviders = [{ name: 'FARGATE', weight: 0, base: 0 }]), 'task.capacityProviders', /weight above 0/],
  [
    'capacity provider base',
    (c) =>
      (c.task.capacityProviders = [
        { name: 'FARGATE', weight: 1, base: 10 },
        { name: 'FARGATE_SPOT', weight: 1, base: 0 },
      ]),
    'task.capacityProviders.0.base',
    /must be 0: .*one task per RunTask call.*every task to that provider/,
  ],
  ['stop timeout', (c) => (c.task.stopTimeoutSeconds = 121), 'task.stopTimeoutSeconds', /from 2 to 120/],
  ['task timeout', (c) => (c.task.timeoutSeconds = 10), 'task.timeoutSeconds', /from 60 to 604800/],
  ['ephemeral storage', (c) => (c.task.ephemeralStorageGiB = 20), 'task.ephemeralStorageGiB', /from 21 to 200/],
  ['ECS retry attempts', (c) => (c.retry.ecsApi.maxAttempts = 50), 'retry.ecsApi.maxAttempts', /from 0 to 20/],
  ['task retry attempts', (c) => (c.retry.taskFailed.maxAttempts = 6), 'retry.taskFailed.maxAttempts', /from 0 to 5/],
  ['backoff rate', (c) => (c.retry.ecsApi.backoffRate = 0.5), 'retry.ecsApi.backoffRate', /from 1 to 10/],
  ['max delay below interval', (c) => (c.retry.ecsApi.maxDelaySeconds = 1), 'retry.ecsApi.maxDelaySeconds', /at least retry.ecsApi.intervalSeconds \(2\)/],
  ['max receive count', (c) => (c.intake.maxReceiveCount = 0), 'intake.maxReceiveCount', /from 1 to 1000/],
  ['rule retry attempts', (c) => (c.intake.ruleRetryAttempts = 186), 'intake.ruleRetryAttempts', /from 0 to 185/],
  ['rule event age', (c) => (c.intake.ruleMaxEventAgeSeconds = 59), 'intake.ruleMaxEventAgeSeconds', /from 60 to 86400/],
  ['network kind', (c) => (c.network = { kind: 'peered' }), 'network.kind', /'create' or 'existing'/],
  ['network cidr', (c) => (c.network.cidr = '10.0.0.0/8'), 'network.cidr', /\/16 to \/24/],
  [
    'zone outside region',
    (c) => (c.network.availabilityZones = ['eu-west-1a', 'us-east-1b']),
    'network.availabilityZones.1',
    /zone of account.region eu-west-1/,
  ],
  ['one zone', (c) => (c.network.availabilityZones = ['eu-west-1a']), 'network.availabilityZones', /exactly two/],
  [
    'existing VPC id',
    (c) => (c.network = { kind: 'existing', vpcId: 'my-vpc', privateSubnetIds: ['subnet-0123456789abcdef0'] }),
    'network.vpcId',
    /vpc-0123456789abcdef0/,
  ],
  [
    'no subnets',
    (c) => (c.network = { kind: 'existing', vpcId: 'vpc-0123456789abcdef0', privateSubnetIds: [] }),
    'network.privateSubnetIds',
    /at least one private subnet/,
  ],
  ['image tag and digest', (c) => (c.image.digest = `sha256:${'a'.repeat(64)}`), 'image', /exactly one of tag or digest/],
  ['image digest', (c) => ((c.image.tag = undefined), (c.image.digest = 'sha256:abc')), 'image.digest', /sha256:<64 hex digits>/],
  ['repository name', (c) => (c.image.repository = 'Sluice'), 'image.repository', /ECR repository name/],
  ['log retention', (c) => (c.logRetentionDays = 10), 'logRetentionDays', /one of 1, 3, 5, 7, 14/],
  ['alarm email', (c) => (c.alarmEmail = 'ops'), 'alarmEmail', /email address/],
  ['reclaimed-lease alarm threshold', (c) => (c.alarms.reclaimedLeasesAbove = -1), 'alarms.reclaimedLeasesAbove', /from 0 to 100000/],
  ['failed-jobs alarm threshold', (c) => (c.alarms.failedJobsAbove = 1.5), 'alarms.failedJobsAbove', /whole number from 0 to 1000000/],
  ['state key', (c) => (c.backend.key = 'dev'), 'backend.key', /ending in '.tfstate'/],
  ['state bucket', (c) => (c.backend.bucket = 'Bad_Bucket'), 'backend.bucket', /S3 bucket name/],
  ['unknown field', (c) => (c.capacity.vcpus = 4), 'capacity', /Unrecognized key.*vcpus/],
  ['allowDestroy', (c) => (c.allowDestroy = 'yes'), 'allowDestroy', /must be true or false/],
  ['missing field', (c) => delete c.alarmEmail, 'alarmEmail', /is required and must be an email address/],
  ['empty routes', (c) => (c.routes = []), 'routes', /1 to 6 routes/],
  [
    'too many routes',
    (c) => (c.routes = Array.from({ length: 7 }, (_, i) => ({ name: `r${i}`, inputPrefix: `incoming/r${i}/`, share: 1 }))),
    'routes',
    /1 to 6 routes/,
  ],
  ['route name', (c) => (routed(c).routes[1].name = 'Bulk'), "routes.1.name (route 'Bulk')", /1–24 lowercase letters, digits or dashes/],
  ['route name twice', (c) => (routed(c).routes[1].name = 'default'), "routes.1.name (route 'default')", /unique in the stage \(routes.0 has the same name\)/],
  ['route named like a dead-letter queue', (c) => (routed(c).routes[1].name = 'rule-dlq'), "routes.1.name (route 'rule-dlq')", /dead-letter queues/],
  ['route prefix', (c) => (routed(c).routes[1].inputPrefix = 'incoming/bulk'), "routes.1.inputPrefix (route 'bulk')", /ending in '\/'/],
  [
    'route prefix in the results',
    (c) => (routed(c).routes[1].inputPrefix = 'results/bulk/'),
    "routes.1.inputPrefix (route 'bulk')",
    /must not overlap bucket.resultsPrefix \('results\/'\): results written there would trigger new jobs/,
  ],
  [
    "stage prefix that is no route's",
    (c) => (routed(c).routes[0].inputPrefix = 'interactive/'),
    'bucket.inputPrefix',
    /must be the inputPrefix of one of the routes \('interactive\/', 'bulk\/'\)/,
  ],
  [
    'route prefix inside another route',
    (c) => (routed(c).routes[1].inputPrefix = 'incoming/bulk/'),
    "routes.1.inputPrefix (route 'bulk')",
    /must not overlap the inputPrefix of routes.0 \('default': 'incoming\/'\): a key must belong to exactly one route/,
  ],
  [
    'route prefix around another route',
    (c) => (routed(c).routes[1].inputPrefix = 'incoming/'),
    "routes.1.inputPrefix (route 'bulk')",
    /must not overlap the inputPrefix of routes.0/,
  ],
  ['route suffix', (c) => (routed(c).routes[1].inputSuffix = '*.csv'), "routes.1.inputSuffix (route 'bulk')", /letters, digits, '_', '.' or '-'/],
  [
    'stage suffix beside routes',
    (c) => (routed(c).bucket.inputSuffix = '.csv'),
    'bucket.inputSuffix',
    /must be unset when the stage has routes: each route has its own inputSuffix/,
  ],
  ['route share', (c) => (routed(c).routes[1].share = 0), "routes.1.share (route 'bulk')", /above 0.*got 0/],
  ['route reserve over its cap', (c) => (routed(c).routes[1].reservedVcpu = 3), "routes.1.reservedVcpu (route 'bulk')", /at most the route's maxVcpu \(2\)/],
  [
    'a route the others reserve everything from',
    (c) => (routed(c).routes[0].reservedVcpu = 3.75),
    "routes.1 (route 'bulk')",
    /could never run its task \(0.5 vCPU\): the other routes reserve 3.75 of capacity.vcpuBudget's 4 vCPU/,
  ],
  [
    "a route the others' reserves leave less than the stage's task",
    (c) => ((routed(c).routes[1].reservedVcpu = 3.5), (c.routes[1].maxVcpu = 4)),
    "routes.0 (route 'default')",
    /could never run its task \(1 vCPU\): the other routes reserve 3.5 of capacity.vcpuBudget's 4 vCPU/,
  ],
  [
    'route reserves over the budget',
    (c) => ((routed(c).routes[0].reservedVcpu = 3), (c.routes[1].reservedVcpu = 2)),
    'routes',
    /reserve 5 vCPU in all \(Σ reservedVcpu\), more than capacity.vcpuBudget \(4\)/,
  ],
  ['route priority', (c) => (routed(c).routes[1].priority = 1.5), "routes.1.priority (route 'bulk')", /whole number from 0 to 9/],
  ['route priority above 9', (c) => (routed(c).routes[1].priority = 10), "routes.1.priority (route 'bulk')", /whole number from 0 to 9/],
  [
    "route cap under one of the stage's tasks",
    (c) => (routed(c).routes[0].maxVcpu = 0.5),
    "routes.0.maxVcpu (route 'default')",
    /at least one task's vCPU \(1\) and at most capacity.vcpuBudget \(4\).*got 0.5/,
  ],
  [
    'route cap under one of its own tasks',
    (c) => (routed(c).routes[1].maxVcpu = 0.25),
    "routes.1.maxVcpu (route 'bulk')",
    /at least one task's vCPU \(0.5\) and at most capacity.vcpuBudget \(4\).*got 0.25/,
  ],
  [
    'route reserve under one of its own tasks',
    (c) => (routed(c).routes[1].reservedVcpu = 0.25),
    "routes.1.reservedVcpu (route 'bulk')",
    /at least one task's vCPU \(0.5\) and at most the route's maxVcpu \(2\).*got 0.25/,
  ],
  ['route task cpu', (c) => (routed(c).routes[1].task.cpu = 300), "routes.1.task.cpu (route 'bulk')", /must be one of 256, 512, 1024/],
  [
    'route task memory Fargate does not pair with its cpu',
    (c) => (routed(c).routes[1].task.memoryMiB = 5120),
    "routes.1.task.memoryMiB (route 'bulk')",
    /with cpu 512 Fargate accepts 1024–4096 MiB in steps of 1024/,
  ],
  ['route task storage', (c) => (routed(c).routes[1].task.ephemeralStorageGiB = 20), "routes.1.task.ephemeralStorageGiB (route 'bulk')", /from 21 to 200/],
  ['route task timeout', (c) => (routed(c).routes[1].task.timeoutSeconds = 30), "routes.1.task.timeoutSeconds (route 'bulk')", /from 60 to 604800/],
  [
    'route task image with tag and digest',
    (c) => (routed(c).routes[1].task.image = { tag: 'v2', digest: `sha256:${'0'.repeat(64)}` }),
    "routes.1.task.image (route 'bulk')",
    /set exactly one of tag or digest/,
  ],
  [
    'route task field the stage keeps',
    (c) => (routed(c).routes[1].task.architecture = 'ARM64'),
    "routes.1.task (route 'bulk')",
    /Unrecognized key.*architecture/,
  ],
  ['route cap over the budget', (c) => (routed(c).routes[1].maxVcpu = 5), "routes.1.maxVcpu (route 'bulk')", /at most capacity.vcpuBudget \(4\)/],
  ['unknown route field', (c) => (routed(c).routes[0].weight = 1), "routes.0 (route 'default')", /Unrecognized key.*weight/],
  ['objects per task of none', (c) => (c.packing = { objectsPerTask: 0 }), 'packing.objectsPerTask', /whole number from 1 to 98.*got 0/],
  ['objects per task, a fraction', (c) => (c.packing = { objectsPerTask: 2.5 }), 'packing.objectsPerTask', /whole number from 1 to 98/],
  [
    'objects per task past one transaction',
    (c) => (c.packing = { objectsPerTask: 99 }),
    'packing.objectsPerTask',
    /from 1 to 98: every object of a task is admitted in one DynamoDB transaction.*got 99/,
  ],
  ['packing without objects per task', (c) => (c.packing = {}), 'packing.objectsPerTask', /is required and must be a whole number from 1 to 98/],
  ['unknown packing field', (c) => (c.packing = { objectsPerTask: 2, maxObjectBytes: 1 }), 'packing', /Unrecognized key.*maxObjectBytes/],
  [
    "a route's objects per task",
    (c) => (routed(c).routes[1].packing = { objectsPerTask: 100 }),
    "routes.1.packing.objectsPerTask (route 'bulk')",
    /whole number from 1 to 98/,
  ],
];

describe.each(rules)('rejects a bad %s', (_rule, change, field, allowed) => {
  test('naming the environment, the field and what is allowed', () => {
    const message = problemsOf(devWith(change));
    expect(message).toContain('environment "dev"');
    const line = message.split('\n').find((l) => l.includes(`- ${field}:`));
    expect(line).toBeDefined();
    expect(line).toMatch(allowed);
  });
});

test('a stage with routes is valid; a route without a priority is in class 0', () => {
  const config = validateEnvironment('dev', ROUTED_DEV);
  expect(config.routes).toEqual([
    { ...ROUTED_DEV.routes[0], priority: 1 },
    { ...ROUTED_DEV.routes[1], priority: 0 },
  ]);
  expect(validateEnvironment('dev', ENVIRONMENT_INPUTS.dev).routes).toBeUndefined();
});

test("reserves are weighed against each route's own task: half a vCPU left beside the others' reserves runs a route's 0.5-vCPU task", () => {
  const input = routed(structuredClone(ENVIRONMENT_INPUTS.dev) as Mutable);
  input.routes[0].reservedVcpu = 3.5;
  expect(validateEnvironment('dev', input).routes![1].task).toEqual({ cpu: 512, memoryMiB: 1024, timeoutSeconds: 900 });
  // The same reserve leaves no room for a route running the stage's 1-vCPU task.
  delete input.routes[1].task;
  expect(problemsOf(input)).toMatch(/routes.1 \(route 'bulk'\): could never run its task \(1 vCPU\)/);
});

test("a route without packing of its own takes the stage's; the stage packs when any of its tasks runs more than one object", () => {
  const withPacking = (stage?: number, ...routes: Array<number | undefined>) =>
    validateEnvironment(
      'dev',
      devWith((c) => {
        if (stage !== undefined) c.packing = { objectsPerTask: stage };
        if (routes.length > 0) routed(c).routes.forEach((r: Mutable, i: number) => routes[i] !== undefined && (r.packing = { objectsPerTask: routes[i] }));
      }),
    );
  const perTask = (config: ReturnType<typeof withPacking>) => [objectsPerTaskOf(config), ...(config.routes ?? []).map((r) => objectsPerTaskOf(config, r))];
  expect(perTask(withPacking())).toEqual([1]);
  expect(perTask(withPacking(8))).toEqual([8]);
  expect(perTask(withPacking(8, undefined, 2))).toEqual([8, 8, 2]);
  expect(perTask(withPacking(undefined, 1, 4))).toEqual([1, 1, 4]);
  expect([withPacking(), withPacking(1), withPacking(undefined, 1, 1)].map(stagePacks)).toEqual([false, false, false]);
  expect([withPacking(2), withPacking(undefined, 1, 4), withPacking(3, 1, undefined)].map(stagePacks)).toEqual([true, true, true]);
  // Every route sets its own: the stage's is no task's.
  expect(stagePacks(withPacking(8, 1, 1))).toBe(false);
  // stg tries packing on one route before production.
  expect(loadEnvironments().map(stagePacks)).toEqual([false, true, false]);
});

test("the route names refused for their queue's name are those that would name a dead-letter queue", () => {
  const deadLetterQueues = [intakeDeadLetterQueueName('p'), ruleDeadLetterQueueName('p')];
  const stage = { namePrefix: 'p', bucket: { inputPrefix: 'incoming/' }, routes: [{ name: 'main', inputPrefix: 'incoming/' }] };
  for (const name of ['dlq', 'rule-dlq']) expect(deadLetterQueues).toContain(routeQueueName(stage, name));
  // The route at the stage's prefix keeps the stage's queue, whatever its name.
  expect(routeQueueName(stage, 'main')).toBe(intakeQueueName('p'));
});

test('ARM64 tasks may run on Fargate Spot', () => {
  // Fargate Spot runs ARM64 tasks on platform version 1.4.0 or later (ECS API reference, CapacityProviderStrategyItem;
  // "Amazon ECS now supports AWS Graviton-based Spot compute with AWS Fargate", 2024-09-06). RunTask defaults to LATEST.
  const arm = validateEnvironment(
    'dev',
    devWith((c) => (c.task.architecture = 'ARM64')),
  );
  expect(arm.task).toMatchObject({ architecture: 'ARM64', capacityProviders: [{ name: 'FARGATE_SPOT' }] });
});

test('a stage whose name differs from its file is rejected', () => {
  expect(
    problemsOf(
      devWith(() => undefined),
      'qa',
    ),
  ).toMatch(/environment "qa".*\n.*stage: must equal the environment's name "qa"/);
});

test('two stages may not share one state key', () => {
  const stg = structuredClone(ENVIRONMENT_INPUTS.stg) as Mutable;
  stg.backend = { ...ENVIRONMENT_INPUTS.dev.backend };
  expect(() => validateEnvironments({ dev: ENVIRONMENT_INPUTS.dev, stg })).toThrow(/environment "stg"[\s\S]*backend.key: must differ from environment "dev"/);
});

test('every problem is reported at once', () => {
  const message = problemsOf(devWith((c) => ((c.account.id = 'x'), (c.task.cpu = 3), (c.logRetentionDays = 2))));
  expect(message.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(3);
});
