import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadEnvironments, type EnvironmentConfig } from '../environments';
import { loadBootstrap } from '../environments/bootstrap';
import { deployRoleName, planRoleName, roleArn, smokeRoleName } from '../environments/ci-roles';
import { stackName } from '../environments/names';

/**
 * The stages as the workflows need them, from the validated configs (stages are defined once, in environments/):
 *   npm run -s stages -- --json              → [{ stage, account, region, stack, stackDir, planRoleArn, deployRoleArn, pullRequestPlans }, …]
 *   npm run -s stages -- --json --stage dev  → that one object
 *   npm run -s stages -- --json --pull-request-plans → only the stages pull requests may plan (environments/bootstrap.ts)
 */
interface StageInfo {
  readonly stage: string;
  readonly account: string;
  readonly region: string;
  readonly stack: string;
  readonly stackDir: string;
  readonly planRoleArn: string;
  readonly deployRoleArn: string;
  readonly smokeRoleArn: string;
  /** Whether pull requests plan it (their plan role trusts them); the others are planned on main only. */
  readonly pullRequestPlans: boolean;
}

export function stageInfo(
  config: EnvironmentConfig,
  outdir = 'cdktf.out',
  pullRequestPlans: readonly string[] = loadBootstrap().github.pullRequestPlans,
): StageInfo {
  const { id, region } = config.account;
  return {
    stage: config.stage,
    account: id,
    region,
    stack: stackName(config.stage),
    stackDir: join(outdir, 'stacks', stackName(config.stage)),
    planRoleArn: roleArn(id, region, planRoleName(config.stage)),
    deployRoleArn: roleArn(id, region, deployRoleName(config.stage)),
    smokeRoleArn: roleArn(id, region, smokeRoleName(config.stage)),
    pullRequestPlans: pullRequestPlans.includes(config.stage),
  };
}

/**
 * A script's arguments with its `--stage` resolved to that stage's config. On an unknown option, no `--stage` or a
 * stage no config defines, it prints why with the usage and answers undefined: the script then exits 2.
 */
export function stageArguments<T extends { stage?: string }>(parse: () => T, usage: string): { values: T; config: EnvironmentConfig } | undefined {
  let values: T;
  try {
    values = parse();
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    return undefined;
  }
  const configs = loadEnvironments();
  const config = configs.find((c) => c.stage === values.stage);
  if (!config) {
    console.error(`${values.stage ? `no stage "${values.stage}"` : 'no --stage given'}; stages: ${configs.map((c) => c.stage).join(', ')}\n${usage}`);
    return undefined;
  }
  return { values, config };
}

function main(): void {
  const { values } = parseArgs({
    options: { json: { type: 'boolean', default: false }, stage: { type: 'string' }, 'pull-request-plans': { type: 'boolean', default: false } },
  });
  const stages = loadEnvironments()
    .map((config) => stageInfo(config))
    .filter((s) => !values['pull-request-plans'] || s.pullRequestPlans);
  const selected = values.stage === undefined ? stages : stages.find((s) => s.stage === values.stage);
  if (selected === undefined) {
    console.error(`no stage "${values.stage}"; stages: ${stages.map((s) => s.stage).join(', ')}`);
    process.exit(1);
  }
  if (values.json) {
    console.log(JSON.stringify(selected));
    return;
  }
  for (const s of [selected].flat())
    console.log(`${s.stage.padEnd(6)} ${s.account} ${s.region.padEnd(14)} ${s.stackDir}  plan=${s.planRoleArn}  deploy=${s.deployRoleArn}`);
}

if (require.main === module) main();
