import { leaseSeconds, runTaskTimeoutSeconds } from '../../modules/run-jobs/timing';
import { dispatcherSettingsFromEnv, janitorSettingsFromEnv } from '../../functions/environment';
import { ADMITTED_FOR_ANOTHER_STATE_MACHINE } from '../../functions/jobs';
import { STATES } from '../../modules/run-jobs/definition';
import { eachState, type StateMachineDefinition } from '../../modules/run-jobs/asl';
import type { PolicyDocument, PolicyStatement } from '../../modules/iam';
import type { TerraformJson } from '../../synth/output';
import { routedDevConfig } from '../support/routed-stage';
import { ENVIRONMENT_INPUTS, validateEnvironment } from '../../environments';
import { MAX_ROUTES } from '../../environments/schema';
import { MAX_OBJECTS_PER_TASK } from '../../functions/packing';
import { resolveReferences, resourceNamed, resourcesOf, synthStage } from '../support/synth';
import { fakeAttribute } from '../../twin/synthesized-stage';

/** dev with two routes: `default` keeps the stage's intake queue and rule, `bulk` gets its own. */
const { json, config } = synthStage('dev', routedDevConfig());
const unrouted = synthStage('dev').json;

/** A resource's reference, `${type.name.attribute}`, as the synthesized JSON writes it. */
const ref = (type: string, fragment: string, attribute: string) => {
  const matches = resourcesOf(json, type).filter(([name]) => name.includes(fragment));
  if (matches.length !== 1) throw new Error(`expected one ${type} named *${fragment}*, found ${matches.length}`);
  return `\${${type}.${matches[0][0]}.${attribute}}`;
};
const QUEUE = { default: 'intake_queue_', bulk: 'intake_route-bulk_queue_' } as const;
/** The stage's task definition (the default route runs it) and bulk's own. */
const TASK_DEFINITION = { default: 'compute_task-definition_', bulk: 'compute_task-definition-bulk_' } as const;
const RULE = { default: 'intake_object-created_', bulk: 'intake_route-bulk_object-created_' } as const;

const statementsOf = (json: TerraformJson, type: string, fragment: string): PolicyStatement[] =>
  (JSON.parse(String(resourceNamed(json, type, fragment).policy)) as PolicyDocument).Statement as PolicyStatement[];
const statement = (statements: PolicyStatement[], sid: string) => statements.find((s) => s.Sid === sid)!;
const variablesOf = (json: TerraformJson, fn: string) =>
  (resourceNamed(json, 'aws_lambda_function', `${fn}_function`).environment as { variables: Record<string, string> }).variables;

