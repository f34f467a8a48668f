import type { Clock } from '../../functions/runtime';

/** A clock stopped at `ms` (epoch milliseconds) whose sleeps return at once: for calls that only stamp a time. */
export function clockAt(ms: number): Clock {
  return { now: () => ms, sleep: async () => undefined };
}
