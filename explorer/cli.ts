/**
 * `npm run explore`: searches the protocol's interleavings for a counterexample to DESIGN.md's invariants.
 *
 *   npm run explore                                   # CI: random schedules on 2 processes for 4 minutes
 *   npm run explore -- --seconds 3600 --workers 2     # deep: as long as asked
 *   npm run explore -- --seeds 1-500                  # exactly these seeds
 *   npm run explore -- --replay explorer/counterexamples/<name>.json
 *
 * A violation is shrunk and written as a replayable counterexample (seed, outside events, choices); the command exits
 * 1. It prints schedules per second, distinct states and interleavings covered.
 */
import { fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LibraryBinding } from './engines';
import {
  ReplayChooser,
  RandomChooser,
  randomLeanings,
  randomScript,
  runSchedule,
  shrink,
  interleavingDigest,
  type Context,
  type Counterexample,
} from './search';
import { explorerStage } from './stage';

const USAGE = `usage: npm run explore -- [--seconds N | --seeds A-B] [--workers N] [--first-seed N] [--out dir] | --replay file.json [--verbose]`;

interface Tally {
  schedules: number;
  steps: number;
  settled: number;
  states: Set<string>;
  interleavings: Set<string>;
  violations: Counterexample[];
  byKind: Record<string, number>;
}

function context(): Context {
  const es = explorerStage();
  const binding = new LibraryBinding();
  return { es, binding, machine: binding.machine(es.stage.stateMachine.definition) };
}

/** Random schedules from `firstSeed`, every `stride`-th, until the deadline or `lastSeed`. */
async function explore(
  ctx: Context,
  firstSeed: number,
  stride: number,
  deadline: number,
  lastSeed: number,
  onViolation: (c: Counterexample) => void,
): Promise<Tally> {
  const tally: Tally = { schedules: 0, steps: 0, settled: 0, states: new Set(), interleavings: new Set(), violations: [], byKind: {} };
  for (let seed = firstSeed; seed <= lastSeed && Date.now() < deadline; seed += stride) {
    const script = randomScript(seed);
    const result = await runSchedule(ctx, script, seed, new RandomChooser(seed, randomLeanings(seed)), undefined, true);
    tally.schedules++;
    tally.steps += result.steps;
    if (result.settled) tally.settled++;
    for (const state of result.states) tally.states.add(state);
    tally.interleavings.add(interleavingDigest(result.choices));
    if (result.violation) {
      tally.byKind[result.violation.kind] = (tally.byKind[result.violation.kind] ?? 0) + 1;
      const found: Counterexample = { violation: result.violation, seed, script, choices: result.choices };
      tally.violations.push(found);
      onViolation(found);
    }
  }
  return tally;
}

async function replay(ctx: Context, file: string, verbose: boolean): Promise<number> {
  const counterexample = JSON.parse(readFileSync(file, 'utf8')) as Counterexample;
  const result = await runSchedule(ctx, counterexample.script, counterexample.seed, new ReplayChooser(counterexample.choices));
  if (verbose) for (const [i, choice] of result.trace.entries()) console.log(`${String(i).padStart(4)}  ${choice}`);
  if (result.violation) {
    console.log(`${file}: ${result.violation.kind} at ${result.violation.atSeconds.toFixed(1)} s: ${result.violation.message}`);
    return 1;
  }
  console.log(`${file}: no violation (${result.steps} steps, ${result.settled ? 'settled' : 'not settled'})`);
  return 0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' },
      seeds: { type: 'string' },
      workers: { type: 'string', default: '2' },
      'first-seed': { type: 'string', default: '1' },
      out: { type: 'string', default: 'explore-out' },
      replay: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      worker: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return console.log(USAGE);
  const ctx = context();
  if (values.replay) {
    process.exitCode = await replay(ctx, values.replay, values.verbose!);
    return;
  }
  const seconds = Number(values.seconds ?? (values.seeds ? Infinity : 240));
  const [first, last] = values.seeds ? values.seeds.split('-').map(Number) : [Number(values['first-seed']), Number.MAX_SAFE_INTEGER];
  if (!Number.isFinite(first) || !(last >= first) || !(seconds > 0)) throw new Error(`bad arguments\n${USAGE}`);
  const started = Date.now();
  const tally = await explore(ctx, first, 1, started + seconds * 1000, last, (c) => console.log(`seed ${c.seed}: ${c.violation.kind}: ${c.violation.message}`));
  const elapsed = (Date.now() - started) / 1000;
  console.log(
    `${tally.schedules} schedules in ${elapsed.toFixed(1)} s (${(tally.schedules / elapsed).toFixed(1)}/s), ${tally.steps} steps, ${tally.settled} settled; ` +
      `${tally.states.size} distinct states, ${tally.interleavings.size} distinct interleavings; violations: ${JSON.stringify(tally.byKind)}`,
  );
  if (tally.violations.length > 0) {
    mkdirSync(values.out!, { recursive: true });
    // The first counterexample of each kind, shrunk.
    const firsts = new Map<string, Counterexample>();
    for (const v of tally.violations) if (!firsts.has(v.violation.kind)) firsts.set(v.violation.kind, v);
    for (const found of firsts.values()) {
      const shrunk = await shrink(ctx, found);
      const file = join(values.out!, `${shrunk.violation.kind}-seed${shrunk.seed}.json`);
      writeFileSync(file, `${JSON.stringify(shrunk, null, 2)}\n`);
      console.log(`${shrunk.violation.kind}: shrunk to ${shrunk.script.length} events and ${shrunk.choices.length} choices: ${file}`);
    }
    process.exitCode = 1;
  }
  void fork;
}

main().catch((error) => {
  console.error(`explore: ${(error as Error).stack ?? error}`);
  process.exitCode = 2;
});