describe('intake of a stage with routes', () => {
  test('each route has an Object Created rule for its prefix (and suffix); the default route keeps the stage’s rule', () => {
    const rules = Object.fromEntries(resourcesOf(json, 'aws_cloudwatch_event_rule').map(([, rule]) => [rule.name, rule]));
    const keyFilterOf = (name: string) => JSON.parse(String(rules[name].event_pattern)).detail.object.key;
    expect(keyFilterOf('sluice-dev-object-created')).toEqual([{ prefix: 'incoming/' }]);
    expect(keyFilterOf('sluice-dev-object-created-bulk')).toEqual([{ wildcard: 'bulk/*.csv' }]);
    // The same Terraform address as the stage without routes: taking up routes replaces neither the rule nor the queue.
    expect(resourcesOf(json, 'aws_cloudwatch_event_rule').find(([, rule]) => rule.name === 'sluice-dev-object-created')![0]).toBe(
      resourcesOf(unrouted, 'aws_cloudwatch_event_rule').find(([, rule]) => rule.name === 'sluice-dev-object-created')![0],
    );
    expect(resourcesOf(json, 'aws_sqs_queue').find(([, queue]) => queue.name === 'sluice-dev-intake')![0]).toBe(
      resourcesOf(unrouted, 'aws_sqs_queue').find(([, queue]) => queue.name === 'sluice-dev-intake')![0],
    );
  });

  test('each rule sends to its route’s queue (the rule DLQ behind it) and wakes the dispatcher, allowed by a permission of its own', () => {
    const targets = resourcesOf(json, 'aws_cloudwatch_event_target').map(([, target]) => target);
    for (const route of ['default', 'bulk'] as const) {
      const fromRule = targets.filter((target) => target.rule === ref('aws_cloudwatch_event_rule', RULE[route], 'name'));
      expect(fromRule).toHaveLength(2);
      expect(fromRule).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            arn: ref('aws_sqs_queue', QUEUE[route], 'arn'),
            dead_letter_config: { arn: ref('aws_sqs_queue', 'intake_rule-dead-letters', 'arn') },
          }),
          expect.objectContaining({ arn: expect.stringMatching(/aws_lambda_function\.admission_dispatcher_function/), input: '{"reason":"object-created"}' }),
        ]),
      );
    }
    const permissions = resourcesOf(json, 'aws_lambda_permission')
      .map(([, permission]) => permission)
      .filter((permission) => String(permission.statement_id).startsWith('dispatch-on-upload'));
    expect(permissions.map((permission) => [permission.statement_id, permission.source_arn])).toEqual([
      ['dispatch-on-upload', ref('aws_cloudwatch_event_rule', RULE.default, 'arn')],
      ['dispatch-on-upload-bulk', ref('aws_cloudwatch_event_rule', RULE.bulk, 'arn')],
    ]);
  });

  test('a route’s queue is set up as the stage’s, with the stage’s one DLQ, and takes messages only from its rule', () => {
    const { name: ownName, ...own } = resourceNamed(json, 'aws_sqs_queue', QUEUE.default);
    const { name: bulkName, ...bulk } = resourceNamed(json, 'aws_sqs_queue', QUEUE.bulk);
    expect([ownName, bulkName]).toEqual(['sluice-dev-intake', 'sluice-dev-intake-bulk']);
    expect(bulk).toEqual(own);
    expect(JSON.parse(String(bulk.redrive_policy))).toEqual({
      deadLetterTargetArn: ref('aws_sqs_queue', 'intake_dead-letters', 'arn'),
      maxReceiveCount: config.intake.maxReceiveCount,
    });
    expect(statementsOf(json, 'aws_sqs_queue_policy', 'intake_route-bulk_queue-policy')[0]).toMatchObject({
      Effect: 'Allow',
      Action: 'sqs:SendMessage',
      Resource: ref('aws_sqs_queue', QUEUE.bulk, 'arn'),
      Condition: { ArnEquals: { 'aws:SourceArn': ref('aws_cloudwatch_event_rule', RULE.bulk, 'arn') } },
    });
    expect(statementsOf(json, 'aws_sqs_queue_policy', 'intake_rule-dead-letters-policy')[0].Condition).toEqual({
      ArnEquals: { 'aws:SourceArn': [ref('aws_cloudwatch_event_rule', RULE.default, 'arn'), ref('aws_cloudwatch_event_rule', RULE.bulk, 'arn')] },
    });
  });

  test('without a default route the stage’s own queue stays, and no rule sends to it', () => {
    const { json: withoutDefault } = synthStage('dev', {
      ...routedDevConfig(),
      routes: routedDevConfig().routes!.filter((route) => route.name !== 'default'),
    });
    const rules = resourcesOf(withoutDefault, 'aws_cloudwatch_event_rule').map(([, rule]) => rule.name);
    expect(rules).not.toContain('sluice-dev-object-created');
    expect(rules).toContain('sluice-dev-object-created-bulk');
    expect(resourcesOf(withoutDefault, 'aws_sqs_queue').map(([, queue]) => queue.name)).toContain('sluice-dev-intake');
    expect(statementsOf(withoutDefault, 'aws_sqs_queue_policy', 'intake_queue-policy').map((s) => s.Effect)).toEqual(['Deny']);
    expect(statementsOf(withoutDefault, 'aws_sqs_queue_policy', 'intake_rule-dead-letters-policy')[0].Condition).toEqual({
      ArnEquals: { 'aws:SourceArn': expect.stringMatching(/aws_cloudwatch_event_rule\.intake_route-bulk_object-created/) },
    });
  });

  test('each route’s backlog has its alarm', () => {
    const alarms = Object.fromEntries(resourcesOf(json, 'aws_cloudwatch_metric_alarm').map(([, alarm]) => [alarm.alarm_name, alarm]));
    expect(alarms['sluice-dev-intake-backlog-age'].dimensions).toEqual({ QueueName: ref('aws_sqs_queue', QUEUE.default, 'name') });
    expect(alarms['sluice-dev-intake-backlog-age-bulk']).toMatchObject({
      dimensions: { QueueName: ref('aws_sqs_queue', QUEUE.bulk, 'name') },
      metric_name: 'ApproximateAgeOfOldestMessage',
      threshold: config.intake.backlogAlarmAgeSeconds,
    });
  });
});

