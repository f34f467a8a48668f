/**
 * Routes: a stage may serve several input prefixes, each with its own intake queue, sharing the stage's one vCPU
 * budget. Admission takes from one route at a time: the highest priority class with backlog first; within a class,
 * the route furthest below its weighted share (`share / Σ shares` of the backlogged routes) of what the class may
 * hold; a route with no backlog lends its share to the others (admission only: running tasks are never stopped); a
 * route never holds more than its `maxVcpu` (or the cap an operator set at run time); a route's `reservedVcpu` it does
 * not use is never lent. Routes may run tasks of different sizes: shares are of vCPU, and a route whose task does
 * not fit yet may keep its turn while room frees (nextRoute). Each route's messages wait in its own queue, so a
 * message waiting for capacity is still never received.
 *
 * A route's use is counted like a capacity class's: admitted on POOL (`admittedVcpu@route:<name>`), released on the
 * release shards (`releasedVcpu@route:<name>`), in the same writes as the totals; the janitor's sweep checks them
 * against the leases. A stage without routes has one, unnamed and uncounted: its writes are today's.
 */
import { heldCounts, type Counts } from './counts';

export interface RouteSettings {
  readonly name: string;
  readonly queueUrl: string;
  readonly inputPrefix: string;
  readonly inputSuffix?: string;
  /** A weight: the route's part of the budget while every route has backlog is share / Σ shares. */
  readonly share: number;
  /** A higher class is admitted first. */
  readonly priority: number;
  /** The most vCPU the route may hold at once. */
  readonly maxVcpu?: number;
  /**
   * vCPU kept for the route while it does not use them: other routes never borrow them, so its first jobs start at
   * once even while another route's burst fills the rest (running tasks are never stopped, so lent room comes back
   * only as they end).
   */
  readonly reservedVcpu?: number;
  /** vCPU of one of the route's tasks: each of its jobs leases this much. */
  readonly taskVcpu: number;
  /** The task definition its jobs run (with routes: the route's own, or the stage's); unset without routes. */
  readonly taskDefinitionArn?: string;
  /** Objects one of its tasks runs (functions/packing.ts); unset: 1, a task per object. */
  readonly objectsPerTask?: number;
}

// Slack for float rounding in vCPU sums.
const EPSILON = 1e-6;

export const ADMITTED_BY_ROUTE = 'admittedVcpu@route:';
export const RELEASED_BY_ROUTE = 'releasedVcpu@route:';
/** A route's cap as an operator set it at run time (`sluice resize --route`), on POOL: it stands in for its maxVcpu. */
export const CAP_OF_ROUTE = 'maxVcpu@route:';

/** vCPU per route name. */
export type ByRoute = Counts;

/** Each route's use now: admitted − released. */
export function ownByRoute(counters: { readonly admittedByRoute: ByRoute; readonly releasedByRoute: ByRoute }): ByRoute {
  return heldCounts(counters.admittedByRoute, counters.releasedByRoute);
}

/**
 * The routes as admission takes them now: each route's cap as POOL holds it (`sluice resize --route`) in place of
 * its configured maxVcpu, and a reserve never above its cap (room a route may not use is not kept for it).
 */
export function withRouteCaps(routes: readonly RouteSettings[], caps: ByRoute): readonly RouteSettings[] {
  return routes.map((route) => {
    const cap = caps[route.name];
    if (cap === undefined) return route;
    const { reservedVcpu } = route;
    return { ...route, maxVcpu: cap, ...(reservedVcpu !== undefined ? { reservedVcpu: Math.min(reservedVcpu, cap) } : {}) };
  });
}

/** A route's cap now: the one an operator set at run time, else its configured maxVcpu (undefined: none). */
export function routeCap(route: Pick<RouteSettings, 'name' | 'maxVcpu'>, caps: ByRoute): number | undefined {
  return caps[route.name] ?? route.maxVcpu;
}

