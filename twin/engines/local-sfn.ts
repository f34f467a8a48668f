import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { StateMachine as StateMachineClass } from 'aws-local-stepfunctions';
import type { VirtualClock } from './clock';
import type { Rng } from './random';

/**
 * aws-local-stepfunctions on the virtual clock.
 *
 * The library measures Wait states, Retry intervals (it implements BackoffRate, MaxDelaySeconds and
 * JitterStrategy FULL itself, see StateExecutor.shouldRetry), Task TimeoutSeconds and execution TimeoutSeconds
 * with the global `setTimeout`, timestamps with `Date`, and jitter with `Math.random`. We evaluate its CommonJS
 * bundle once per run with those four names bound to the virtual clock and the seeded PRNG — scoped to this
 * module only, so the AWS SDK, dynalite's sockets and jest keep real timers. (The alternative, faking the
 * globals with @sinonjs/fake-timers, would also freeze the SDK's own timers; `retryIntervalOverrides` and
 * `waitTimeOverrides` only take constants, so they cannot feed virtual sleeps or per-attempt jitter.)
 *
 * The library's context object lacks `$$.State` (EnteredTime, Name, RetryCount), which Step Functions
 * provides to every state (docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html);
 * `withStateContext` adds it with two small source edits, checked so a library update cannot skip them silently.
 * Without a clock (the pipeline's unit tests) the library runs on real time, with the same `$$.State`.
 */
export type StateMachineConstructor = typeof StateMachineClass;

export function loadLocalStepFunctions(clock?: VirtualClock, rng?: Rng): { StateMachine: StateMachineConstructor } {
  // The library calls Promise.withResolvers (Node 22): on older Node every Task state would fail, its result unhandled.
  if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
    throw new Error(
      `aws-local-stepfunctions needs Node.js 22 or later (this is ${process.version}): run it through npm (npm run simulate, npm test), which uses the pinned node@22`,
    );
  }
  const filename = require.resolve('aws-local-stepfunctions');
  const source = withStateContext(readFileSync(filename, 'utf8'));
  const math = rng ? (Object.create(Math, { random: { value: rng } }) as Math) : Math;
  const module = { exports: {} as Record<string, unknown> };
  const evaluate = new Function('exports', 'require', 'module', '__filename', '__dirname', 'setTimeout', 'clearTimeout', 'Date', 'Math', source);
  evaluate(
    module.exports,
    createRequire(filename),
    module,
    filename,
    dirname(filename),
    clock ? clock.setTimeout.bind(clock) : setTimeout,
    clock ? clock.clearTimeout.bind(clock) : clearTimeout,
    clock ? clock.dateClass() : Date,
    math,
  );
  return module.exports as unknown as { StateMachine: StateMachineConstructor };
}

const ENTER = 'const stateExecutor = new StateExecutor(currStateName, currState);';
const RETRY = 'await sleep(waitTimeBeforeRetry, options.abortSignal);';

function withStateContext(source: string): string {
  for (const snippet of [ENTER, RETRY]) {
    if (source.split(snippet).length !== 2) throw new Error(`aws-local-stepfunctions changed: cannot find '${snippet}' once; update twin/engines/local-sfn.ts`);
  }
  return source
    .replace(ENTER, `context.State = { EnteredTime: new Date().toISOString(), Name: currStateName, RetryCount: 0 };\n        ${ENTER}`)
    .replace(
      RETRY,
      `${RETRY}\n        if (context.State) { context.State.RetryCount = this.retrierAttempts[retrierIndex]; context.State.EnteredTime = new Date().toISOString(); }`,
    );
}
