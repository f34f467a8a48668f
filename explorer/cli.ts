/**
 * `npm run explore`: searches the protocol's interleavings for a counterexample to DESIGN.md's invariants.
 *
 *   npm run explore                                   # CI: random schedules and the bounded exhaustive search, 2 processes
 *   npm run explore -- --seconds 3600                 # deep: random schedules for as long as asked
 *   npm run explore -- --seeds 1-500                  # exactly these seeds
 *   npm run explore -- --exhaustive                   # every schedule of the small scripts within the bounds
 *   npm run explore -- --routes --seeds 1-500         # on the stage with two routes (one capped)
 *   npm run explore -- --packed --seeds 1-500         # on the stage whose tasks run two objects each
 *   npm run explore -- --replay explorer/counterexamples/<name>.json [--verbose]
 *
 * A violation is shrunk and written as a replayable counterexample (seed, outside events, choices); the command exits
 * 1. It prints schedules per second, distinct states and interleavings covered.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LibraryBinding } from './engines';
import { exploreExhaustively, EXHAUSTIVE_SCRIPTS, type ExhaustiveBounds } from './exhaustive';
import {
  interleavingDigest,
  RandomChooser,
  randomLeanings,
  randomScript,
  ReplayChooser,
  runSchedule,
  shrink,
  type Context,
  type Counterexample,
  type ScheduleResult,
} from './search';
import { explorerStage, shapeOf } from './stage';
import type { EnvEvent } from './world';

const USAGE = `usage: npm run explore -- [--seconds N [--first-seed N] | --seeds A-B | --exhaustive [--delays D --faults F --depth N]] [--routes | --packed] [--workers N] [--out dir]
       npm run explore -- --replay file.json [--verbose]`;

/** What a search found: counts, the digests of states and interleavings met, and the violations (a few of each kind). */
interface Tally {
  schedules: number;
  steps: number;
  settled: number;
  states: string[];
  interleavings: string[];
  violations: Counterexample[];
  byKind: Record<string, number>;
}

/** Counterexamples kept per kind (the first one is shrunk). */
const KEPT_PER_KIND = 3;

/** Which stage a search runs on: the plain one, the one with routes, or the one that packs. */
interface ShapeFlags {
  readonly routes?: boolean;
  readonly packed?: boolean;
}

/** The flags a counterexample carries (only those set). */
function flagsOf(shape: ShapeFlags): { routes?: true; packed?: true } {
  return { ...(shape.routes ? { routes: true as const } : {}), ...(shape.packed ? { packed: true as const } : {}) };
}

/** A counterexample's file name part, and how its seed is described. */
function shapeLabel(shape: ShapeFlags): string {
  return shape.routes ? 'routes' : shape.packed ? 'packed' : '';
}

function context(shape: ShapeFlags = {}): Context {
  const es = explorerStage(shapeOf(shape));
  const binding = new LibraryBinding();
  return { es, binding, machine: binding.machine(es.stage.stateMachine.definition) };
}

class Collector {
  constructor(private readonly shape: ShapeFlags = {}) {}
  readonly tally: Tally = { schedules: 0, steps: 0, settled: 0, states: [], interleavings: [], violations: [], byKind: {} };
  private readonly states = new Set<string>();
  private readonly interleavings = new Set<string>();

  add(result: ScheduleResult, seed: number, script: readonly EnvEvent[]): void {
    const t = this.tally;
    t.schedules++;
    t.steps += result.steps;
    if (result.settled) t.settled++;
    for (const state of result.states) this.states.add(state);
    this.interleavings.add(interleavingDigest(result.trace));
    if (!result.violation) return;
    if (process.send && this.tally.violations.length === 0) process.send({ found: true } satisfies ToParent);
    const kind = result.violation.kind;
    t.byKind[kind] = (t.byKind[kind] ?? 0) + 1;
    if (t.byKind[kind] <= KEPT_PER_KIND) t.violations.push({ violation: result.violation, seed, script, choices: result.choices, ...flagsOf(this.shape) });
  }

  done(): Tally {
    return { ...this.tally, states: [...this.states], interleavings: [...this.interleavings] };
  }
}

/** Set when the parent says another worker found a violation and --stop-at-first was asked. */
let stopped = false;

/** Random schedules: seeds `first`, `first + stride`, … until the deadline or past `last`. */
async function exploreRandomly(ctx: Context, first: number, stride: number, last: number, deadline: number, stopAtFirst: boolean): Promise<Tally> {
  const collector = new Collector({ routes: ctx.es.config.routes !== undefined, packed: ctx.es.finisher !== undefined });
  for (let seed = first; seed <= last && Date.now() < deadline && !stopped && !(stopAtFirst && collector.tally.violations.length > 0); seed += stride) {
    const script = randomScript(seed);
    collector.add(await runSchedule(ctx, script, seed, new RandomChooser(seed, randomLeanings(seed)), undefined, true), seed, script);
  }
  return collector.done();
}