/** Whether a key belongs to a route: under its prefix, with its suffix if it has one. */
export function routeTakesKey(route: Pick<RouteSettings, 'inputPrefix' | 'inputSuffix'>, key: string): boolean {
  return key.startsWith(route.inputPrefix) && (!route.inputSuffix || key.endsWith(route.inputSuffix));
}

/** The route a key belongs to (prefixes never overlap: at most one). */
export function routeOfKey(routes: readonly RouteSettings[], key: string): RouteSettings | undefined {
  return routes.find((route) => routeTakesKey(route, key));
}

/** Tasks the route may still start under its cap, holding `inUseVcpu` (Infinity without a cap). */
export function tasksUnderCap(route: Pick<RouteSettings, 'maxVcpu' | 'taskVcpu'>, inUseVcpu: number): number {
  return route.maxVcpu === undefined ? Infinity : Math.max(0, Math.floor((route.maxVcpu - inUseVcpu) / route.taskVcpu + EPSILON));
}

/** What admission knows of a route at one moment. */
export interface RouteDemand {
  readonly route: RouteSettings;
  /** Messages visible in its queue. */
  readonly backlog: number;
  /** vCPU it holds now. */
  readonly inUseVcpu: number;
}

/**
 * The route admission takes from next, and how many of its jobs it may take: its deficit and its cap's room. 0 when
 * the stage has no room for one of its tasks yet and it keeps its turn (nextRoute): the room others free is kept for
 * it, or a stream of smaller tasks would take every vCPU as it came free and the larger never start.
 */
export interface RouteTurn {
  readonly route: RouteSettings;
  readonly backlog: number;
  readonly tasks: number;
}

/**
 * Whose turn it is, given what the stage may hold in all (`stageVcpu`: the effective budget) and holds now
 * (`stageInUseVcpu`: the pool's total, which counts what routes no longer configured still hold). A route with backlog
 * whose own unused reserve holds one of its tasks goes first: that room is no other route's. Otherwise routes with
 * backlog and room under their cap compete; the highest priority class among them goes first. Within it, each route's
 * target is its share of what the class may hold (the stage's vCPU less what is held outside the class, so an idle
 * route's share is borrowed), and the route furthest below its target (in vCPU, whatever its task size) goes, up to
 * the tasks that bring it to its target and the stage's room outside the others' reserves. Undefined when no route has
 * both backlog and room.
 */
export function nextRoute(
  demands: readonly RouteDemand[],
  stageVcpu: number,
  stageInUseVcpu: number = demands.reduce((sum, d) => sum + d.inUseVcpu, 0),
): RouteTurn | undefined {
  const free = stageVcpu - stageInUseVcpu;
  const unusedReserve = (d: RouteDemand): number => Math.max(0, (d.route.reservedVcpu ?? 0) - d.inUseVcpu);
  const reserves = demands.reduce((sum, d) => sum + unusedReserve(d), 0);
  // Tasks the stage has room for now, outside what the other routes keep for themselves.
  const stageRoom = (d: RouteDemand): number => Math.max(0, Math.floor((free - (reserves - unusedReserve(d))) / d.route.taskVcpu + EPSILON));
  const wanting = demands.filter((d) => d.backlog > 0 && tasksUnderCap(d.route, d.inUseVcpu) >= 1);
  const fromReserve = fromOwnReserve(wanting, free, unusedReserve);
  if (fromReserve) return fromReserve;
  // A task larger than the stage may hold (the account's room shrank) waits without holding the others up.
  const ready = wanting.filter((d) => d.route.taskVcpu <= stageVcpu - (reserves - unusedReserve(d)) + EPSILON);
  if (ready.length === 0) return undefined;
  const topPriority = Math.max(...ready.map((d) => d.route.priority));
  const competing = ready.filter((d) => d.route.priority === topPriority);
  const classVcpu = Math.max(0, stageVcpu - (stageInUseVcpu - competing.reduce((sum, d) => sum + d.inUseVcpu, 0)));
  const shares = competing.reduce((sum, d) => sum + d.route.share, 0);
  const target = (d: RouteDemand): number => (d.route.share / shares) * classVcpu;
  const deficit = (d: RouteDemand): number => target(d) - d.inUseVcpu;
  // A route with no room for its task yet keeps its turn (the room freed is kept for it) while a whole task below its
  // share, or, with a share smaller than one task, while it holds nothing; otherwise what is free goes where it fits.
  const keepsTurn = competing.filter((d) => stageRoom(d) >= 1 || deficit(d) + EPSILON >= Math.min(d.route.taskVcpu, target(d)));
  const furthest = (keepsTurn.length > 0 ? keepsTurn : competing).reduce((a, b) => (deficit(b) > deficit(a) + EPSILON ? b : a));
  const toTarget = Math.max(1, Math.ceil(deficit(furthest) / furthest.route.taskVcpu - EPSILON));
  return {
    route: furthest.route,
    backlog: furthest.backlog,
    tasks: Math.min(toTarget, tasksUnderCap(furthest.route, furthest.inUseVcpu), stageRoom(furthest)),
  };
}

