/**
 * Running schedules. A schedule is a script of outside events (uploads, duplicates, an abort, an operator's command)
 * and a list of choices, one per step: which gate to release and how, when the next outside event happens, when time
 * moves. A chooser makes the choices (at random from a seed, replaying a recorded list, or walking every choice
 * within bounds); once it has no more to say, the schedule drains: calls are released oldest first without faults,
 * time moves when nothing else can, until every upload has reached an end — or the limits say it never will.
 */
import { createHash } from 'node:crypto';
import type { LibraryBinding } from './engines';
import type { RunTaskOutcome } from './gates';
import type { Violation } from './invariants';
import type { ExplorerStage } from './stage';
import { describeEvent, describeOption, ExplorerWorld, type CallListener, type EnvEvent, type Option } from './world';
import { mulberry32, type Rng } from '../twin/engines/random';

export interface Context {
  readonly es: ExplorerStage;
  readonly binding: LibraryBinding;
  readonly machine: ReturnType<LibraryBinding['machine']>;
  /** Hears every call an actor makes, as it is released (for checking the calls against the actors' roles). */
  readonly onCall?: CallListener;
  /** Runs on after a violation (to see what the actors do about it, e.g. the janitor repairing drift made by hand). */
  readonly runPastViolations?: boolean;
}

export interface Limits {
  readonly maxSteps: number;
  readonly maxVirtualSeconds: number;
}

export const DEFAULT_LIMITS: Limits = { maxSteps: 4000, maxVirtualSeconds: 6 * 3600 };

/** Makes one step's choice; undefined hands over to the drain. */
export interface Chooser {
  choose(options: Option[], world: ExplorerWorld, step: number): Option | undefined;
}

export interface ScheduleResult {
  readonly violation?: Violation;
  /** The chooser's choices, as recorded (stable across replays); the drain's are not: a replay drains again. */
  readonly choices: string[];
  /** Every step, the drain's included (for reading). */
  readonly trace: string[];
  readonly steps: number;
  readonly virtualSeconds: number;
  readonly settled: boolean;
  /** Digests of the states passed through. */
  readonly states: string[];
}

/**
 * What happens when no one chooses: the oldest waiting call runs (the same actor's first, as if nothing else
 * interleaved), without a fault; then the next outside event; then time moves.
 */
export function drainOption(options: Option[], lastActor: number | undefined): Option | undefined {
  const releases = options.filter((o): o is Extract<Option, { kind: 'release' }> => o.kind === 'release' && o.how === o.gate.releases[0]);
  const same = releases.find((o) => o.gate.actor.id === lastActor);
  if (same) return same;
  if (releases.length > 0) return releases.reduce((a, b) => (a.gate.id < b.gate.id ? a : b));
  return options.find((o) => o.kind === 'env') ?? options.find((o) => o.kind === 'advance');
}

export async function runSchedule(
  ctx: Context,
  script: readonly EnvEvent[],
  seed: number,
  chooser: Chooser,
  limits = DEFAULT_LIMITS,
  keepStates = false,
): Promise<ScheduleResult> {
  const world = new ExplorerWorld(ctx.es, ctx.binding, ctx.machine, script, seed, ctx.onCall);
  const previousRandom = Math.random;
  // The functions draw their retry jitter from Math.random: from the world's generator, a schedule replays exactly.
  Math.random = () => world.rng();
  const choices: string[] = [];
  const trace: string[] = [];
  const states: string[] = [];
  let steps = 0;
  let lastActor: number | undefined;
  let chooserDone = false;
  try {
    await world.init();
    while ((ctx.runPastViolations || !world.violation) && !world.quiet()) {
      if (steps >= limits.maxSteps || world.clock.seconds() >= limits.maxVirtualSeconds) {
        world.invariants.unsettled(`after ${steps} steps and ${Math.round(world.clock.seconds())} virtual seconds`);
        break;
      }
      const options = world.options(!chooserDone);
      if (options.length === 0) {
        world.invariants.unsettled('nothing left that could happen');
        break;
      }
      let option = chooserDone ? undefined : chooser.choose(options, world, steps);
      if (option === undefined) {
        chooserDone = true;
        option = drainOption(world.options(false), lastActor);
        if (!option) continue;
      }
      if (!chooserDone) choices.push(describeOption(option));
      trace.push(describeOption(option));
      if (option.kind === 'release') lastActor = option.gate.actor.id;
      await world.apply(option);
      steps++;
      if (keepStates) states.push(world.stateDigest());
    }
    return { violation: world.violation, choices, trace, steps, virtualSeconds: world.clock.seconds(), settled: world.quiet(), states };
  } finally {
    Math.random = previousRandom;
    world.clock.stop();
  }
}

