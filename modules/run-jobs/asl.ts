/**
 * Amazon States Language, typed. Each builder checks its own fields against the ASL spec and returns a Step: the
 * state's name (given once), the plain JSON object it renders to, and the IAM statements its integration needs (a
 * Task's; the others need none). `graph` gathers steps into a state graph and the union of their statements;
 * `stateMachine` checks the graph (every Next exists, every state is reachable, no name is used twice at any depth),
 * naming every problem at once.
 * Nothing is a string until `JSON.stringify` at the resource's `definition`.
 */
import type { PolicyStatement } from '../iam';

export interface Retrier {
  readonly ErrorEquals: readonly string[];
  readonly IntervalSeconds?: number;
  readonly MaxAttempts?: number;
  readonly BackoffRate?: number;
  readonly MaxDelaySeconds?: number;
  readonly JitterStrategy?: 'FULL' | 'NONE';
}

interface Catcher {
  readonly ErrorEquals: readonly string[];
  readonly Next: string;
  readonly ResultPath?: string | null;
}

type Transition = { readonly Next: string; readonly End?: never } | { readonly End: true; readonly Next?: never };
type Payload = Record<string, unknown>;

export interface TaskState {
  readonly Type: 'Task';
  readonly Comment?: string;
  readonly Resource: string;
  readonly Parameters?: Payload;
  readonly ResultSelector?: Payload;
  readonly ResultPath?: string | null;
  readonly OutputPath?: string;
  readonly TimeoutSeconds?: number;
  readonly Retry?: readonly Retrier[];
  readonly Catch?: readonly Catcher[];
  readonly Next?: string;
  readonly End?: true;
}

interface PassState {
  readonly Type: 'Pass';
  readonly Comment?: string;
  readonly Parameters?: Payload;
  readonly ResultPath?: string | null;
  readonly Next?: string;
  readonly End?: true;
}

interface WaitState {
  readonly Type: 'Wait';
  readonly Comment?: string;
  readonly Seconds?: number;
  readonly SecondsPath?: string;
  readonly Next?: string;
  readonly End?: true;
}

export type ChoiceRule = Record<string, unknown> & { readonly Next?: string };

interface ChoiceState {
  readonly Type: 'Choice';
  readonly Comment?: string;
  readonly Choices: readonly ChoiceRule[];
  readonly Default?: string;
}

interface SucceedState {
  readonly Type: 'Succeed';
  readonly Comment?: string;
}

interface FailState {
  readonly Type: 'Fail';
  readonly Comment?: string;
  readonly Error?: string;
  readonly Cause?: string;
}

interface Graph {
  readonly StartAt: string;
  readonly States: Readonly<Record<string, State>>;
}

interface MapState {
  readonly Type: 'Map';
  readonly Comment?: string;
  readonly ItemsPath?: string;
  readonly ItemSelector?: Payload;
  readonly MaxConcurrency?: number;
  readonly ItemProcessor: Graph & { readonly ProcessorConfig: { readonly Mode: 'INLINE' } };
  readonly ResultPath?: string | null;
  readonly Retry?: readonly Retrier[];
  readonly Catch?: readonly Catcher[];
  readonly Next?: string;
  readonly End?: true;
}

type State = TaskState | PassState | WaitState | ChoiceState | SucceedState | FailState | MapState;

export interface StateMachineDefinition extends Graph {
  readonly Comment?: string;
  readonly TimeoutSeconds?: number;
}

/** The actions of Step Functions' optimized DynamoDB integration, `dynamodb:<action>`. */
export type DynamoDbAction = 'getItem' | 'putItem' | 'updateItem' | 'deleteItem';

/**
 * The service integrations Task states call, as Step Functions names them. A Task's Resource is the integration's ARN
 * (`integrationResource`): the state machine is built with these, the twin runs a state by its Resource and the tests
 * derive a state's IAM requests from it — each keyed by these, so an integration's name is written here only.
 */
