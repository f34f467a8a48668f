/**
 * The rollout's promotion check: a stage after the first applies only the worker image that ran, and passed, in the
 * stage before it. Its evidence is that stage's `sluice smoke` report from the same rollout (same commit): the task
 * that ran the canary and the image digest ECS recorded for it. The stage being promoted must name its image by
 * that digest; a tag, another digest, a failed smoke or another stage's report is refused, before anything is planned.
 *
 *   npx tsx scripts/promotion.ts --stage stg --from dev --smoke smoke-dev/smoke.json
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { SmokeReport } from '../cli/smoke';
import { loadEnvironments, type EnvironmentConfig } from '../environments';

export type Promotion = { readonly ok: true; readonly digest: string } | { readonly ok: false; readonly reason: string };

/** Whether `config` may be applied after `from`'s smoke test said `report`. */
export function checkPromotion(config: EnvironmentConfig, from: string, report: SmokeReport): Promotion {
  const refuse = (reason: string): Promotion => ({ ok: false, reason: `${config.stage} is not promoted from ${from}: ${reason}` });
  if (report.stage !== from) return refuse(`the smoke report given is ${report.stage}'s, not ${from}'s`);
  if (report.outcome !== 'passed') return refuse(`${from}'s smoke test ${report.outcome} (${report.object})`);
  const ran = report.worker?.imageDigest;
  if (!ran) return refuse(`${from}'s smoke test recorded no image digest for its task (${report.worker?.taskArn ?? 'no task'})`);
  const wanted = config.image.digest;
  if (!wanted)
    return refuse(
      `environments/${config.stage}.ts names its image by tag (${config.image.repository}:${config.image.tag}); a promoted stage names the digest that ran in ${from}: image.digest = '${ran}'`,
    );
  if (wanted !== ran)
    return refuse(
      `environments/${config.stage}.ts runs ${config.image.repository}@${wanted}, but ${from} ran and passed ${ran} (task ${report.worker!.taskArn}): set image.digest = '${ran}', or let ${from} run ${wanted} first`,
    );
  return { ok: true, digest: ran };
}

function readReport(file: string): SmokeReport {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the smoke report ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const report = JSON.parse(text) as SmokeReport;
    if (typeof report?.stage !== 'string' || typeof report?.outcome !== 'string') throw new Error('no stage or outcome');
    return report;
  } catch (error) {
    throw new Error(`${file} is not a sluice smoke --json report: ${(error as Error).message}`, { cause: error });
  }
}

const USAGE = 'usage: npx tsx scripts/promotion.ts --stage <stage> --from <previous stage> --smoke <smoke report (sluice smoke --json)>';

function main(): number {
  let values: { stage?: string; from?: string; smoke?: string };
  try {
    ({ values } = parseArgs({ options: { stage: { type: 'string' }, from: { type: 'string' }, smoke: { type: 'string' } } }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!values.stage || !values.from || !values.smoke) {
    console.error(USAGE);
    return 2;
  }
  const config = loadEnvironments().find((c) => c.stage === values.stage);
  if (!config) {
    console.error(`no stage "${values.stage}" in environments/\n${USAGE}`);
    return 2;
  }
  const result = checkPromotion(config, values.from, readReport(values.smoke));
  if (!result.ok) {
    console.error(result.reason);
    return 1;
  }
  console.log(`${config.stage}: runs ${config.image.repository}@${result.digest}, which ran and passed in ${values.from}`);
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