/** How a random schedule leans: the chance of a fault at a call, of time moving, of the next outside event. */
export interface Leanings {
  readonly fault: number;
  readonly advance: number;
  readonly event: number;
  /** Steps it chooses before it drains. */
  readonly steps: number;
}

/** RunTask's answers, by how often a random schedule gives each (a task that runs and succeeds is the rule). */
const RUN_TASK_WEIGHTS: Record<RunTaskOutcome, number> = { exit0: 0, exit75: 2, exit65: 1, capacity: 3, 'vcpu-limit': 2, throttled: 2 };

export class RandomChooser implements Chooser {
  private readonly rng: Rng;
  constructor(
    seed: number,
    private readonly leanings: Leanings,
  ) {
    this.rng = mulberry32(seed ^ 0x5bd1e995);
  }

  choose(options: Option[], _world: ExplorerWorld, step: number): Option | undefined {
    if (step >= this.leanings.steps) return undefined;
    const env = options.find((o) => o.kind === 'env');
    const advance = options.find((o) => o.kind === 'advance');
    const gates = [...new Set(options.flatMap((o) => (o.kind === 'release' ? [o.gate] : [])))];
    if (env && (gates.length === 0 || this.rng() < this.leanings.event)) return env;
    if (advance && (gates.length === 0 || this.rng() < this.leanings.advance)) return advance;
    if (gates.length === 0) return env ?? advance;
    const gate = gates[Math.floor(this.rng() * gates.length)];
    const ofGate = options.filter((o): o is Extract<Option, { kind: 'release' }> => o.kind === 'release' && o.gate === gate);
    if (ofGate.length === 1 || this.rng() >= this.leanings.fault) return ofGate[0];
    const faults = ofGate.slice(1);
    const weights = faults.map((o) => RUN_TASK_WEIGHTS[o.how as RunTaskOutcome] ?? 1);
    let pick = this.rng() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < faults.length; i++) if ((pick -= weights[i]) < 0) return faults[i];
    return faults[faults.length - 1];
  }
}

/** Replays recorded choices: each taken if it can be now, skipped if not; then drains. */
export class ReplayChooser implements Chooser {
  private next = 0;
  constructor(private readonly recorded: readonly string[]) {}

  choose(options: Option[]): Option | undefined {
    while (this.next < this.recorded.length) {
      const wanted = this.recorded[this.next++];
      const found = options.find((o) => describeOption(o) === wanted);
      if (found) return found;
    }
    return undefined;
  }
}

/** The outside events of a random schedule: uploads, maybe duplicates, an abort, an operator's command. */
export function randomScript(seed: number): EnvEvent[] {
  const rng = mulberry32(seed ^ 0x27d4eb2d);
  const objects = 2 + Math.floor(rng() * 3);
  const events: EnvEvent[] = [];
  for (let object = 1; object <= objects; object++) events.push({ kind: 'upload', object });
  const extras: EnvEvent[] = [];
  const duplicates = Math.floor(rng() * 3);
  for (let i = 0; i < duplicates; i++) extras.push({ kind: 'duplicate', object: 1 + Math.floor(rng() * objects) });
  if (rng() < 0.35) extras.push({ kind: 'abort' });
  const commands = ['pause', 'resize', 'reseed', 'redrive-job', 'redrive-failed', 'redrive-dlq', 'resize-route'] as const;
  if (rng() < 0.4) {
    const command = commands[Math.floor(rng() * commands.length)];
    extras.push({ kind: 'operator', command, object: 1 + Math.floor(rng() * objects) });
    if (command === 'pause') extras.push({ kind: 'operator', command: 'resume' });
    // A route's cap raised at run time, then given back to its configured value (on a stage without routes, neither does anything).
    if (command === 'resize-route') extras.push({ kind: 'operator', command: 'resize-route-back' });
  }
  const services = ['sqs', 'dynamodb', 'sfn', 'ecs'] as const;
  if (rng() < 0.25) extras.push({ kind: 'outage', service: services[Math.floor(rng() * services.length)], seconds: [20, 60, 180][Math.floor(rng() * 3)] });
  // Extras land anywhere after the first upload, keeping their own order (a pause comes before its resume).
  let from = 1;
  for (const extra of extras) {
    from += Math.floor(rng() * (events.length - from + 1));
    events.splice(from++, 0, extra);
  }
  return events;
}

