/**
 * `sluice resize --route <name> --max-vcpu <n|config>`: a route's cap changed at run time, as the budget is by
 * `sluice resize --vcpu`. The cap is kept on POOL (`maxVcpu@route:<name>`) and stands in for the route's configured
 * maxVcpu until `--max-vcpu config` removes it; `terraform apply` leaves it. Every admission for the route is
 * conditioned on the cap it read, so none admitted on the old cap lands after the change. Running tasks are never
 * stopped: a route holding more than its new cap takes nothing until it is under it.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { routeVcpuOf, type EnvironmentConfig } from '../environments';
import { ownByRoute, CAP_OF_ROUTE, routeCap } from '../functions/routes';
import { POOL_KEY, readPool, type PoolState } from '../functions/limiter';
import { currentPool } from './pool';
import { CliError, EXIT, stageNames, type StageClients } from './stage';

/** `config`: back to the route's configured maxVcpu (none, if it has none). */
export type WantedCap = number | 'config';

export interface RouteCapChange {
  readonly stage: string;
  readonly route: string;
  /** The cap in force before and after (undefined: none). */
  readonly before?: number;
  readonly after?: number;
  /** The route's maxVcpu in environments/<stage>.ts. */
  readonly configured?: number;
  readonly inUseVcpu: number;
}

/** The route's configured settings; refused with the stage's route names when it has no such route. */
export function configuredRoute(config: EnvironmentConfig, name: string) {
  if (!config.routes)
    throw new CliError(`stage ${config.stage} has no routes: --route needs a stage with routes (resize --vcpu changes its budget)`, EXIT.usage);
  const route = config.routes.find((r) => r.name === name);
  if (!route) throw new CliError(`stage ${config.stage} has no route '${name}' (its routes: ${config.routes.map((r) => r.name).join(', ')})`, EXIT.usage);
  return route;
}

/** A cap holds at least one of the route's tasks and no more than the stage's budget (before any pause). */
function checkCap(config: EnvironmentConfig, pool: PoolState, route: NonNullable<EnvironmentConfig['routes']>[number], cap: number): void {
  const { name } = route;
  const taskVcpu = routeVcpuOf(config.task, route);
  const budget = pool.pausedFromVcpu ?? pool.budgetVcpu;
  if (cap < taskVcpu || cap > budget) {
    throw new CliError(
      `--max-vcpu for route '${name}' must be at least one of its tasks (${taskVcpu} vCPU) and at most the stage's budget (${budget} vCPU), got ${cap}`,
      EXIT.usage,
    );
  }
}

export async function resizeRoute(clients: StageClients, config: EnvironmentConfig, name: string, wanted: WantedCap): Promise<RouteCapChange> {
  const route = configuredRoute(config, name);
  const table = stageNames(config).stateTable;
  const pool = await currentPool(clients, config);
  if (wanted !== 'config') checkCap(config, pool, route, wanted);
  const attribute = { '#cap': `${CAP_OF_ROUTE}${name}` };
  // The last look short of room is forgotten: a wake-up must look again with the new cap.
  await clients.ddb.send(
    new UpdateCommand({
      TableName: table,
      Key: POOL_KEY,
      UpdateExpression: wanted === 'config' ? 'REMOVE #cap, lastLook' : 'SET #cap = :cap REMOVE lastLook',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: attribute,
      ...(wanted === 'config' ? {} : { ExpressionAttributeValues: { ':cap': wanted } }),
    }),
  );
  const after = await readPool(clients.ddb, table);
  return {
    stage: config.stage,
    route: name,
    before: routeCap(route, pool.routeCaps),
    after: routeCap(route, after.routeCaps),
    ...(route.maxVcpu !== undefined ? { configured: route.maxVcpu } : {}),
    inUseVcpu: ownByRoute(after)[name] ?? 0,
  };
}

const capText = (cap: number | undefined) => (cap === undefined ? 'no cap' : `cap ${cap} vCPU`);

export function formatRouteCap(change: RouteCapChange): string {
  const lines = [
    `route ${change.route}: ${capText(change.before)} → ${capText(change.after)} (configured: ${capText(change.configured)}), ${change.inUseVcpu} vCPU in use`,
  ];
  if (change.after !== undefined && change.inUseVcpu > change.after)
    lines.push(`it holds more than its cap: its running tasks finish, and it takes nothing new until it is under ${change.after} vCPU`);
  if (change.after !== change.configured) lines.push(`the cap stands until: sluice resize --route ${change.route} --max-vcpu config --stage ${change.stage}`);
  return lines.join('\n');
}
