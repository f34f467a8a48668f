/**
 * The exhaustive search over small scripts: every schedule that deviates from the drain's default scheduler at most
 * `delays` times and injects at most `faults` faults (a crash, a lost answer, a refusal, a RunTask that does not run
 * the task) within its first `depth` steps; after them, the drain. This is delay bounding (Emmi, Qadeer, Rakamarić,
 * "Delay-bounded scheduling", POPL 2011): a bug that needs one reordering and one fault is found by bound (1, 1),
 * whatever else runs. The search is stateless: each schedule runs again from the start, its prefix of choices
 * replayed (the engines are deterministic), the last choice with an alternative within the bounds advanced, in
 * depth-first order.
 */
import { drainOption, runSchedule, type Chooser, type Context, type ScheduleResult } from './search';
import type { EnvEvent, ExplorerWorld, Option } from './world';

export interface ExhaustiveBounds {
  readonly delays: number;
  readonly faults: number;
  readonly depth: number;
}

/** The small scripts the exhaustive search runs: two jobs, a duplicate, an abort, a redrive, outages, a resize. */
export const EXHAUSTIVE_SCRIPTS: Readonly<Record<string, readonly EnvEvent[]>> = {
  'two uploads': [
    { kind: 'upload', object: 1 },
    { kind: 'upload', object: 2 },
  ],
  'an upload and its duplicate': [
    { kind: 'upload', object: 1 },
    { kind: 'duplicate', object: 1 },
  ],
  'an upload, then its execution aborted': [{ kind: 'upload', object: 1 }, { kind: 'abort' }],
  'an upload, then a redrive of it': [
    { kind: 'upload', object: 1 },
    { kind: 'operator', command: 'redrive-job', object: 1 },
  ],
  'an upload, then SQS refusing every call for a minute': [
    { kind: 'upload', object: 1 },
    { kind: 'outage', service: 'sqs', seconds: 60 },
  ],
  'an upload, then Step Functions refusing every call for a minute': [
    { kind: 'upload', object: 1 },
    { kind: 'outage', service: 'sfn', seconds: 60 },
  ],
  'two uploads and a resize': [
    { kind: 'upload', object: 1 },
    { kind: 'operator', command: 'resize' },
    { kind: 'upload', object: 2 },
  ],
};

/** One step's choice as the search sees it: the options in the order tried (the default first) and their costs. */
interface Branch {
  readonly order: readonly number[];
  readonly delays: readonly number[];
  readonly faults: readonly number[];
  readonly taken: number;
  /** Delays and faults spent before this step. */
  readonly spentDelays: number;
  readonly spentFaults: number;
}

class DepthFirstChooser implements Chooser {
  readonly branches: Branch[] = [];
  private lastActor: number | undefined;
  private spentDelays = 0;
  private spentFaults = 0;

  constructor(
    private readonly prefix: readonly number[],
    private readonly bounds: ExhaustiveBounds,
  ) {}

  choose(options: Option[], _world: ExplorerWorld, step: number): Option | undefined {
    if (step >= this.bounds.depth) return undefined;
    const fallback = drainOption(options, this.lastActor);
    if (!fallback) return undefined;
    const order = [options.indexOf(fallback), ...options.map((_, i) => i).filter((i) => options[i] !== fallback)];
    const delays = order.map((i) => (deviates(options[i], fallback) ? 1 : 0));
    const faults = order.map((i) => (isFault(options[i]) ? 1 : 0));
    const taken = step < this.prefix.length ? this.prefix[step] : 0;
    this.branches.push({ order, delays, faults, taken, spentDelays: this.spentDelays, spentFaults: this.spentFaults });
    this.spentDelays += delays[taken];
    this.spentFaults += faults[taken];
    const option = options[order[taken]];
    if (option.kind === 'release') this.lastActor = option.gate.actor.id;
    return option;
  }
}

/** A different call (or event, or time moving) than the default scheduler's: a delay. A fault on its call is not. */
function deviates(option: Option, fallback: Option): boolean {
  if (option.kind === 'release' && fallback.kind === 'release') return option.gate !== fallback.gate;
  return option !== fallback;
}

function isFault(option: Option): boolean {
  return option.kind === 'release' && option.how !== option.gate.releases[0];
}

/** The next prefix in depth-first order: the last step with an untried alternative within the bounds, advanced. */
function nextPrefix(branches: readonly Branch[], bounds: ExhaustiveBounds): number[] | undefined {
  for (let i = branches.length - 1; i >= 0; i--) {
    const b = branches[i];
    for (let next = b.taken + 1; next < b.order.length; next++) {
      if (b.spentDelays + b.delays[next] <= bounds.delays && b.spentFaults + b.faults[next] <= bounds.faults) {
        return [...branches.slice(0, i).map((x) => x.taken), next];
      }
    }
  }
  return undefined;
}

/**
 * Runs every schedule of `script` within the bounds, handing each result to `seen`. Answers whether the bounds were
 * exhausted before the deadline.
 */
export async function exploreExhaustively(
  ctx: Context,
  script: readonly EnvEvent[],
  bounds: ExhaustiveBounds,
  deadline: number,
  seen: (result: ScheduleResult) => void,
  /** Asked before each schedule: 0 stops the search (another worker found something). */
  until: () => number = () => deadline,
): Promise<boolean> {
  let prefix: number[] | undefined = [];
  while (prefix) {
    if (Date.now() >= Math.min(deadline, until())) return false;
    const chooser = new DepthFirstChooser(prefix, bounds);
    seen(await runSchedule(ctx, script, 1, chooser, undefined, true));
    prefix = nextPrefix(chooser.branches, bounds);
  }
  return true;
}
