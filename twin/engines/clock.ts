/**
 * Virtual time for the twin: a deterministic discrete-event clock.
 *
 * Everything simulated (task durations, SQS visibility, Lambda retries, the Wait and Retry intervals of the
 * state machines) is a timer on this clock. Time jumps to the next timer only when the process is quiescent:
 * no tracked operation is in flight (DynamoDB requests, which dynalite answers through real callbacks) and the
 * microtask queue is drained (checked with a real `setImmediate`). So a 300 s task costs no wall time, and an
 * operation that takes real time finishes "instantly" in virtual time.
 */
/** What `setTimeout` returns: an id with Node's Timeout API, so library code that calls these keeps working. */
export class TimerHandle {
  constructor(readonly id: number) {}
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  hasRef(): boolean {
    return true;
  }
  [Symbol.toPrimitive](): number {
    return this.id;
  }
}

interface Timer {
  at: number;
  seq: number;
  fn: (...args: unknown[]) => void;
  args: unknown[];
  cancelled: boolean;
}

/** Virtual epoch of every run: 2026-01-01T00:00:00Z, so timestamps are reproducible. */
const VIRTUAL_EPOCH_MS = Date.UTC(2026, 0, 1);

const realSetImmediate = setImmediate;
const tick = () => new Promise<void>((resolve) => realSetImmediate(resolve));

export class VirtualClock {
  private elapsed = 0;
  private seq = 0;
  private heap: Timer[] = [];
  private byId = new Map<number, Timer>();
  private inFlight = 0;
  private onIdle: (() => void) | undefined;
  private stopped = false;

  constructor(readonly epochMs = VIRTUAL_EPOCH_MS) {}

  /** Virtual epoch milliseconds (what `Date.now()` would return). */
  now(): number {
    return this.epochMs + this.elapsed;
  }

  /** Virtual seconds since the start of the run. */
  seconds(): number {
    return this.elapsed / 1000;
  }

  /** Schedules `fn` after `ms` virtual milliseconds (negative or NaN means now). */
  setTimeout(fn: (...args: unknown[]) => void, ms = 0, ...args: unknown[]): TimerHandle {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const id = ++this.seq;
    const timer: Timer = { at: this.elapsed + delay, seq: id, fn, args, cancelled: false };
    this.push(timer);
    this.byId.set(id, timer);
    return new TimerHandle(id);
  }

  clearTimeout(handle: TimerHandle | number | undefined | null): void {
    if (handle === undefined || handle === null) return;
    const id = typeof handle === 'number' ? handle : handle.id;
    const timer = this.byId.get(id);
    if (timer) {
      timer.cancelled = true;
      this.byId.delete(id);
      // Cancelled timers leave the heap when they reach its top; Task timeouts of 99999999 s never would, so
      // rebuild it once they are most of it (aws-local-stepfunctions sets and clears one per Task state).
      if (this.heap.length > 1024 && this.heap.length > 2 * this.byId.size) this.compact();
    }
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(() => resolve(), ms));
  }

  /** Runs an operation that takes real time (I/O); virtual time stands still until it settles. */
  async track<T>(operation: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await operation();
    } finally {
      this.inFlight--;
      if (this.inFlight === 0 && this.onIdle) {
        const wake = this.onIdle;
        this.onIdle = undefined;
        wake();
      }
    }
  }

  get pendingTimers(): number {
    return this.byId.size;
  }

  /** Time of the next live timer, in virtual ms since the start, or undefined. */
  nextTimerAt(): number | undefined {
    while (this.heap.length > 0 && this.heap[0].cancelled) this.pop();
    return this.heap[0]?.at;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Waits until nothing tracked is in flight and no microtask is pending. */
  async settle(): Promise<void> {
    for (;;) {
      await tick();
      if (this.inFlight === 0) {
        await tick();
        if (this.inFlight === 0) return;
      }
      const started = Date.now();
      await new Promise<void>((resolve) => {
        // A watchdog on real time: a tracked operation that never settles is a bug, not a slow run. Not unref()'d:
        // the run must end with the error below, not let the process exit quietly; cleared once idle.
        const watchdog = setTimeout(() => {
          if (this.onIdle === idle) idle();
        }, 30_000);
        const idle = () => {
          clearTimeout(watchdog);
          resolve();
        };
        this.onIdle = idle;
      });
      if (this.inFlight > 0 && Date.now() - started >= 30_000) {
        throw new Error(`virtual clock: ${this.inFlight} tracked operation(s) did not settle within 30 s of real time`);
      }
    }
  }

  /**
   * Runs until no timer is left (or `untilMs` virtual ms, or stop()). Fires all timers due at the same instant
   * together, then settles, then jumps. `beforeAdvance` runs at the old instant, just before a jump to `nextMs`
   * (for meters, progress and stop conditions).
   */
  async run(options: { untilMs?: number; beforeAdvance?: (nextMs: number) => void } = {}): Promise<void> {
    this.stopped = false;
    for (;;) {
      await this.settle();
      if (this.stopped) return;
      const next = this.nextTimerAt();
      if (next === undefined) return;
      if (options.untilMs !== undefined && next > options.untilMs) {
        this.elapsed = Math.max(this.elapsed, options.untilMs);
        return;
      }
      if (next > this.elapsed) {
        options.beforeAdvance?.(next);
        if (this.stopped) return;
        this.elapsed = next;
      }
      this.fireDue();
    }
  }

  /**
   * One step of time, for a caller that decides when time moves (the explorer): jumps to the next live timer and
   * fires every timer due then. False when no timer is left.
   */
  advance(): boolean {
    const next = this.nextTimerAt();
    if (next === undefined) return false;
    this.elapsed = Math.max(this.elapsed, next);
    this.fireDue();
    return true;
  }

  /** Fires every timer due at or before now, in order, without moving time. */
  fireDue(): void {
    while (this.heap.length > 0 && this.heap[0].at <= this.elapsed) {
      const timer = this.pop()!;
      if (timer.cancelled) continue;
      this.byId.delete(timer.seq);
      timer.fn(...timer.args);
    }
  }

  /** A `Date` whose clock is this virtual clock (for code that reads `Date.now()` or `new Date()`). */
  dateClass(): DateConstructor {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const clock = this;
    class VirtualDate extends Date {
      constructor(...args: unknown[]) {
        if (args.length === 0) super(clock.now());
        else super(...(args as [string | number | Date]));
      }
      static now(): number {
        return clock.now();
      }
    }
    return VirtualDate as unknown as DateConstructor;
  }

  private compact(): void {
    const live = this.heap.filter((timer) => !timer.cancelled).sort((a, b) => (before(a, b) ? -1 : 1));
    // A sorted array is a valid binary heap.
    this.heap = live;
  }

  private push(timer: Timer): void {
    const heap = this.heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (before(heap[parent], heap[i])) break;
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
  }

  private pop(): Timer | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l], heap[m])) m = l;
        if (r < heap.length && before(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i], heap[m]];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
