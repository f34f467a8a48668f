import { MAX_EXECUTION_ATTEMPTS } from '../../environments/function-settings';
import { dispatcherSettingsFromEnv, finisherSettingsFromEnv, janitorSettingsFromEnv } from '../../functions/environment';
import { ADMITTED_FOR_ANOTHER_STATE_MACHINE } from '../../functions/jobs';
import { checkGraph, eachState, type StateMachineDefinition } from '../../modules/run-jobs/asl';
import { STATES } from '../../modules/run-jobs/definition';
import type { PolicyDocument, PolicyStatement } from '../../modules/iam';
import type { TerraformJson } from '../../synth/output';
import { fakeAttribute } from '../../twin/synthesized-stage';
import { decide } from '../support/iam';
import { packedDevConfig, packedRoutedDevConfig } from '../support/packed-stage';
import { routedDevConfig } from '../support/routed-stage';
import { STAGES, resolveReferences, resourceNamed, resourcesOf, synthStage } from '../support/synth';

/** dev packing 4 objects a task, and dev with routes where bulk packs 10 (default one). */
const packed = synthStage('dev', packedDevConfig());
const packedRouted = synthStage('dev', packedRoutedDevConfig());
const PACKED = [
  ['dev packing 4 objects a task', packed],
  ['dev with routes, bulk packing 10', packedRouted],
] as const;
// stg packs its `small` route: the shipped stages that do not pack are dev and prod.
const UNPACKED = [
  ...STAGES.filter((stage) => stage !== 'stg').map((stage) => [stage, synthStage(stage)] as const),
  ['dev with routes', synthStage('dev', routedDevConfig())] as const,
];

const resolved = (json: TerraformJson, text: string) => resolveReferences(text, json, fakeAttribute);
const variablesOf = (json: TerraformJson, fn: string) =>
  JSON.parse(
    resolved(json, JSON.stringify((resourceNamed(json, 'aws_lambda_function', `${fn}_function`).environment as { variables: object }).variables)),
  ) as Record<string, string>;
const policyOf = (json: TerraformJson, fragment: string) =>
  JSON.parse(resolved(json, String(resourceNamed(json, 'aws_iam_role_policy', fragment).policy))) as PolicyDocument;
const definitionOf = (json: TerraformJson) =>
  JSON.parse(resolved(json, String(resourceNamed(json, 'aws_sfn_state_machine', 'state-machine').definition))) as StateMachineDefinition;
const statesOf = (json: TerraformJson) => Object.fromEntries([...eachState(definitionOf(json))].map(({ name, state }) => [name, state as any]));
const arn = (service: string, resource: string) => `arn:aws:${service}:eu-west-1:111111111111:${resource}`;
const queueUrl = (name: string) => `https://sqs.eu-west-1.amazonaws.com/111111111111/${name}`;