/** The turn of a route whose own unused reserve (and the stage's free room) holds one of its tasks: the highest class first. */
function fromOwnReserve(wanting: readonly RouteDemand[], free: number, unusedReserve: (d: RouteDemand) => number): RouteTurn | undefined {
  const tasksIn = (vcpu: number, d: RouteDemand) => Math.floor(vcpu / d.route.taskVcpu + EPSILON);
  const reserved = wanting.filter((d) => tasksIn(Math.min(unusedReserve(d), free), d) >= 1).sort((a, b) => b.route.priority - a.route.priority);
  const first = reserved[0];
  if (!first) return undefined;
  return {
    route: first.route,
    backlog: first.backlog,
    tasks: Math.min(tasksIn(Math.min(unusedReserve(first), free), first), tasksUnderCap(first.route, first.inUseVcpu)),
  };
}

/** Where a stage's intake is: its one queue and input scope, and its routes if it has them. */
export interface IntakeSettings {
  readonly queueUrl: string;
  /** vCPU of the stage's task: without routes, every job's. */
  readonly taskVcpu: number;
  readonly inputPrefix: string;
  readonly inputSuffix?: string;
  readonly routes?: readonly RouteSettings[];
  /** Without routes: objects one task runs (unset: 1). */
  readonly objectsPerTask?: number;
}

/** The routes a dispatcher takes from: the stage's, or (without routes) its one unnamed route, the intake queue. */
export function routesOf(settings: IntakeSettings): readonly RouteSettings[] {
  if (settings.routes) return settings.routes;
  const { queueUrl, inputPrefix, inputSuffix, taskVcpu, objectsPerTask } = settings;
  return [
    {
      name: UNROUTED,
      queueUrl,
      inputPrefix,
      ...(inputSuffix ? { inputSuffix } : {}),
      share: 1,
      priority: 0,
      taskVcpu,
      ...(objectsPerTask !== undefined && objectsPerTask > 1 ? { objectsPerTask } : {}),
    },
  ];
}

/**
 * The queue a job goes back to: its route's, by its key. A key no route takes (a route removed while its jobs were
 * out) goes to the stage's intake queue, where the dispatcher dead-letters it with the reason: kept, and redrivable.
 */
export function intakeQueueFor(settings: Pick<IntakeSettings, 'queueUrl' | 'routes'>, key: string): string {
  return (settings.routes && routeOfKey(settings.routes, key)?.queueUrl) ?? settings.queueUrl;
}

/** The name of a stage's one route when it has no routes: its use is not counted apart, and its writes are the stage's. */
export const UNROUTED = '';

/** The route's name as its jobs, leases and counters carry it; undefined for a stage without routes. */
export function countedRoute(route: RouteSettings): string | undefined {
  return route.name === UNROUTED ? undefined : route.name;
}