/** The exhaustive search in a worker: scripts by number, as the parent hands them out, until it says there are none. */
async function exploreScripts(
  ctx: Context,
  deadline: number,
  bounds: ExhaustiveBounds,
  next: () => Promise<number | undefined>,
  stopAtFirst: boolean,
): Promise<Tally & { complete: boolean }> {
  const collector = new Collector();
  let complete = true;
  const scripts = Object.values(EXHAUSTIVE_SCRIPTS);
  const until = () => (stopped || (stopAtFirst && collector.tally.violations.length > 0) ? 0 : deadline);
  for (let i = await next(); i !== undefined && until() > 0; i = await next()) {
    if (!(await exploreExhaustively(ctx, scripts[i], bounds, deadline, (result) => collector.add(result, 1, scripts[i]), until))) complete = false;
  }
  return { ...collector.done(), complete };
}

interface WorkerJob {
  readonly mode: 'random' | 'exhaustive';
  readonly index: number;
  readonly workers: number;
  readonly first: number;
  readonly last: number;
  readonly deadline: number;
  readonly bounds?: ExhaustiveBounds;
  /** Stop every worker at the first violation any finds (for measuring how soon a break is found). */
  readonly stopAtFirst?: boolean;
  /** On the stage with routes, or the one that packs. */
  readonly routes?: boolean;
  readonly packed?: boolean;
}

/** Messages between the parent and a worker: a worker asks for the next script; the parent answers its number, or none. */
type ToParent = { readonly ask: 'script' } | { readonly found: true } | { readonly tally: Tally & { complete?: boolean } };
type ToWorker = { readonly script: number | undefined } | { readonly stop: true };

async function worker(job: WorkerJob): Promise<void> {
  const ctx = context(job);
  let answer: ((script: number | undefined) => void) | undefined;
  process.on('message', (message: ToWorker) => {
    if ('stop' in message) stopped = true;
    else answer?.(message.script);
  });
  const next = () =>
    new Promise<number | undefined>((resolve) => {
      if (stopped) return resolve(undefined);
      answer = resolve;
      process.send!({ ask: 'script' } satisfies ToParent);
    });
  const tally =
    job.mode === 'random'
      ? await exploreRandomly(ctx, job.first + job.index, job.workers, job.last, job.deadline, job.stopAtFirst === true)
      : await exploreScripts(ctx, job.deadline, job.bounds!, next, job.stopAtFirst === true);
  await new Promise<void>((resolve) => process.send!({ tally } satisfies ToParent, () => resolve()));
  // The message listener keeps the channel (and the process) alive: done, let go of it.
  process.disconnect();
}

/** Runs `job` in `workers` processes (each its own share) and merges what they found. */
async function inWorkers(job: Omit<WorkerJob, 'index'>): Promise<Tally & { complete?: boolean }> {
  // The exhaustive scripts differ in size: each worker takes the next one when it is done with its last.
  let nextScript = 0;
  const scripts = Object.keys(EXHAUSTIVE_SCRIPTS).length;
  const children: ChildProcess[] = [];
  const tallies = await Promise.all(
    Array.from(
      { length: job.workers },
      (_, index) =>
        new Promise<Tally & { complete?: boolean }>((resolve, reject) => {
          const child = fork(__filename, ['--worker', JSON.stringify({ ...job, index })], { execArgv: process.execArgv, stdio: 'inherit' });
          let tally: (Tally & { complete?: boolean }) | undefined;
          children.push(child);
          child.on('message', (message: ToParent) => {
            if ('tally' in message) tally = message.tally;
            else if ('found' in message) {
              for (const other of children) if (other !== child && other.connected) other.send({ stop: true } satisfies ToWorker);
            } else child.send({ script: nextScript < scripts ? nextScript++ : undefined } satisfies ToWorker);
          });
          child.on('exit', (code) => (tally ? resolve(tally) : reject(new Error(`explorer worker ${index} exited ${code} without a report`))));
        }),
    ),
  );
  const states = new Set(tallies.flatMap((t) => t.states));
  const interleavings = new Set(tallies.flatMap((t) => t.interleavings));
  const byKind: Record<string, number> = {};
  for (const t of tallies) for (const [k, n] of Object.entries(t.byKind)) byKind[k] = (byKind[k] ?? 0) + n;
  return {
    schedules: tallies.reduce((n, t) => n + t.schedules, 0),
    steps: tallies.reduce((n, t) => n + t.steps, 0),
    settled: tallies.reduce((n, t) => n + t.settled, 0),
    states: [...states],
    interleavings: [...interleavings],
    violations: tallies.flatMap((t) => t.violations),
    byKind,
    ...(job.mode === 'exhaustive' ? { complete: tallies.every((t) => t.complete !== false) } : {}),
  };
}

