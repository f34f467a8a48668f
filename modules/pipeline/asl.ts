/**
 * Amazon States Language, typed. Each builder checks its own fields against the ASL spec and returns
 * the plain JSON object it renders to; `stateMachine` checks the graph (every Next exists, every state
 * is reachable). Nothing is a string until `JSON.stringify` at the resource's `definition`.
 */

export interface Retrier {
  readonly ErrorEquals: readonly string[];
  readonly IntervalSeconds?: number;
  readonly MaxAttempts?: number;
  readonly BackoffRate?: number;
  readonly MaxDelaySeconds?: number;
  readonly JitterStrategy?: 'FULL' | 'NONE';
}

export interface Catcher {
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

export interface PassState {
  readonly Type: 'Pass';
  readonly Comment?: string;
  readonly Parameters?: Payload;
  readonly ResultPath?: string | null;
  readonly Next?: string;
  readonly End?: true;
}

export interface WaitState {
  readonly Type: 'Wait';
  readonly Comment?: string;
  readonly Seconds?: number;
  readonly SecondsPath?: string;
  readonly Next?: string;
  readonly End?: true;
}

export type ChoiceRule = Record<string, unknown> & { readonly Next?: string };

export interface ChoiceState {
  readonly Type: 'Choice';
  readonly Comment?: string;
  readonly Choices: readonly ChoiceRule[];
  readonly Default?: string;
}

export interface SucceedState {
  readonly Type: 'Succeed';
  readonly Comment?: string;
}

export interface FailState {
  readonly Type: 'Fail';
  readonly Comment?: string;
  readonly Error?: string;
  readonly Cause?: string;
}

export interface Graph {
  readonly StartAt: string;
  readonly States: Readonly<Record<string, State>>;
}

export interface MapState {
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

export type State = TaskState | PassState | WaitState | ChoiceState | SucceedState | FailState | MapState;

export interface StateMachineDefinition extends Graph {
  readonly Comment?: string;
  readonly TimeoutSeconds?: number;
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
  check(r.MaxAttempts === undefined || (isInt(r.MaxAttempts) && r.MaxAttempts >= 0 && r.MaxAttempts <= 99999999), where, 'MaxAttempts must be a whole number from 0 to 99999999');
  check(r.BackoffRate === undefined || r.BackoffRate >= 1, where, 'BackoffRate must be ≥ 1');
  check(r.MaxDelaySeconds === undefined || (isInt(r.MaxDelaySeconds) && r.MaxDelaySeconds >= 1 && r.MaxDelaySeconds < 31622401), where, 'MaxDelaySeconds must be a whole number from 1 to 31622400');
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

export function task(name: string, props: Omit<TaskState, 'Type' | 'Next' | 'End'> & { next?: string }): TaskState {
  const { next, ...fields } = props;
  check(/^arn:aws[a-z-]*:/.test(fields.Resource), name, `Resource must be an ARN (got ${fields.Resource})`);
  check(fields.TimeoutSeconds === undefined || (isInt(fields.TimeoutSeconds) && fields.TimeoutSeconds > 0), name, 'TimeoutSeconds must be a positive whole number');
  checkErrorHandling(name, fields.Retry, fields.Catch);
  return { Type: 'Task', ...fields, ...transition(next) };
}

export function pass(name: string, props: Omit<PassState, 'Type' | 'Next' | 'End'> & { next?: string }): PassState {
  const { next, ...fields } = props;
  void name;
  return { Type: 'Pass', ...fields, ...transition(next) };
}

export function wait(name: string, props: { Seconds?: number; SecondsPath?: string; Comment?: string; next?: string }): WaitState {
  const { next, ...fields } = props;
  check((fields.Seconds === undefined) !== (fields.SecondsPath === undefined), name, 'a Wait needs exactly one of Seconds or SecondsPath');
  return { Type: 'Wait', ...fields, ...transition(next) };
}

export function choice(name: string, props: { Choices: readonly ChoiceRule[]; Default?: string; Comment?: string }): ChoiceState {
  check(props.Choices.length > 0, name, 'a Choice needs at least one rule');
  props.Choices.forEach((rule, i) => check(typeof rule.Next === 'string', `${name}.Choices[${i}]`, 'a top-level Choice rule needs Next'));
  return { Type: 'Choice', ...props };
}

export function succeed(comment?: string): SucceedState {
  return comment ? { Type: 'Succeed', Comment: comment } : { Type: 'Succeed' };
}

export function map(name: string, props: Omit<MapState, 'Type' | 'Next' | 'End'> & { next?: string }): MapState {
  const { next, ...fields } = props;
  check(fields.MaxConcurrency === undefined || (isInt(fields.MaxConcurrency) && fields.MaxConcurrency >= 0), name, 'MaxConcurrency must be a whole number ≥ 0');
  checkErrorHandling(name, fields.Retry, fields.Catch);
  checkGraph(`${name}.ItemProcessor`, fields.ItemProcessor);
  return { Type: 'Map', ...fields, ...transition(next) };
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

/** Every transition lands on a state of the same graph and every state can be reached from StartAt. */
export function checkGraph(where: string, graph: Graph): void {
  const names = Object.keys(graph.States);
  check(names.includes(graph.StartAt), where, `StartAt "${graph.StartAt}" is not a state`);
  for (const name of names) {
    check(name.length >= 1 && name.length <= 80, where, `state name "${name}" must be 1–80 characters`);
    for (const target of targetsOf(graph.States[name])) check(names.includes(target), `${where}.${name}`, `transitions to unknown state "${target}"`);
  }
  const reached = new Set<string>();
  const frontier = [graph.StartAt];
  while (frontier.length > 0) {
    const name = frontier.pop()!;
    if (reached.has(name)) continue;
    reached.add(name);
    frontier.push(...targetsOf(graph.States[name]));
  }
  const unreachable = names.filter((n) => !reached.has(n));
  check(unreachable.length === 0, where, `unreachable state(s): ${unreachable.join(', ')}`);
}

export function stateMachine(definition: StateMachineDefinition): StateMachineDefinition {
  checkGraph('state machine', definition);
  return definition;
}