describe('the tasks of a stage with routes', () => {
  test("a route with a task of its own has its own task definition, of its size, and otherwise the stage's", () => {
    const definitions = Object.fromEntries(resourcesOf(json, 'aws_ecs_task_definition').map(([, definition]) => [definition.family, definition]));
    expect(Object.keys(definitions).sort()).toEqual(['sluice-dev-worker', 'sluice-dev-worker-bulk']);
    const { family: _stageFamily, cpu: stageCpu, memory: stageMemory, container_definitions: stageContainers, ...stage } = definitions['sluice-dev-worker'];
    const { family: _bulkFamily, cpu, memory, container_definitions: containers, ...bulk } = definitions['sluice-dev-worker-bulk'];
    expect([stageCpu, stageMemory, cpu, memory]).toEqual(['1024', '2048', '512', '1024']);
    // Roles, log group, container (the stage's image), architecture, storage, stop timeout; kept when replaced.
    expect(bulk).toEqual(stage);
    // The worker stops itself at its route's timeout (15 minutes); its RunTask state waits as every route's does.
    const environment = (text: unknown) =>
      Object.fromEntries((JSON.parse(String(text))[0].environment as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
    expect(environment(containers)).toEqual({
      ...environment(stageContainers),
      JOB_TIMEOUT_SECONDS: '900',
    });
    const withoutEnvironment = (text: unknown) => ({ ...JSON.parse(String(text))[0], environment: undefined });
    expect(withoutEnvironment(containers)).toEqual(withoutEnvironment(stageContainers));
    expect(bulk.skip_destroy).toBe(true);
    // The route without a task of its own adds none: the stage without routes has the one task definition at the same address.
    expect(resourcesOf(unrouted, 'aws_ecs_task_definition').map(([name]) => name)).toEqual([
      resourcesOf(json, 'aws_ecs_task_definition').find(([, definition]) => definition.family === 'sluice-dev-worker')![0],
    ]);
  });

  test("a route's timeout longer than the stage's sets how long every RunTask state waits, and the leases and the state machine's timeout with it", () => {
    const routes = routedDevConfig().routes!.map((route) =>
      route.name === 'bulk' ? { ...route, task: { cpu: 512, memoryMiB: 1024, timeoutSeconds: 6 * 3600 } } : route,
    );
    const longer = { ...routedDevConfig(), routes };
    const { json: own } = synthStage('dev', longer);
    const machine = JSON.parse(String(resourceNamed(own, 'aws_sfn_state_machine', 'state-machine').definition)) as StateMachineDefinition;
    const runTask = [...eachState(machine)].find(({ name }) => name === STATES.runTask)!.state as { TimeoutSeconds: number };
    expect(runTask.TimeoutSeconds).toBe(runTaskTimeoutSeconds({ timeoutSeconds: 6 * 3600 }));
    expect((machine as { TimeoutSeconds?: number }).TimeoutSeconds).toBe(leaseSeconds(longer));
    expect(leaseSeconds(longer)).toBeGreaterThan(leaseSeconds(routedDevConfig()));
    expect(variablesOf(own, 'dispatcher').LEASE_SECONDS).toBe(String(leaseSeconds(longer)));
    // The stage's own tasks still stop themselves at its own hour, and know how long their RunTask state waits.
    const stageTask = resourcesOf(own, 'aws_ecs_task_definition').find(([, d]) => d.family === 'sluice-dev-worker')![1];
    const environment = JSON.parse(String(stageTask.container_definitions))[0].environment;
    expect(environment).toContainEqual({ name: 'JOB_TIMEOUT_SECONDS', value: '3600' });
    expect(environment).toContainEqual({ name: 'RUN_TASK_TIMEOUT_SECONDS', value: String(runTaskTimeoutSeconds({ timeoutSeconds: 6 * 3600 })) });
  });

  test("a route's task may name its own image tag (or digest) in the stage's repository, and its own ephemeral storage", () => {
    const routes = routedDevConfig().routes!.map((route) =>
      route.name === 'bulk' ? { ...route, task: { cpu: 512, memoryMiB: 1024, ephemeralStorageGiB: 50, image: { tag: 'bulk-2' } } } : route,
    );
    const { json: own } = synthStage('dev', { ...routedDevConfig(), routes });
    const bulk = resourcesOf(own, 'aws_ecs_task_definition').find(([, definition]) => definition.family === 'sluice-dev-worker-bulk')![1];
    expect(bulk.ephemeral_storage).toEqual({ size_in_gib: 50 });
    expect(JSON.parse(String(bulk.container_definitions))[0].image).toBe(`${ref('aws_ecr_repository', 'compute_repository', 'repository_url')}:bulk-2`);
  });
});

describe('the dispatcher and the janitor of a stage with routes', () => {
  const routes = [
    {
      name: 'default',
      queueUrl: ref('aws_sqs_queue', QUEUE.default, 'url'),
      inputPrefix: 'incoming/',
      share: 3,
      priority: 1,
      taskVcpu: 1,
      taskDefinitionArn: ref('aws_ecs_task_definition', TASK_DEFINITION.default, 'arn'),
    },
    {
      name: 'bulk',
      queueUrl: ref('aws_sqs_queue', QUEUE.bulk, 'url'),
      inputPrefix: 'bulk/',
      inputSuffix: '.csv',
      share: 1,
      priority: 0,
      maxVcpu: 2,
      taskVcpu: 0.5,
      taskDefinitionArn: ref('aws_ecs_task_definition', TASK_DEFINITION.bulk, 'arn'),
    },
  ];

  test('know the routes, their queues and what their jobs run on (ROUTES); a stage without routes has no ROUTES', () => {
    const settingsOf = (fn: 'dispatcher' | 'janitor') => JSON.parse(resolveReferences(JSON.stringify(variablesOf(json, fn)), json, fakeAttribute));
    const queueUrl = (name: string) => `https://sqs.eu-west-1.amazonaws.com/111111111111/${name}`;
    const taskDefinitionArn = (family: string) => `arn:aws:ecs:eu-west-1:111111111111:task-definition/${family}:1`;
    const resolved = routes.map((route) =>
      route.name === 'default'
        ? { ...route, queueUrl: queueUrl('sluice-dev-intake'), taskDefinitionArn: taskDefinitionArn('sluice-dev-worker') }
        : { ...route, queueUrl: queueUrl('sluice-dev-intake-bulk'), taskDefinitionArn: taskDefinitionArn('sluice-dev-worker-bulk') },
    );
    expect(dispatcherSettingsFromEnv(settingsOf('dispatcher')).routes).toEqual(resolved);
    expect(janitorSettingsFromEnv(settingsOf('janitor')).routes).toEqual(resolved);
    expect(JSON.parse(variablesOf(json, 'dispatcher').ROUTES)).toEqual(routes);
    expect(variablesOf(unrouted, 'dispatcher')).not.toHaveProperty('ROUTES');
    expect(variablesOf(unrouted, 'janitor')).not.toHaveProperty('ROUTES');
  });

  test("stay within Lambda's 4 KB of environment at the most routes, each with the longest names and its own task", () => {
    // The longest prefix and route names, a long Region, long-ish prefixes, every optional field, 7-digit revisions.
    const stg = ENVIRONMENT_INPUTS.stg;
    const longest = validateEnvironment('stg', {
      ...stg,
      namePrefix: `s${'x'.repeat(20)}z`,
      account: { ...stg.account, region: 'ap-southeast-2' },
      capacity: { ...stg.capacity, vcpuBudget: 100 },
      routes: Array.from({ length: MAX_ROUTES }, (_, i) => ({
        name: `r${i}${'x'.repeat(22)}`,
        inputPrefix: i === 0 ? stg.bucket.inputPrefix : `uploads/team-${'p'.repeat(12)}-${i}/`,
        inputSuffix: '.parquet',
        share: 1.25,
        priority: 9,
        maxVcpu: 12.25,
        reservedVcpu: 10.5,
        // The longest timeout: its lease and RunTask timeout travel in ROUTES too.
        task: { cpu: 512, memoryMiB: 1024, timeoutSeconds: 7 * 24 * 3600 },
        // Packing, at its most: each route's objectsPerTask travels in ROUTES.
        packing: { objectsPerTask: MAX_OBJECTS_PER_TASK },
      })),
    });
    const { json: synthesized } = synthStage('stg', longest);
    for (const fn of ['dispatcher', 'janitor']) {
      const variables = JSON.parse(resolveReferences(JSON.stringify(variablesOf(synthesized, fn)), synthesized, fakeAttribute)) as Record<string, string>;
      const withRevisions = JSON.parse(variables.ROUTES.replaceAll(/(task-definition\/[^":]+):1"/g, '$1:1000000"')) as unknown[];
      expect(withRevisions).toHaveLength(MAX_ROUTES);
      expect(withRevisions).toContainEqual(expect.objectContaining({ objectsPerTask: MAX_OBJECTS_PER_TASK }));
      const bytes = Object.entries({ ...variables, ROUTES: JSON.stringify(withRevisions) }).reduce(
        (sum, [name, value]) => sum + Buffer.byteLength(name) + Buffer.byteLength(value),
        0,
      );
      expect(bytes).toBeLessThanOrEqual(4096);
    }
  });

  test('may take from, put back to and re-queue to every route’s queue', () => {
    const queues = [ref('aws_sqs_queue', QUEUE.default, 'arn'), ref('aws_sqs_queue', QUEUE.bulk, 'arn')];
    const dispatcher = statementsOf(json, 'aws_iam_role_policy', 'admission_dispatcher');
    expect(statement(dispatcher, 'TakeFromIntake').Resource).toEqual(queues);
    expect(statement(dispatcher, 'PutBackToIntake').Resource).toEqual(queues);
    expect(statement(statementsOf(json, 'aws_iam_role_policy', 'janitor_policy'), 'Requeue').Resource).toEqual(queues);
  });
});

describe('the state machine of a stage with routes', () => {
  const definition = JSON.parse(String(resourceNamed(json, 'aws_sfn_state_machine', 'state-machine').definition)) as StateMachineDefinition;
  const states = Object.fromEntries([...eachState(definition)].map(({ name, state }) => [name, state as any]));
  const releases = [STATES.finishJob, STATES.recordFailure, STATES.giveBackLease, STATES.giveBackLeaseShortOfCapacity, STATES.giveBackLeaseAndHold];
  const requeues = [STATES.returnForCapacity, STATES.returnWhileThrottled, STATES.returnForVcpuLimit];

  test('every release also adds the vCPU to the job’s route’s counter', () => {
    for (const name of releases) {
      const released = states[name].Parameters.TransactItems[1].Update;
      expect(released.UpdateExpression).toMatch(/^ADD releasedVcpu :vcpu, #placed :vcpu, #route :vcpu( SET|$)/);
      expect(released.ExpressionAttributeNames['#route.$']).toBe("States.Format('releasedVcpu@route:{}', $.job.route)");
    }
  });

  test('every requeue goes to the queue the job names, and the role may send to each route’s', () => {
    for (const name of requeues) {
      expect(states[name].Parameters['QueueUrl.$']).toBe('$.job.intakeQueueUrl');
      expect(states[name].Parameters).not.toHaveProperty('QueueUrl');
    }
    expect(statement(statementsOf(json, 'aws_iam_role_policy', 'pipeline_policy'), 'BackToTheQueue').Resource).toEqual([
      ref('aws_sqs_queue', QUEUE.default, 'arn'),
      ref('aws_sqs_queue', QUEUE.bulk, 'arn'),
    ]);
  });

  test("RunTask starts the task definition the job names (its route's), and the role may run any revision of every route's family", () => {
    for (const name of [STATES.runTask, STATES.runTaskWhileThrottled]) {
      expect(states[name].Parameters['TaskDefinition.$']).toBe('$.job.taskDefinitionArn');
      expect(states[name].Parameters).not.toHaveProperty('TaskDefinition');
      // RunTask waits for the longest task of the stage's (here the stage's own: bulk's 15 minutes are shorter).
      expect(states[name].TimeoutSeconds).toBe(runTaskTimeoutSeconds(config.task));
    }
    const family = (name: string) => `arn:aws:ecs:eu-west-1:111111111111:task-definition/${name}:*`;
    expect(statement(statementsOf(json, 'aws_iam_role_policy', 'pipeline_policy'), 'RunWorkerTasks')).toMatchObject({
      Action: 'ecs:RunTask',
      Resource: [family('sluice-dev-worker'), family('sluice-dev-worker-*')],
    });
    // Any route family of this stage's, present or past: a job leased before a deploy dropped its route's own task
    // (or removed the route) still runs the revision it names. The role of a stage whose routes have no task of
    // their own may run them too: a route may take one up later.
    // Both task definitions pass the stage's two roles, which the role may pass.
    const passed = statement(statementsOf(json, 'aws_iam_role_policy', 'pipeline_policy'), 'PassOnlyTheWorkerRoles').Resource;
    for (const [, definition] of resourcesOf(json, 'aws_ecs_task_definition'))
      expect(passed).toEqual([definition.task_role_arn, definition.execution_role_arn]);
  });

  test('a batch that names no route or task definition is refused at the gate, for the janitor to re-queue; its size is not checked', () => {
    const gate = states[STATES.checkTaskSize];
    expect(gate.Choices[0]).toEqual({
      And: [
        { Variable: '$.jobs[0].capacityProvider', IsPresent: true },
        { Variable: '$.jobs[0].route', IsPresent: true },
        { Variable: '$.jobs[0].taskDefinitionArn', IsPresent: true },
      ],
      Next: STATES.runJobs,
    });
    expect(gate.Choices[1]).toEqual({ Variable: '$.jobs[0].capacityProvider', IsPresent: true, Next: STATES.admittedWithoutRoute });
    expect(gate.Default).toBe(STATES.admittedUnplaced);
    // A job runs on the revision it was leased for, whose size is its vCPU: no batch is refused for its size.
    expect(JSON.stringify(gate)).not.toContain('vcpu');
    expect(states).not.toHaveProperty(STATES.admittedForAnotherTaskSize);
    expect(states[STATES.admittedWithoutRoute]).toEqual({
      Type: 'Fail',
      Error: ADMITTED_FOR_ANOTHER_STATE_MACHINE,
      Cause: expect.stringMatching(
        /^the batch names no route or task definition \(a dispatcher of another version admitted it while a deploy rolled out\); the janitor re-queues its jobs$/,
      ),
    });
  });

  test('a stage without routes neither counts by route nor asks a batch for one, and runs its one task definition', () => {
    const text = String(resourceNamed(unrouted, 'aws_sfn_state_machine', 'state-machine').definition);
    expect(text).not.toMatch(/route|intakeQueueUrl|taskDefinitionArn/);
    expect(text).toContain(`"TaskDefinition":"\${aws_ecs_task_definition.${resourcesOf(unrouted, 'aws_ecs_task_definition')[0][0]}.arn}"`);
  });
});