function report(label: string, tally: Tally & { complete?: boolean }, seconds: number): void {
  console.log(
    `${label}: ${tally.schedules} schedules in ${seconds.toFixed(1)} s (${(tally.schedules / seconds).toFixed(1)}/s), ${tally.steps} steps, ` +
      `${tally.settled} settled; ${tally.states.length} distinct states, ${tally.interleavings.length} distinct interleavings` +
      `${tally.complete === undefined ? '' : tally.complete ? '; every schedule within the bounds explored' : Object.keys(tally.byKind).length > 0 ? '; stopped before the bounds were exhausted' : '; stopped by the time limit before the bounds were exhausted'}; ` +
      `violations: ${Object.keys(tally.byKind).length === 0 ? 'none' : JSON.stringify(tally.byKind)}`,
  );
}

async function shrinkAndWrite(violations: readonly Counterexample[], out: string): Promise<void> {
  mkdirSync(out, { recursive: true });
  const firsts = new Map<string, Counterexample>();
  for (const v of violations) if (!firsts.has(`${v.violation.kind}-${shapeLabel(v)}`)) firsts.set(`${v.violation.kind}-${shapeLabel(v)}`, v);
  for (const found of firsts.values()) {
    const label = shapeLabel(found);
    console.log(`seed ${found.seed}${label ? ` (${label})` : ''}: ${found.violation.kind}: ${found.violation.message}`);
    const shrunk = { ...(await shrink(context(found), found)), ...flagsOf(found) };
    const file = join(out, `${shrunk.violation.kind}${label ? `-${label}` : ''}-seed${shrunk.seed}.json`);
    writeFileSync(file, `${JSON.stringify(shrunk, null, 2)}\n`);
    console.log(`  shrunk to ${shrunk.script.length} outside events and ${shrunk.choices.length} choices: npm run explore -- --replay ${file} --verbose`);
  }
}

async function replay(file: string, verbose: boolean): Promise<number> {
  const counterexample = JSON.parse(readFileSync(file, 'utf8')) as Counterexample;
  const ctx = context(counterexample);
  const result = await runSchedule(ctx, counterexample.script, counterexample.seed, new ReplayChooser(counterexample.choices));
  if (verbose) for (const [i, choice] of result.trace.entries()) console.log(`${String(i).padStart(4)}  ${choice}`);
  if (result.violation) {
    console.log(`${file}: ${result.violation.kind} at ${result.violation.atSeconds.toFixed(1)} s: ${result.violation.message}`);
    return 1;
  }
  console.log(`${file}: no violation (${result.steps} steps, ${result.settled ? 'settled' : 'not settled'})`);
  return 0;
}

/**
 * CI's default: the exhaustive search within its bounds, then random schedules from seed 1 until the two have run
 * DEFAULT_SCHEDULES in all (the same seeds every run), within DEFAULT_SECONDS.
 */
const DEFAULT_SECONDS = 290;
const DEFAULT_SCHEDULES = 20_000;
const DEFAULT_BOUNDS: ExhaustiveBounds = { delays: 1, faults: 1, depth: 30 };
/** Then random schedules on the stage with routes, seeds 1 to this, within ROUTED_SECONDS of their own. */
const ROUTED_SCHEDULES = 4_000;
const ROUTED_SECONDS = 200;
/** Then random schedules on the stage that packs, seeds 1 to this, within PACKED_SECONDS of their own. */
const PACKED_SCHEDULES = 4_000;
const PACKED_SECONDS = 200;

/** The search's numbers from the command line: workers, time, seeds and bounds, each checked. */
function searchArguments(values: {
  workers?: string;
  seconds?: string;
  seeds?: string;
  'first-seed'?: string;
  delays?: string;
  faults?: string;
  depth?: string;
}): { workers: number; seconds: number; first: number; last: number; bounds: ExhaustiveBounds } {
  const workers = Number(values.workers);
  const seconds = values.seconds !== undefined ? Number(values.seconds) : values.seeds ? Infinity : DEFAULT_SECONDS;
  const [first, last] = values.seeds ? values.seeds.split('-').map(Number) : [Number(values['first-seed']), Number.MAX_SAFE_INTEGER];
  const bounds: ExhaustiveBounds = {
    delays: Number(values.delays ?? DEFAULT_BOUNDS.delays),
    faults: Number(values.faults ?? DEFAULT_BOUNDS.faults),
    depth: Number(values.depth ?? DEFAULT_BOUNDS.depth),
  };
  if (!(workers >= 1) || !Number.isFinite(first) || !(last >= first) || !(seconds > 0) || Object.values(bounds).some((b) => !(b >= 0)))
    throw new Error(`bad arguments\n${USAGE}`);
  return { workers, seconds, first, last, bounds };
}