describe('the finisher', () => {
  test.each(PACKED)('%s: the function, its handler, its environment', (_name, { json }) => {
    const fn = resourceNamed(json, 'aws_lambda_function', 'finish-task_function');
    expect(fn).toMatchObject({ function_name: 'sluice-dev-finish-task', handler: 'index.handler', runtime: 'nodejs22.x', architectures: ['arm64'] });
    expect(String(fn.filename)).toMatch(/finish-task\.zip$/);
    expect(finisherSettingsFromEnv(variablesOf(json, 'finish-task'))).toEqual({
      tableName: 'sluice-dev-state',
      batchesTableName: 'sluice-dev-batches',
      queueUrl: queueUrl('sluice-dev-intake'),
      capacityRetryDelaySeconds: packed.config.capacity.capacityRetryDelaySeconds,
      maxExecutionAttempts: MAX_EXECUTION_ATTEMPTS,
    });
    const alarms = resourcesOf(json, 'aws_cloudwatch_metric_alarm').map(([, alarm]) => alarm);
    expect(alarms).toContainEqual(
      expect.objectContaining({ alarm_name: 'sluice-dev-finish-task-errors', dimensions: { FunctionName: 'sluice-dev-finish-task' } }),
    );
  });

  test.each(UNPACKED)('%s: no finisher on a stage that does not pack', (_name, { json }) => {
    expect(resourcesOf(json, 'aws_lambda_function').map(([name]) => name)).not.toContainEqual(expect.stringContaining('finish'));
    expect(JSON.stringify(json)).not.toContain('finish-task');
  });

  describe.each(PACKED)('%s: its role', (_name, { json, config }) => {
    const policy = policyOf(json, 'finish-task_policy');
    const queues = (config.routes ?? [{ name: 'default' }]).map((route) => arn('sqs', route.name === 'bulk' ? 'sluice-dev-intake-bulk' : 'sluice-dev-intake'));

    type Case = [action: string, resource: string, context: Record<string, string[]>, expected: string];
    const state = arn('dynamodb', 'table/sluice-dev-state');
    const batches = arn('dynamodb', 'table/sluice-dev-batches');
    test.each<Case>([
      ['dynamodb:GetItem', batches, {}, 'Allowed'],
      ['dynamodb:BatchGetItem', state, { 'dynamodb:LeadingKeys': ['JOB#0123', 'JOB#4567'] }, 'Allowed'],
      ['dynamodb:BatchGetItem', state, { 'dynamodb:LeadingKeys': ['JOB#0123', 'POOL'] }, 'ImplicitlyDenied'],
      ['dynamodb:GetItem', state, { 'dynamodb:LeadingKeys': ['POOL'] }, 'ImplicitlyDenied'],
      ...['JOB#0123', 'RELEASED#7', 'POOL'].map((key): Case => ['dynamodb:UpdateItem', state, { 'dynamodb:LeadingKeys': [key] }, 'Allowed']),
      ['dynamodb:UpdateItem', state, { 'dynamodb:LeadingKeys': ['OTHER'] }, 'ImplicitlyDenied'],
      ['dynamodb:DeleteItem', state, { 'dynamodb:LeadingKeys': ['JOB#0123'] }, 'ImplicitlyDenied'],
      ['dynamodb:UpdateItem', batches, {}, 'ImplicitlyDenied'],
      ['dynamodb:DeleteItem', batches, {}, 'ImplicitlyDenied'],
      ['sqs:SendMessage', arn('sqs', 'sluice-dev-intake-dlq'), {}, 'ImplicitlyDenied'],
      ['lambda:InvokeFunction', arn('lambda', 'function:sluice-dev-dispatcher'), {}, 'ImplicitlyDenied'],
    ])('%s on %s %j: %s', async (action, resource, context, expected) => {
      expect(await decide(policy, { action, resource, context })).toBe(expected);
    });

    test("sends objects back to every queue a job may wait in (each route's), and to no other", async () => {
      for (const queue of queues) expect(await decide(policy, { action: 'sqs:SendMessage', resource: queue })).toBe('Allowed');
      const sends = policy.Statement.filter((s: PolicyStatement) => [s.Action].flat().includes('sqs:SendMessage'));
      expect(sends.flatMap((s) => [s.Resource].flat())).toEqual(queues);
    });
  });
});

