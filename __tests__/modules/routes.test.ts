import { dispatcherSettingsFromEnv, janitorSettingsFromEnv } from '../../functions/environment';
import { ADMITTED_FOR_ANOTHER_STATE_MACHINE } from '../../functions/jobs';
import { STATES } from '../../modules/run-jobs/definition';
import { eachState, type StateMachineDefinition } from '../../modules/run-jobs/asl';
import type { PolicyDocument, PolicyStatement } from '../../modules/iam';
import type { TerraformJson } from '../../synth/output';
import { routedDevConfig } from '../support/routed-stage';
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

describe('the dispatcher and the janitor of a stage with routes', () => {
  const routes = [
    { name: 'default', queueUrl: ref('aws_sqs_queue', QUEUE.default, 'url'), inputPrefix: 'incoming/', share: 3, priority: 1 },
    { name: 'bulk', queueUrl: ref('aws_sqs_queue', QUEUE.bulk, 'url'), inputPrefix: 'bulk/', inputSuffix: '.csv', share: 1, priority: 0, maxVcpu: 2 },
  ];

  test('know the routes and their queues (ROUTES); a stage without routes has no ROUTES', () => {
    const settingsOf = (fn: 'dispatcher' | 'janitor') => JSON.parse(resolveReferences(JSON.stringify(variablesOf(json, fn)), json, fakeAttribute));
    const queueUrl = (name: string) => `https://sqs.eu-west-1.amazonaws.com/111111111111/${name}`;
    const resolved = routes.map((route) => ({ ...route, queueUrl: queueUrl(route.name === 'default' ? 'sluice-dev-intake' : 'sluice-dev-intake-bulk') }));
    expect(dispatcherSettingsFromEnv(settingsOf('dispatcher')).routes).toEqual(resolved);
    expect(janitorSettingsFromEnv(settingsOf('janitor')).routes).toEqual(resolved);
    expect(JSON.parse(variablesOf(json, 'dispatcher').ROUTES)).toEqual(routes);
    expect(variablesOf(unrouted, 'dispatcher')).not.toHaveProperty('ROUTES');
    expect(variablesOf(unrouted, 'janitor')).not.toHaveProperty('ROUTES');
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

  test('a batch that names no route is refused at the gate, for the janitor to re-queue', () => {
    const gate = states[STATES.checkTaskSize];
    expect(gate.Choices[0]).toEqual({
      And: [
        { Variable: '$.jobs[0].vcpu', NumericEquals: 1 },
        { Variable: '$.jobs[0].capacityProvider', IsPresent: true },
        { Variable: '$.jobs[0].route', IsPresent: true },
      ],
      Next: STATES.runJobs,
    });
    expect(gate.Choices[1].Next).toBe(STATES.admittedWithoutRoute);
    expect(states[STATES.admittedWithoutRoute]).toEqual({
      Type: 'Fail',
      Error: ADMITTED_FOR_ANOTHER_STATE_MACHINE,
      Cause: expect.stringMatching(
        /^the batch names no route \(a dispatcher of another version admitted it while a deploy rolled out\); the janitor re-queues its jobs$/,
      ),
    });
  });

  test('a stage without routes neither counts by route nor asks a batch for one', () => {
    const text = String(resourceNamed(unrouted, 'aws_sfn_state_machine', 'state-machine').definition);
    expect(text).not.toMatch(/route|intakeQueueUrl/);
  });
});
