/**
 * One dispatcher run's context: what it was given (clients, clock, settings, log), what it counts (its summary) and
 * the pool as it knows it — passed whole to each step of the loop (functions/dispatcher.ts).
 */
import type { DispatcherSettings } from './environment';
import { withReleased, type PoolState, type Released } from './limiter';
import type { DispatcherRunSummary } from './log-events';
import type { AwsClient, Clock, Log } from './runtime';

/** A wake-up that made room: a lease release (the state machine says when it was made) or the janitor. */
export interface Wake {
  readonly releasedAt?: number;
}

/**
 * Batches this process already saw started, so the next run need not ask Step Functions again. Bounded: a warm
 * Lambda runs for hours, and only recent batches are ever asked about.
 */
export class StartedBatches {
  private readonly names = new Set<string>();
  constructor(private readonly capacity = 4096) {}
  has(name: string): boolean {
    return this.names.has(name);
  }
  add(name: string): void {
    this.names.delete(name);
    this.names.add(name);
    if (this.names.size > this.capacity) this.names.delete(this.names.values().next().value as string);
  }
}

/** What a run works with and counts, before it has read the pool. */
export interface RunContext {
  readonly sqs: AwsClient;
  readonly sfn: AwsClient;
  readonly ddb: AwsClient;
  readonly clock: Clock;
  readonly settings: DispatcherSettings;
  readonly log: Log;
  /** Batches seen started: this process's own, or one a twin world passes. */
  readonly started: StartedBatches;
  /** What woke this run, when it says (the state machine's and the janitor's wake-ups do). */
  readonly wake?: Wake;
  readonly summary: DispatcherRunSummary;
}

/** A run under way: its context, the pool as it knows it, and the routes whose queue came up empty in this run. */
export interface Run extends RunContext {
  readonly view: PoolView;
  /** Routes a receive found empty, and until when (epoch ms) their backlog counts as none: SQS's count lags. */
  readonly emptyRoutes: Map<string, number>;
}

/** The pool as a run knows it, carried from one round to the next. */
export interface PoolView {
  pool: PoolState;
  /** Whether `pool.releasedVcpu` was read since the last admission or wait for tokens. */
  releasedFresh: boolean;
  /** When the read `pool.releasedVcpu` came from started, if it was strongly consistent. */
  consistentReadAt?: number;
  /** When the batch being gathered first fell short of full; undefined while none is. */
  batchOpenedAt: number | undefined;
}

/** The view after reading the released sum (`consistentReadAt`: when a strongly consistent read started). */
export function sawReleases(view: PoolView, released: Released, consistentReadAt: number | undefined): void {
  view.pool = withReleased(view.pool, released);
  view.releasedFresh = true;
  view.consistentReadAt = consistentReadAt;
}

/** The view once its released sum may be behind (an admission, a wait for tokens): read it again before stopping short. */
export function releasesUnread(view: PoolView, pool: PoolState = view.pool): void {
  view.pool = pool;
  view.releasedFresh = false;
  view.consistentReadAt = undefined;
}