export function randomLeanings(seed: number): Leanings {
  const rng = mulberry32(seed ^ 0x165667b1);
  return {
    fault: [0.03, 0.08, 0.15][Math.floor(rng() * 3)],
    advance: [0.02, 0.08, 0.2][Math.floor(rng() * 3)],
    event: [0.05, 0.15, 0.4][Math.floor(rng() * 3)],
    steps: 80 + Math.floor(rng() * 220),
  };
}

/** A violation as a replayable schedule. */
export interface Counterexample {
  readonly violation: Violation;
  readonly seed: number;
  readonly script: readonly EnvEvent[];
  readonly choices: readonly string[];
  /** Found on the stage with routes (explorer/stage.ts ROUTED_SHAPE): its replay runs there. */
  readonly routes?: true;
  /** Found on the stage whose tasks run two objects (PACKED_SHAPE). */
  readonly packed?: true;
}

/**
 * Shrinks a failing schedule: fewer outside events, fewer faults, fewer choices — each candidate replayed, kept if it
 * still breaks the same invariant. Bounded by `budget` replays.
 */
export async function shrink(ctx: Context, failing: Counterexample, budget = 300): Promise<Counterexample> {
  let best = failing;
  let replays = 0;
  const attempt = async (script: readonly EnvEvent[], choices: readonly string[]): Promise<boolean> => {
    if (replays++ >= budget) return false;
    const result = await runSchedule(ctx, script, best.seed, new ReplayChooser(choices));
    if (result.violation?.kind !== best.violation.kind) return false;
    best = { violation: result.violation, seed: best.seed, script, choices: result.choices };
    return true;
  };
  // Outside events, one at a time (and what the choices said of them); a pause goes with the resume after it.
  for (let i = best.script.length - 1; i >= 0; i--) {
    const event = best.script[i];
    if (!best.script.includes(event) || (event.kind === 'operator' && event.command === 'resume')) continue;
    const resume =
      event.kind === 'operator' && event.command === 'pause'
        ? best.script.slice(i + 1).find((e) => e.kind === 'operator' && e.command === 'resume')
        : undefined;
    const gone = [event, ...(resume ? [resume] : [])];
    const texts = gone.map((e) => `env ${describeEvent(e)}`);
    await attempt(
      best.script.filter((e) => !gone.includes(e)),
      best.choices.filter((c) => !texts.includes(c)),
    );
  }
  // Faults, one at a time: the call released plainly instead.
  for (let i = 0; i < best.choices.length; i++) {
    const match = / (crash-before|crash-after|error-after|transient|exit75|exit65|capacity|vcpu-limit|throttled)$/.exec(best.choices[i]);
    if (!match) continue;
    const plain = best.choices[i].slice(0, match.index) + (/exit|capacity|vcpu|throttled/.test(match[1]) ? ' exit0' : ' none');
    await attempt(best.script, [...best.choices.slice(0, i), plain, ...best.choices.slice(i + 1)]);
  }
  // Choices, in ever smaller chunks (the drain takes over where they end).
  for (let size = Math.ceil(best.choices.length / 2); size >= 1; size = Math.floor(size / 2)) {
    for (let start = 0; start < best.choices.length;) {
      if (!(await attempt(best.script, [...best.choices.slice(0, start), ...best.choices.slice(start + size)]))) start += size;
      if (replays >= budget) break;
    }
    if (size === 1 || replays >= budget) break;
  }
  // What the drain would choose anyway need not be recorded: keep the prefix up to the last choice that differs.
  return best;
}

export function interleavingDigest(choices: readonly string[]): string {
  return createHash('sha1').update(choices.join('\n')).digest('hex').slice(0, 16);
}
