/**
 * The rollout's promotion check: a stage after the first deploys a worker image only if that image ran, and passed
 * its smoke test, in the stage before it. It reads the stage's saved plan (made against its state) for what would
 * change, and the previous stage's smoke result from the same rollout for the digest ECS recorded for its canary's
 * task. A plan that registers no new task definition, or one whose image stays the same, is not a promotion; one
 * that deploys an image must name it by that digest. Runs after the plan, before the apply, without credentials.
 *
 *   npx tsx scripts/promotion.ts --stage stg --from dev --ran sha256:… [--plan-json planned/plan.json]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadEnvironments, type EnvironmentConfig } from '../environments';
import { WORKER_CONTAINER_NAME } from '../task-image/image-reference';
import type { PlanJson } from './plan-review';

export type Promotion = { readonly ok: true; readonly why: string } | { readonly ok: false; readonly reason: string };

export interface PromotionRequest {
  readonly config: EnvironmentConfig;
  /** The stage before it in the rollout. */
  readonly from: string;
  /** The image digest `from`'s smoke task ran (empty if it recorded none). */
  readonly ran: string;
  /** The stage's saved plan (`terraform show -json`); undefined when the plan had no changes. */
  readonly plan: PlanJson | undefined;
}

/** The worker container's image in a task definition's container_definitions (a JSON string in plan and state). */
function workerImageIn(containerDefinitions: unknown): string | undefined {
  if (typeof containerDefinitions !== 'string') return undefined;
  const containers = JSON.parse(containerDefinitions) as Array<{ name?: string; image?: string }>;
  return containers.find((c) => c.name === WORKER_CONTAINER_NAME)?.image;
}

const digestOf = (image: string) => /@(sha256:[0-9a-f]{64})$/.exec(image)?.[1];

/**
 * Every task definition the plan registers is checked: the stage's and each route's own. A route's own image is
 * promoted only as the digest the previous stage's smoke task ran (the smoke test runs the stage's route); any other
 * image a route deploys by itself has no evidence behind it, and is refused.
 */
export function checkPromotion({ config, from, ran, plan }: PromotionRequest): Promotion {
  if (!plan) return { ok: true, why: 'no changes planned: nothing is deployed' };
  const revisions = (plan.resource_changes ?? []).filter((r) => r.type === 'aws_ecs_task_definition' && r.change.actions.includes('create'));
  if (revisions.length === 0) return { ok: true, why: 'the plan registers no new task definition: the worker image does not change' };
  const verdicts = revisions.map((revision) => checkRevision({ config, from, ran }, revision.change));
  const refused = verdicts.find((v): v is Extract<Promotion, { ok: false }> => !v.ok);
  if (refused) return refused;
  const whys = [...new Set(verdicts.map((v) => (v as { why: string }).why))];
  return { ok: true, why: whys.join('; ') };
}

/** The image the configuration gives a family: a route's own (`<namePrefix>-worker-<route>`), else the stage's. */
function configuredImageOf(config: EnvironmentConfig, family: string): { readonly tag?: string; readonly digest?: string } {
  const route = config.routes?.find((r) => family === `${config.namePrefix}-worker-${r.name}`);
  return route?.task?.image ?? config.image;
}

/** One new task definition revision: its worker image stays, or is the digest `from` ran and passed. */
function checkRevision({ config, from, ran }: Omit<PromotionRequest, 'plan'>, change: { readonly before?: unknown; readonly after?: unknown }): Promotion {
  const family = String((change.after as { family?: unknown } | null | undefined)?.family ?? 'the task definition');
  const refuse = (reason: string): Promotion => ({ ok: false, reason: `${config.stage} is not promoted from ${from}: ${family}: ${reason}` });
  const field = (value: unknown) => (value as { container_definitions?: unknown } | null | undefined)?.container_definitions;
  const before = workerImageIn(field(change.before));
  // Unknown until applied only when the repository itself is new (a new stage): then it is the configured image, a
  // route's own for its family.
  const configured = configuredImageOf(config, family);
  const after = workerImageIn(field(change.after)) ?? (configured.digest ? `${config.image.repository}@${configured.digest}` : undefined);
  if (after !== undefined && after === before) return { ok: true, why: `the worker image stays ${after} (the new revision changes something else)` };
  const wanted = after && digestOf(after);
  if (!wanted)
    return refuse(
      `the plan deploys ${after ?? `${config.image.repository}:${configured.tag}`}, an image by tag; a promoted stage names the digest that ran in ${from} (environments/${config.stage}.ts image.digest)`,
    );
  if (!ran) return refuse(`the plan deploys ${wanted}, and ${from}'s smoke test recorded no image digest for its task`);
  if (wanted !== ran)
    return refuse(
      `the plan deploys ${wanted}, but ${from} ran and passed ${ran}: set image.digest = '${ran}' in environments/${config.stage}.ts (and on any route's own image), or let ${from} run ${wanted} first`,
    );
  return { ok: true, why: `the plan deploys ${wanted}, which ran and passed in ${from}` };
}

function readPlan(file: string): PlanJson {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PlanJson;
  } catch (error) {
    throw new Error(`cannot read the plan ${file} (terraform show -json): ${(error as Error).message}`, { cause: error });
  }
}

const USAGE = 'usage: npx tsx scripts/promotion.ts --stage <stage> --from <previous stage> --ran <digest its smoke task ran> [--plan-json <file>]';

function main(): number {
  let values: { stage?: string; from?: string; ran?: string; 'plan-json'?: string };
  try {
    ({ values } = parseArgs({ options: { stage: { type: 'string' }, from: { type: 'string' }, ran: { type: 'string' }, 'plan-json': { type: 'string' } } }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!values.stage || !values.from || values.ran === undefined) {
    console.error(USAGE);
    return 2;
  }
  if (values.ran !== '' && !/^sha256:[0-9a-f]{64}$/.test(values.ran)) {
    console.error(`--ran takes an image digest (sha256:<64 hex>), got '${values.ran}'\n${USAGE}`);
    return 2;
  }
  const config = loadEnvironments().find((c) => c.stage === values.stage);
  if (!config) {
    console.error(`no stage "${values.stage}" in environments/\n${USAGE}`);
    return 2;
  }
  const plan = values['plan-json'] ? readPlan(values['plan-json']) : undefined;
  const result = checkPromotion({ config, from: values.from, ran: values.ran, plan });
  if (!result.ok) {
    console.error(result.reason);
    return 1;
  }
  console.log(`${config.stage}: promoted from ${values.from}: ${result.why}`);
  return 0;
}

if (require.main === module) {
  try {
    process.exit(main());
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
}