export const INTEGRATIONS = {
  ecsRunTaskSync: 'ecs:runTask.sync',
  dynamodbTransactWriteItems: 'aws-sdk:dynamodb:transactWriteItems',
  dynamodbUpdateItem: 'dynamodb:updateItem',
  sqsSendMessage: 'sqs:sendMessage',
  lambdaInvoke: 'lambda:invoke',
} as const;

/** An integration a Task can name: one of INTEGRATIONS, or any action of the optimized DynamoDB integration. */
export type Integration = (typeof INTEGRATIONS)[keyof typeof INTEGRATIONS] | `dynamodb:${DynamoDbAction}`;

/** A Task state's Resource for an integration: `arn:<partition>:states:::<integration>`. */
export function integrationResource(partition: string, integration: Integration): string {
  return `arn:${partition}:states:::${integration}`;
}

/** A state where it is: its name, the state, and the names of the Map and Parallel states around it, outermost first. */
interface VisitedState<S> {
  readonly name: string;
  readonly state: S;
  readonly path: readonly string[];
}

type States<S> = { readonly States: Readonly<Record<string, S>> };

/** What the walk reads of a state: the graphs nested in it. */
interface Nesting<S> {
  readonly ItemProcessor?: States<S>;
  /** A Map's ItemProcessor by its older name. */
  readonly Iterator?: States<S>;
  readonly Branches?: readonly States<S>[];
}

/**
 * Every state of a definition (or of any graph in it), depth first in the order written: each state, then the states
 * nested in it — a Map's ItemProcessor (or Iterator), each Branch of a Parallel. The one walk of a definition: the
 * twin and the tests find states through it.
 */
export function* eachState<S extends { readonly Type: string }>(graph: States<S>, path: readonly string[] = []): Generator<VisitedState<S>> {
  for (const [name, state] of Object.entries(graph.States)) {
    yield { name, state, path };
    const nesting = state as Nesting<S>;
    const nested = state.Type === 'Map' ? [nesting.ItemProcessor ?? nesting.Iterator] : state.Type === 'Parallel' ? (nesting.Branches ?? []) : [];
    for (const inner of nested) if (inner) yield* eachState(inner, [...path, name]);
  }
}

export class AslError extends Error {
  constructor(where: string, problem: string) {
    super(`ASL ${where}: ${problem}`);
    this.name = 'AslError';
  }
}

function check(condition: boolean, where: string, problem: string): void {
  if (!condition) throw new AslError(where, problem);
}

const isInt = (n: number | undefined) => n === undefined || Number.isInteger(n);

export function retrier(where: string, r: Retrier): Retrier {
  check(r.ErrorEquals.length > 0, where, 'a Retrier needs ErrorEquals');
  check(!r.ErrorEquals.includes('States.ALL') || r.ErrorEquals.length === 1, where, 'States.ALL must appear alone');
  check(r.IntervalSeconds === undefined || (isInt(r.IntervalSeconds) && r.IntervalSeconds >= 1), where, 'IntervalSeconds must be a whole number ≥ 1');
  check(
    r.MaxAttempts === undefined || (isInt(r.MaxAttempts) && r.MaxAttempts >= 0 && r.MaxAttempts <= 99999999),
    where,
    'MaxAttempts must be a whole number from 0 to 99999999',
  );
  check(r.BackoffRate === undefined || r.BackoffRate >= 1, where, 'BackoffRate must be ≥ 1');
  check(
    r.MaxDelaySeconds === undefined || (isInt(r.MaxDelaySeconds) && r.MaxDelaySeconds >= 1 && r.MaxDelaySeconds < 31622401),
    where,
    'MaxDelaySeconds must be a whole number from 1 to 31622400',
  );
  return r;
}

function transition(next: string | undefined): Transition {
  return next === undefined ? { End: true } : { Next: next };
}