/** The searches a run asks for (CI's default: exhaustive, random, random with routes), with what each found. */
async function search(
  { workers, seconds, first, last, bounds, started, ciDefault }: ReturnType<typeof searchArguments> & { started: number; ciDefault: boolean },
  values: { exhaustive?: boolean; routes?: boolean; packed?: boolean; 'stop-at-first'?: boolean },
): Promise<{ found: Counterexample[]; schedules: number }> {
  // A finite number: the deadline goes to the worker processes as JSON, which has no Infinity.
  const deadline = Number.isFinite(seconds) ? started + seconds * 1000 : Number.MAX_SAFE_INTEGER;
  const found: Counterexample[] = [];
  let schedules = 0;
  const shapeFlags = { routes: values.routes, packed: values.packed };
  if (values.exhaustive || ciDefault) {
    const tally = await inWorkers({ mode: 'exhaustive', workers, first, last, deadline, bounds, stopAtFirst: values['stop-at-first'], ...shapeFlags });
    report(`exhaustive (≤ ${bounds.delays} delay, ≤ ${bounds.faults} fault in the first ${bounds.depth} steps)`, tally, (Date.now() - started) / 1000);
    found.push(...tally.violations);
    schedules += tally.schedules;
  }
  if (!values.exhaustive && Date.now() < deadline && !(values['stop-at-first'] && found.length > 0)) {
    const from = Date.now();
    const upTo = ciDefault ? first + Math.max(0, DEFAULT_SCHEDULES - schedules) - 1 : last;
    const tally = await inWorkers({ mode: 'random', workers, first, last: upTo, deadline, stopAtFirst: values['stop-at-first'], ...shapeFlags });
    report(
      `random${values.routes ? ' with routes' : values.packed ? ' packed' : ''} (seeds ${first}–${upTo === Number.MAX_SAFE_INTEGER ? 'on' : upTo})`,
      tally,
      (Date.now() - from) / 1000,
    );
    found.push(...tally.violations);
    schedules += tally.schedules;
  }
  if (ciDefault) {
    for (const { shape, label, last: upTo, seconds: within } of [
      { shape: { routes: true }, label: 'with routes', last: ROUTED_SCHEDULES, seconds: ROUTED_SECONDS },
      { shape: { packed: true }, label: 'packed', last: PACKED_SCHEDULES, seconds: PACKED_SECONDS },
    ]) {
      if (values['stop-at-first'] && found.length > 0) break;
      const from = Date.now();
      const tally = await inWorkers({ mode: 'random', workers, first: 1, last: upTo, deadline: from + within * 1000, ...shape });
      report(`random ${label} (seeds 1–${upTo})`, tally, (Date.now() - from) / 1000);
      found.push(...tally.violations);
      schedules += tally.schedules;
    }
  }
  return { found, schedules };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' },
      seeds: { type: 'string' },
      'first-seed': { type: 'string', default: '1' },
      exhaustive: { type: 'boolean', default: false },
      delays: { type: 'string' },
      faults: { type: 'string' },
      depth: { type: 'string' },
      workers: { type: 'string', default: '2' },
      out: { type: 'string', default: 'explore-out' },
      replay: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      'stop-at-first': { type: 'boolean', default: false },
      routes: { type: 'boolean', default: false },
      packed: { type: 'boolean', default: false },
      worker: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return console.log(USAGE);
  if (values.worker) return worker(JSON.parse(values.worker) as WorkerJob);
  if (values.replay) {
    process.exitCode = await replay(values.replay, values.verbose!);
    return;
  }
  const { workers, seconds, first, last, bounds } = searchArguments(values);
  const started = Date.now();
  const ciDefault = values.seconds === undefined && !values.seeds && !values.exhaustive;
  const { found, schedules } = await search({ workers, seconds, first, last, bounds, started, ciDefault }, values);
  console.log(`in all: ${schedules} schedules in ${((Date.now() - started) / 1000).toFixed(1)} s on ${workers} processes`);
  if (ciDefault && schedules < DEFAULT_SCHEDULES && found.length === 0)
    console.log(`note: fewer than ${DEFAULT_SCHEDULES} schedules within ${DEFAULT_SECONDS} s on this machine`);
  if (found.length > 0) {
    await shrinkAndWrite(found, values.out!);
    process.exitCode = 1;
  }
}

main().catch((error) => {
  const usage = (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || /^bad arguments/.test((error as Error).message);
  console.error(usage ? `explore: ${(error as Error).message}\n${USAGE}` : `explore: ${(error as Error).stack ?? error}`);
  process.exitCode = 2;
});