describe('the settings of a stage that packs', () => {
  test("without routes, the dispatcher's OBJECTS_PER_TASK; a stage that does not pack has none", () => {
    expect(variablesOf(packed.json, 'dispatcher').OBJECTS_PER_TASK).toBe('4');
    expect(dispatcherSettingsFromEnv(variablesOf(packed.json, 'dispatcher')).objectsPerTask).toBe(4);
    for (const [, { json }] of UNPACKED) expect(variablesOf(json, 'dispatcher')).not.toHaveProperty('OBJECTS_PER_TASK');
  });

  test("with routes, each packed route's objectsPerTask in ROUTES (the dispatcher's and the janitor's); an unpacked route has none", () => {
    const { json } = packedRouted;
    for (const settings of [dispatcherSettingsFromEnv(variablesOf(json, 'dispatcher')), janitorSettingsFromEnv(variablesOf(json, 'janitor'))]) {
      expect(settings.routes!.map((route) => [route.name, route.objectsPerTask])).toEqual([
        ['default', undefined],
        ['bulk', 10],
      ]);
    }
    expect(variablesOf(json, 'dispatcher')).not.toHaveProperty('OBJECTS_PER_TASK');
    // A route without packing of its own takes the stage's.
    const { json: stageWide } = synthStage('dev', { ...packedRoutedDevConfig(), packing: { objectsPerTask: 3 } });
    expect(dispatcherSettingsFromEnv(variablesOf(stageWide, 'dispatcher')).routes!.map((route) => route.objectsPerTask)).toEqual([3, 10]);
  });

  test.each(PACKED)("%s: every task definition's worker knows the batches table", (_name, { json }) => {
    const definitions = resourcesOf(json, 'aws_ecs_task_definition');
    expect(definitions.length).toBeGreaterThan(0);
    for (const [, definition] of definitions) {
      expect(JSON.parse(String(definition.container_definitions))[0].environment).toContainEqual({ name: 'BATCHES_TABLE_NAME', value: 'sluice-dev-batches' });
    }
  });

  test.each(UNPACKED)('%s: a stage that does not pack tells its workers nothing of batches', (_name, { json }) => {
    for (const [, definition] of resourcesOf(json, 'aws_ecs_task_definition')) expect(String(definition.container_definitions)).not.toContain('BATCHES_TABLE');
  });

  test('the stage settings output says how many objects a task runs, where it is more than one', () => {
    const settingsOf = (json: TerraformJson) => (json.output as Record<string, { value: Record<string, any> }>).settings.value;
    expect(settingsOf(packed.json).objectsPerTask).toBe(4);
    expect(settingsOf(packedRouted.json)).not.toHaveProperty('objectsPerTask');
    expect(settingsOf(packedRouted.json).routes.map((route: { objectsPerTask?: number }) => route.objectsPerTask)).toEqual([undefined, 10]);
    for (const [, { json }] of UNPACKED) expect(JSON.stringify(settingsOf(json))).not.toContain('objectsPerTask');
  });
});