function checkErrorHandling(where: string, retry?: readonly Retrier[], catchers?: readonly Catcher[]): void {
  retry?.forEach((r, i) => retrier(`${where}.Retry[${i}]`, r));
  const all = retry?.findIndex((r) => r.ErrorEquals.includes('States.ALL')) ?? -1;
  check(all === -1 || all === retry!.length - 1, where, 'a States.ALL Retrier must come last');
  catchers?.forEach((c, i) => check(c.ErrorEquals.length > 0, `${where}.Catch[${i}]`, 'a Catcher needs ErrorEquals'));
  const catchAll = catchers?.findIndex((c) => c.ErrorEquals.includes('States.ALL')) ?? -1;
  check(catchAll === -1 || catchAll === catchers!.length - 1, where, 'a States.ALL Catcher must come last');
}

/** A state with its name and the IAM statements it needs. */
export interface Step<S extends State = State> {
  readonly name: string;
  readonly state: S;
  readonly statements: readonly PolicyStatement[];
}

const step = <S extends State>(name: string, state: S, statements: readonly PolicyStatement[] = []): Step<S> => ({ name, state, statements });

/** A Task state and the statements its integration needs to make the call. */
export function task(
  name: string,
  props: Omit<TaskState, 'Type' | 'Next' | 'End'> & { next?: string },
  statements: readonly PolicyStatement[],
): Step<TaskState> {
  const { next, ...fields } = props;
  check(/^arn:aws[a-z-]*:/.test(fields.Resource), name, `Resource must be an ARN (got ${fields.Resource})`);
  check(
    fields.TimeoutSeconds === undefined || (isInt(fields.TimeoutSeconds) && fields.TimeoutSeconds > 0),
    name,
    'TimeoutSeconds must be a positive whole number',
  );
  checkErrorHandling(name, fields.Retry, fields.Catch);
  return step(name, { Type: 'Task', ...fields, ...transition(next) }, statements);
}

export function pass(name: string, props: Omit<PassState, 'Type' | 'Next' | 'End'> & { next?: string }): Step<PassState> {
  const { next, ...fields } = props;
  return step(name, { Type: 'Pass', ...fields, ...transition(next) });
}

export function wait(name: string, props: { Seconds?: number; SecondsPath?: string; Comment?: string; next?: string }): Step<WaitState> {
  const { next, ...fields } = props;
  check((fields.Seconds === undefined) !== (fields.SecondsPath === undefined), name, 'a Wait needs exactly one of Seconds or SecondsPath');
  return step(name, { Type: 'Wait', ...fields, ...transition(next) });
}

export function choice(name: string, props: { Choices: readonly ChoiceRule[]; Default?: string; Comment?: string }): Step<ChoiceState> {
  check(props.Choices.length > 0, name, 'a Choice needs at least one rule');
  props.Choices.forEach((rule, i) => check(typeof rule.Next === 'string', `${name}.Choices[${i}]`, 'a top-level Choice rule needs Next'));
  return step(name, { Type: 'Choice', ...props });
}

export function fail(name: string, props: { Error: string; Cause: string; Comment?: string }): Step<FailState> {
  check(props.Error.length > 0, name, 'a Fail state needs an Error');
  return step(name, { Type: 'Fail', ...props });
}

export function succeed(name: string, comment?: string): Step<SucceedState> {
  return step(name, comment ? { Type: 'Succeed', Comment: comment } : { Type: 'Succeed' });
}

/** An inline Map over `steps`, starting at the first; it needs what its steps need. */
export function map(
  name: string,
  props: Omit<MapState, 'Type' | 'Next' | 'End' | 'ItemProcessor'> & { steps: readonly Step[]; next?: string },
): Step<MapState> {
  const { next, steps, ...fields } = props;
  check(fields.MaxConcurrency === undefined || (isInt(fields.MaxConcurrency) && fields.MaxConcurrency >= 0), name, 'MaxConcurrency must be a whole number ≥ 0');
  checkErrorHandling(name, fields.Retry, fields.Catch);
  const processor = graph(steps);
  throwIfAny(checkGraph(`${name}.ItemProcessor`, processor));
  const { ResultPath, Retry, Catch, ...head } = fields;
  const ItemProcessor = { ProcessorConfig: { Mode: 'INLINE' as const }, StartAt: processor.StartAt, States: processor.States };
  const tail = { ...('ResultPath' in fields ? { ResultPath } : {}), ...(Retry ? { Retry } : {}), ...(Catch ? { Catch } : {}) };
  return step(name, { Type: 'Map', ...head, ItemProcessor, ...tail, ...transition(next) }, processor.statements);
}

