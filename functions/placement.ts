/**
 * Where each batch runs: the Fargate capacity class (On-Demand or Spot) with room for it. The account's quota is per
 * class, and other workloads may fill one class and leave the other empty; a fixed split of every batch over the
 * classes would let the fuller class decide how much the stage can hold. So each batch goes to one class, chosen at
 * admission: one that has room for all of it, the one furthest below its weighted share of the stage's own use when
 * several do (the configured weights are the split the stage keeps while the account has room), else the one with
 * the most room, and the batch shrinks to fit it. A class where Fargate lately had no capacity for a task ("Capacity
 * is unavailable": no quota reading shows that) is passed over for CLASS_SHORT_MS while another class can be used;
 * without that, a class emptied of the stage's tasks by the returns would be furthest below its share every time.
 *
 * The stage's own use per class is counted like its use in all: admitted per class on POOL (`admittedVcpu@<class>`),
 * released per class on the release shards (`releasedVcpu@<class>`), in the same writes as the totals. A class's room
 * is its quota − others' use − the stage's own use now, where others' use is the AWS/Usage reading − the stage's own
 * use when it was read. An error in the per-class counters (a batch admitted by one version and released by another
 * while a deploy rolls out) is the janitor's to repair: its sweep checks each class's counters against the leases, as
 * it checks the totals. The totals, which bound the budget, never depend on them.
 */
import { CAPACITY_CLASSES, type CapacityClass } from './capacity-codes';
import { countsOf, heldCounts, type Counts } from './counts';

export type ClassWeights = Readonly<Partial<Record<CapacityClass, number>>>;
/** A number per capacity class: vCPU, or (shortAtOf) a time. */
export type ByClass = Counts<CapacityClass>;

export const ADMITTED_BY_CLASS = 'admittedVcpu@';
export const RELEASED_BY_CLASS = 'releasedVcpu@';
/** When Fargate last had no capacity for a task of the class (ISO time, on the release counter the return wrote). */
export const CLASS_SHORT_AT = 'capacityShortAt@';
/** How long a class short of capacity is passed over: then one batch tries it again. */
export const CLASS_SHORT_MS = 2 * 60_000;

/** The counter attribute of a class: `admittedVcpu@FARGATE_SPOT`, say. */
export function classAttribute(prefix: typeof ADMITTED_BY_CLASS | typeof RELEASED_BY_CLASS, capacityClass: CapacityClass): string {
  return `${prefix}${capacityClass}`;
}

/** The per-class counters an item holds (attributes `<prefix><class>`); classes it has none of are absent. */
export function byClassOf(item: Readonly<Record<string, unknown>>, prefix: string): ByClass {
  return countsOf(item, prefix, CAPACITY_CLASSES);
}

/** The latest time each class was short of capacity (epoch ms), over release counters' `capacityShortAt@<class>`. */
export function shortAtOf(items: ReadonlyArray<Readonly<Record<string, unknown>>>): ByClass {
  const latest: Partial<Record<CapacityClass, number>> = {};
  for (const item of items)
    for (const capacityClass of CAPACITY_CLASSES) {
      const at = Date.parse(String(item[`${CLASS_SHORT_AT}${capacityClass}`]));
      if (Number.isFinite(at)) latest[capacityClass] = Math.max(latest[capacityClass] ?? at, at);
    }
  return latest;
}

/** The classes a stage may place tasks in: those with a weight above 0. */
export function placeableClasses(weights: ClassWeights): CapacityClass[] {
  return CAPACITY_CLASSES.filter((c) => (weights[c] ?? 0) > 0);
}

/** The stage's own use of each class now: admitted − released, per class. */
export function ownByClass(counters: { readonly admittedByClass: ByClass; readonly releasedByClass: ByClass }): ByClass {
  return heldCounts(counters.admittedByClass, counters.releasedByClass);
}

/** The account as last measured, per class: the quota and others' use (absent: no reading to go by). */
export type ClassReadings = Readonly<Partial<Record<CapacityClass, { readonly quotaVcpu: number; readonly othersVcpu: number }>>>;

/** What placement goes by: the weights, the stage's own use, the account as read, and when classes were short. */
export interface ClassView {
  readonly weights: ClassWeights;
  readonly own: ByClass;
  readonly readings: ClassReadings | undefined;
  readonly taskVcpu: number;
  /** When each class was last short of capacity (epoch ms), and the time now. */
  readonly shortAt?: ByClass;
  readonly now?: number;
}

/** The classes a batch may go to now: the placeable ones not lately short of capacity, or all of them if every one was. */
function usableClasses({ weights, shortAt = {}, now = 0 }: ClassView): CapacityClass[] {
  const classes = placeableClasses(weights);
  if (classes.length === 0) throw new Error('no capacity class has a weight above 0');
  const supplied = classes.filter((c) => shortAt[c] === undefined || now - shortAt[c]! >= CLASS_SHORT_MS);
  return supplied.length > 0 ? supplied : classes;
}

/** Where a batch goes, and how many of its jobs fit there. */
export interface Placement {
  readonly capacityClass: CapacityClass;
  readonly count: number;
}

/**
 * Places a batch of `count` jobs of `taskVcpu` each. `readings` is the account as last measured (undefined when
 * there is no fresh reading: every class is taken to have room, and the weights decide).
 */
export function placeBatch(input: ClassView & { readonly count: number }): Placement {
  const { weights, own, taskVcpu, count } = input;
  const classes = usableClasses(input);
  const totalWeight = classes.reduce((sum, c) => sum + weights[c]!, 0);
  const ownTotal = classes.reduce((sum, c) => sum + (own[c] ?? 0), 0);
  const slots = (c: CapacityClass): number => slotsIn(c, input);
  // How far below its weighted share of the stage's use (this batch counted) each class would be.
  const deficit = (c: CapacityClass): number => (weights[c]! / totalWeight) * (ownTotal + count * taskVcpu) - (own[c] ?? 0);
  const fitting = classes.filter((c) => slots(c) >= count);
  if (fitting.length > 0) return { capacityClass: best(fitting, deficit), count };
  const roomiest = best(classes, slots);
  return { capacityClass: roomiest, count: Math.min(count, slots(roomiest)) };
}

/** Tasks of `taskVcpu` the class has room for: quota − others − the stage's own use there (Infinity without a reading). */
function slotsIn(c: CapacityClass, { own, readings, taskVcpu }: ClassView): number {
  const reading = readings?.[c];
  if (!reading) return Infinity;
  return Math.max(0, Math.floor((reading.quotaVcpu - reading.othersVcpu - (own[c] ?? 0)) / taskVcpu + 1e-6));
}

/** The most tasks one batch can take: the roomiest placeable class's room (a batch goes to one class). */
export function roomiestClassSlots(input: ClassView): number {
  return Math.max(0, ...usableClasses(input).map((c) => slotsIn(c, input)));
}

/** The class with the highest score; ties go to the one listed first (CAPACITY_CLASSES' order). */
function best(classes: readonly CapacityClass[], score: (c: CapacityClass) => number): CapacityClass {
  return classes.reduce((a, b) => (score(b) > score(a) ? b : a));
}