describe.each(PACKED)('the state machine of %s', (_name, { json, config }) => {
  const states = statesOf(json);
  const finisherArn = arn('lambda', 'function:sluice-dev-finish-task');
  const routed = config.routes !== undefined;

  test('its graph passes the project’s checks (every Next exists, every state reached, names used once)', () => {
    expect(checkGraph('packed', definitionOf(json))).toEqual([]);
  });

  test('RunTask passes the task’s place on its batch record, not an object’s, and tags the task with its lead job', () => {
    for (const name of [STATES.runTask, STATES.runTaskWhileThrottled]) {
      const parameters = states[name].Parameters;
      expect(parameters.Overrides.ContainerOverrides[0].Environment).toEqual([
        { Name: 'BATCH', 'Value.$': '$$.Execution.Name' },
        { Name: 'TASK_INDEX', 'Value.$': "States.Format('{}', $.job.pack.task)" },
        { Name: 'JOB_ID', 'Value.$': '$.job.jobId' },
        { Name: 'STATE_ENTERED_AT', 'Value.$': '$$.State.EnteredTime' },
        ...(routed ? [{ Name: 'ROUTE', 'Value.$': '$.job.route' }] : []),
      ]);
      expect(parameters.Tags).toEqual([{ Key: 'sluice:job', 'Value.$': '$.job.jobId' }]);
    }
  });

  test('the gate refuses a batch that names no packed task, for the janitor to re-queue', () => {
    const gate = states[STATES.checkTaskSize];
    expect(gate.Choices[0].Next).toBe(STATES.runJobs);
    expect(gate.Choices[0].And).toContainEqual({ Variable: '$.jobs[0].pack', IsPresent: true });
    // The rest of the gate as an unpacked stage's: a batch that passes it but names no task is refused.
    const { And: rest } = gate.Choices[1];
    expect(rest).toEqual(gate.Choices[0].And.filter((rule: { Variable: string }) => rule.Variable !== '$.jobs[0].pack'));
    expect(gate.Choices[1].Next).toBe(STATES.admittedUnpacked);
    expect(states[STATES.admittedUnpacked]).toEqual({
      Type: 'Fail',
      Error: ADMITTED_FOR_ANOTHER_STATE_MACHINE,
      Cause: 'the batch names no packed task (a dispatcher of another version admitted it while a deploy rolled out); the janitor re-queues its jobs',
    });
  });

  const outcomes = {
    [STATES.finishJob]: { kind: 'ran', 'taskArn.$': '$.task.taskArn' },
    [STATES.recordFailure]: { kind: 'failed', 'error.$': '$.failure.Error', 'cause.$': 'States.JsonToString($.failure)' },
    [STATES.returnForCapacity]: { kind: 'returned', why: 'classShort', 'reason.$': 'States.JsonToString($.failure)' },
    [STATES.returnWhileThrottled]: { kind: 'returned', why: 'plain', 'reason.$': 'States.JsonToString($.failure)' },
    [STATES.returnForVcpuLimit]: { kind: 'returned', why: 'hold', 'reason.$': 'States.JsonToString($.failure)' },
  };

  test.each(Object.entries(outcomes))(
    '%s invokes the finisher, waits for it, retries it, and leaves the task to the janitor if it keeps failing',
    (name, outcome) => {
      const state = states[name];
      expect(state).toMatchObject({
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Parameters: {
          FunctionName: finisherArn,
          InvocationType: 'RequestResponse',
          Payload: { 'execution.$': '$$.Execution.Name', 'job.$': '$.job', outcome },
        },
        ResultPath: null,
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.finishError', Next: STATES.leaveToJanitor }],
        Next: STATES.wakeDispatcher,
      });
      expect(state.Retry.map((r: { ErrorEquals: string[] }) => r.ErrorEquals)).toEqual([
        expect.arrayContaining(['Lambda.TooManyRequestsException']),
        ['States.ALL'],
      ]);
    },
  );

  test('nothing else of the state machine writes the ledger or the queues: the finisher does, and its role no longer may', () => {
    for (const name of [
      STATES.recordSucceededOnly,
      STATES.recordFailedOnly,
      STATES.giveBackLease,
      STATES.giveBackLeaseShortOfCapacity,
      STATES.giveBackLeaseAndHold,
    ])
      expect(states).not.toHaveProperty(name);
    const resources = Object.values(states)
      .filter((state) => state.Type === 'Task')
      .map((state) => state.Resource);
    expect(new Set(resources)).toEqual(new Set(['arn:aws:states:::ecs:runTask.sync', 'arn:aws:states:::lambda:invoke']));
    const sids = policyOf(json, 'pipeline_policy').Statement.map((s) => s.Sid);
    expect(sids).toContain('InvokeTheFinisher');
    expect(sids).not.toContain('LedgerRowsAndCounters');
    expect(sids).not.toContain('BackToTheQueue');
    expect(policyOf(json, 'pipeline_policy').Statement.find((s) => s.Sid === 'InvokeTheFinisher')!.Resource).toBe(finisherArn);
  });
});

test('a stage that does not pack has the graph it had: no pack asked at the gate, an object per task', () => {
  for (const [, { json }] of UNPACKED) {
    const text = String(resourceNamed(json, 'aws_sfn_state_machine', 'state-machine').definition);
    expect(text).not.toMatch(/pack|BATCH|TASK_INDEX|finish-task|AdmittedUnpacked/);
    expect(text).toContain('"Name":"KEY"');
  }
});