/** Steps as a graph that starts at the first, with the union of what they need. */
export function graph(steps: readonly Step[]): Graph & { readonly statements: readonly PolicyStatement[] } {
  check(steps.length > 0, 'graph', 'a graph needs at least one state');
  const States: Record<string, State> = {};
  for (const s of steps) {
    check(!(s.name in States), 'graph', `two states are named "${s.name}"`);
    States[s.name] = s.state;
  }
  return { StartAt: steps[0].name, States, statements: steps.flatMap((s) => s.statements) };
}

function targetsOf(state: State): string[] {
  const targets: string[] = [];
  if ('Next' in state && state.Next) targets.push(state.Next);
  if (state.Type === 'Choice') {
    state.Choices.forEach((rule) => rule.Next && targets.push(rule.Next));
    if (state.Default) targets.push(state.Default);
  }
  if ((state.Type === 'Task' || state.Type === 'Map') && state.Catch) state.Catch.forEach((c) => targets.push(c.Next));
  return targets;
}

/**
 * Names given to more than one state anywhere in the graph, its nested graphs (Map, Parallel) included: a state's name
 * is its address in the execution history, and ASL wants it unique in the whole state machine.
 */
function namesUsedTwice(where: string, g: Graph): AslError[] {
  const placesOf = new Map<string, string[]>();
  for (const { name, path } of eachState<State>(g)) placesOf.set(name, [...(placesOf.get(name) ?? []), [...path, name].join('/')]);
  return [...placesOf]
    .filter(([, places]) => places.length > 1)
    .map(([name, places]) => new AslError(where, `state name "${name}" is used more than once: ${places.join(', ')}`));
}

/**
 * Every problem of a graph, at once: names out of bounds or used twice (nested graphs included), transitions to
 * unknown states, states never reached.
 */
export function checkGraph(where: string, g: Graph): AslError[] {
  const names = Object.keys(g.States);
  const problems: AslError[] = [];
  if (!names.includes(g.StartAt)) problems.push(new AslError(where, `StartAt "${g.StartAt}" is not a state`));
  for (const name of names) {
    if (name.length < 1 || name.length > 80) problems.push(new AslError(where, `state name "${name}" must be 1–80 characters`));
    for (const target of targetsOf(g.States[name]))
      if (!names.includes(target)) problems.push(new AslError(`${where}.${name}`, `transitions to unknown state "${target}"`));
  }
  problems.push(...namesUsedTwice(where, g));
  const reached = new Set<string>();
  const frontier = names.includes(g.StartAt) ? [g.StartAt] : [];
  while (frontier.length > 0) {
    const name = frontier.pop()!;
    if (reached.has(name) || !(name in g.States)) continue;
    reached.add(name);
    frontier.push(...targetsOf(g.States[name]));
  }
  const unreachable = names.filter((n) => !reached.has(n));
  if (unreachable.length > 0) problems.push(new AslError(where, `unreachable state(s): ${unreachable.join(', ')}`));
  return problems;
}

function throwIfAny(problems: readonly AslError[]): void {
  if (problems.length === 1) throw problems[0];
  if (problems.length > 1) throw new AslError('graph', `${problems.length} problems:\n${problems.map((p) => `  ${p.message}`).join('\n')}`);
}

/** The state machine over `steps` (starting at the first), and the statements its role needs for them. */
export function stateMachine(props: { Comment?: string; TimeoutSeconds?: number; steps: readonly Step[] }): {
  definition: StateMachineDefinition;
  statements: readonly PolicyStatement[];
} {
  const { steps, ...fields } = props;
  const { statements, ...g } = graph(steps);
  const definition: StateMachineDefinition = { ...fields, ...g };
  throwIfAny(checkGraph('state machine', definition));
  return { definition, statements };
}
