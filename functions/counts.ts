/**
 * Counters kept per key beside a total: per capacity class (functions/placement.ts) and per route
 * (functions/routes.ts). Each is an attribute `<prefix><key>`, admitted on POOL and released on the release shards,
 * in the same writes as the totals.
 */

/** A number per key. */
export type Counts<K extends string = string> = Readonly<Partial<Record<K, number>>>;

/** The counters an item holds (attributes `<prefix><key>`): of the given keys, or of every key under the prefix. */
export function countsOf<K extends string = string>(item: Readonly<Record<string, unknown>>, prefix: string, keys?: readonly K[]): Counts<K> {
  const counts: Partial<Record<K, number>> = {};
  for (const [attribute, value] of Object.entries(item)) {
    if (!attribute.startsWith(prefix) || value === undefined) continue;
    const key = attribute.slice(prefix.length) as K;
    if (!keys || keys.includes(key)) counts[key] = Number(value);
  }
  return counts;
}

export function addCounts<K extends string>(a: Counts<K>, b: Counts<K>): Counts<K> {
  const sum: Partial<Record<K, number>> = { ...a };
  for (const [key, value] of Object.entries(b) as Array<[K, number]>) sum[key] = (sum[key] ?? 0) + value;
  return sum;
}

/** What each key holds now: admitted − released (never below 0: releases are read after the admissions). */
export function heldCounts<K extends string>(admitted: Counts<K>, released: Counts<K>): Counts<K> {
  const held: Partial<Record<K, number>> = {};
  for (const key of new Set([...Object.keys(admitted), ...Object.keys(released)]) as Set<K>)
    held[key] = Math.max(0, (admitted[key] ?? 0) - (released[key] ?? 0));
  return held;
}
