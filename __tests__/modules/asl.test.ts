import {
  AslError,
  checkGraph,
  choice,
  eachState,
  graph,
  integrationResource,
  INTEGRATIONS,
  map,
  pass,
  stateMachine,
  succeed,
  task,
  wait,
} from '../../modules/run-jobs/asl';
import { synthesizedDefinition } from '../support/local-sfn';
import { STAGES } from '../support/synth';

const invoke = 'arn:aws:states:::lambda:invoke';
const allowInvoke = { Sid: 'Invoke', Effect: 'Allow' as const, Action: 'lambda:InvokeFunction', Resource: 'arn:aws:lambda:eu-west-1:111111111111:function:f' };

test('a step is its name, its state and what its integration needs; only Tasks need anything', () => {
  expect(task('Call', { Resource: invoke, next: 'Done' }, [allowInvoke])).toEqual({
    name: 'Call',
    state: { Type: 'Task', Resource: invoke, Next: 'Done' },
    statements: [allowInvoke],
  });
  expect(pass('Shape', { Parameters: { a: 1 } })).toEqual({ name: 'Shape', state: { Type: 'Pass', Parameters: { a: 1 }, End: true }, statements: [] });
});

test('the state machine starts at its first step and its role needs the union of its steps’, the Map’s inner ones included', () => {
  const { definition, statements } = stateMachine({
    Comment: 'c',
    steps: [map('Each', { ItemsPath: '$.items', steps: [task('Call', { Resource: invoke, next: 'Done' }, [allowInvoke]), succeed('Done')], ResultPath: null })],
  });
  expect(definition).toEqual({
    Comment: 'c',
    StartAt: 'Each',
    States: {
      Each: {
        Type: 'Map',
        ItemsPath: '$.items',
        ItemProcessor: {
          ProcessorConfig: { Mode: 'INLINE' },
          StartAt: 'Call',
          States: { Call: { Type: 'Task', Resource: invoke, Next: 'Done' }, Done: { Type: 'Succeed' } },
        },
        ResultPath: null,
        End: true,
      },
    },
  });
  expect(statements).toEqual([allowInvoke]);
});

test('the graph check names every problem at once', () => {
  const problems = checkGraph('machine', {
    StartAt: 'Missing',
    States: {
      A: { Type: 'Pass', Next: 'Nowhere' },
      B: { Type: 'Choice', Choices: [{ Next: 'Elsewhere' }], Default: 'A' },
      ['x'.repeat(81)]: { Type: 'Succeed' },
    },
  });
  expect(problems.map((p) => p.message)).toEqual([
    'ASL machine: StartAt "Missing" is not a state',
    'ASL machine.A: transitions to unknown state "Nowhere"',
    'ASL machine.B: transitions to unknown state "Elsewhere"',
    `ASL machine: state name "${'x'.repeat(81)}" must be 1–80 characters`,
    `ASL machine: unreachable state(s): A, B, ${'x'.repeat(81)}`,
  ]);
  expect(checkGraph('machine', graph([pass('A', { next: 'B' }), succeed('B')]))).toEqual([]);
});

test('a state machine with problems is refused with all of them', () => {
  expect(() => stateMachine({ steps: [pass('A', { next: 'Nowhere' }), wait('Lost', { Seconds: 1 })] })).toThrow(
    new AslError('graph', '2 problems:\n  ASL state machine.A: transitions to unknown state "Nowhere"\n  ASL state machine: unreachable state(s): Lost'),
  );
});

test('two states of one name are refused: the name is the state’s address', () => {
  expect(() => graph([pass('A', { next: 'A' }), choice('A', { Choices: [{ Next: 'A' }] })])).toThrow('ASL graph: two states are named "A"');
});

test('a name used again inside a Map is refused, at any depth: a state’s name is unique in the whole state machine', () => {
  expect(() => stateMachine({ steps: [pass('A', { next: 'Each' }), map('Each', { ItemsPath: '$.items', steps: [pass('A', {})] })] })).toThrow(
    new AslError('state machine', 'state name "A" is used more than once: A, Each/A'),
  );
  const nested = {
    StartAt: 'Outer',
    States: {
      Outer: {
        Type: 'Map',
        ItemProcessor: {
          StartAt: 'Inner',
          States: { Inner: { Type: 'Map', ItemProcessor: { StartAt: 'Done', States: { Done: { Type: 'Succeed' } } }, End: true } },
        },
        Next: 'Done',
      },
      Done: { Type: 'Succeed' },
    },
  } as unknown as Parameters<typeof checkGraph>[1];
  expect(checkGraph('machine', nested).map((p) => p.message)).toEqual(['ASL machine: state name "Done" is used more than once: Outer/Inner/Done, Done']);
  // The same check inside the Map alone finds nothing: its own states are named once.
  expect(checkGraph('machine', graph([pass('A', { next: 'Each' }), map('Each', { steps: [pass('B', {})] })]))).toEqual([]);
});

test('the walk visits every state depth first, those nested in Map (ItemProcessor or Iterator) and Parallel states with where they are', () => {
  const visited = [
    ...eachState({
      States: {
        A: { Type: 'Task' },
        M: {
          Type: 'Map',
          ItemProcessor: {
            States: { B: { Type: 'Task' }, P: { Type: 'Parallel', Branches: [{ States: { C: { Type: 'Pass' } } }, { States: { D: { Type: 'Task' } } }] } },
          },
        },
        Old: { Type: 'Map', Iterator: { States: { E: { Type: 'Succeed' } } } },
      },
    }),
  ];
  expect(visited.map(({ name, path }) => [...path, name].join('/'))).toEqual(['A', 'M', 'M/B', 'M/P', 'M/P/C', 'M/P/D', 'Old', 'Old/E']);
});

test('a Task’s Resource is its integration’s ARN in the partition', () => {
  expect(integrationResource('aws', INTEGRATIONS.lambdaInvoke)).toBe(invoke);
  expect(integrationResource('aws-cn', INTEGRATIONS.ecsRunTaskSync)).toBe('arn:aws-cn:states:::ecs:runTask.sync');
});

test('every error an AWS SDK integration retries or catches carries the Exception suffix, as Step Functions names it', () => {
  // "be sure to include the Exception suffix for potential error names in Step Functions integrations" (supported-services-awssdk)
  for (const stage of STAGES) {
    const definition = synthesizedDefinition(stage);
    for (const { name, state } of eachState(definition) as Iterable<{ name: string; state: any }>) {
      if (state.Type !== 'Task' || !String(state.Resource).includes(':aws-sdk:')) continue;
      const errors = [...(state.Retry ?? []), ...(state.Catch ?? [])].flatMap((r: { ErrorEquals: string[] }) => r.ErrorEquals);
      for (const error of errors.filter((e: string) => !e.startsWith('States.'))) expect(`${name}: ${error}`).toMatch(/Exception$/);
    }
  }
});
