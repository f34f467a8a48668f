import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { App } from 'cdktf';
import type { EnvironmentConfig } from '../environments';
import { stageArguments } from './stages';
import { stackName } from '../environments/names';
import { PipelineStack } from '../modules/stack';

/**
 * Tears a stage down on purpose, data included, in two applies:
 *   npm run teardown -- --stage stg --confirm sluice-stg
 * 1. synthesize the stage with allowDestroy lifted (cdktf.out/teardown), plan it, and refuse unless the plan only
 *    lifts protection (table deletion protection off, bucket force_destroy, repository force_delete): a teardown
 *    must not apply anything else that is pending;
 * 2. drain the stage (`sluice drain`: pause admission, wait until no vCPU is leased and no execution runs) and refuse
 *    to go on while anything runs: ECS refuses to delete a cluster with tasks (ClusterContainsTasksException; the
 *    provider retries for 10 minutes, then fails half-way), and a dispatcher left admitting starts more;
 * 3. apply that plan, then `terraform destroy`.
 * With credentials for the stage's account and its state backend, as for an apply. Nothing happens without
 * --confirm naming the stack. `--skip-drain` is for a stage whose pipeline is already gone (its table, say).
 */
const TEARDOWN_OUTDIR = join('cdktf.out', 'teardown');

/** The attributes allowDestroy sets, per resource type: what the lifting plan may change, and nothing else. */
const PROTECTION_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = {
  aws_dynamodb_table: ['deletion_protection_enabled'],
  aws_s3_bucket: ['force_destroy'],
  aws_ecr_repository: ['force_delete'],
};

export function synthesizeForTeardown(config: EnvironmentConfig, outdir = TEARDOWN_OUTDIR): string {
  const app = new App({ outdir });
  new PipelineStack(app, stackName(config.stage), { config: { ...config, allowDestroy: true } });
  app.synth();
  return join(outdir, 'stacks', stackName(config.stage));
}

interface PlannedChange {
  address: string;
  type: string;
  change: { actions: string[]; before: Record<string, unknown> | null; after: Record<string, unknown> | null };
}

/** Every reason the plan (`terraform show -json`) is more than lifting protection; empty when it is only that. */
export function beyondProtection(plan: { resource_changes?: PlannedChange[] }): string[] {
  const problems: string[] = [];
  for (const rc of plan.resource_changes ?? []) {
    const actions = rc.change.actions;
    if (actions.length === 1 && (actions[0] === 'no-op' || actions[0] === 'read')) continue;
    const allowed = PROTECTION_ATTRIBUTES[rc.type];
    if (!allowed || actions.length !== 1 || actions[0] !== 'update') {
      problems.push(`${rc.address}: ${actions.join('+')}`);
      continue;
    }
    const before = rc.change.before ?? {};
    const after = rc.change.after ?? {};
    const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
    const others = changed.filter((key) => !allowed.includes(key));
    if (others.length > 0) problems.push(`${rc.address}: also changes ${others.join(', ')}`);
  }
  return problems;
}

function terraform(dir: string, args: string[], capture = false): string {
  const result = spawnSync('terraform', [`-chdir=${dir}`, ...args], {
    encoding: 'utf8',
    stdio: capture ? ['inherit', 'pipe', 'inherit'] : 'inherit',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`terraform ${args[0]} exited ${result.status}`);
  return result.stdout ?? '';
}

/** Runs a command; answers its exit code (the child's output goes to ours). */
type Runner = (command: string, args: readonly string[]) => number;
const spawnRunner: Runner = (command, args) => spawnSync(command, args, { stdio: 'inherit' }).status ?? 1;

/**
 * Drains the stage before its teardown (`sluice drain`, exit 0 drained, 4 timed out): undefined when nothing runs,
 * else why the teardown must not go on.
 */
export function drainBeforeTeardown(config: EnvironmentConfig, timeout: string, run: Runner = spawnRunner): string | undefined {
  const code = run(process.execPath, [join(__dirname, '..', 'bin', 'sluice.cjs'), 'drain', '--stage', config.stage, '--timeout', timeout]);
  if (code === 0) return undefined;
  if (code === 4)
    return `stage ${config.stage} still runs after ${timeout} of draining: wait for its tasks (npx sluice status --stage ${config.stage}), then run the teardown again`;
  return `could not drain stage ${config.stage} (sluice drain exited ${code}); if its pipeline is already gone, run again with --skip-drain`;
}

/** How long the teardown waits for a stage to drain by default: a task's whole timeout, and a janitor sweep. */
function defaultDrainTimeout(config: EnvironmentConfig): string {
  return `${Math.ceil(config.task.timeoutSeconds / 60) + 10}m`;
}

function main(): number {
  const usage = 'usage: npm run teardown -- --stage <stage> --confirm sluice-<stage> [--drain-timeout 70m] [--skip-drain]   (deletes the stage and its data)';
  const args = stageArguments(
    () =>
      parseArgs({
        options: {
          stage: { type: 'string' },
          confirm: { type: 'string' },
          'drain-timeout': { type: 'string' },
          'skip-drain': { type: 'boolean', default: false },
        },
      }).values,
    usage,
  );
  if (!args) return 2;
  const { values, config } = args;
  if (values.confirm !== stackName(config.stage)) {
    console.error(`refusing: --confirm ${stackName(config.stage)} is required to delete stage ${config.stage} with its uploads, results and ledger\n${usage}`);
    return 2;
  }
  const dir = synthesizeForTeardown(config);
  terraform(dir, ['init', '-input=false']);
  terraform(dir, ['plan', '-input=false', '-out=lift-protection.tfplan']);
  const problems = beyondProtection(JSON.parse(terraform(dir, ['show', '-json', 'lift-protection.tfplan'], true)));
  if (problems.length > 0) {
    console.error(`refusing: the plan does more than lift protection; apply main first, then tear down:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    return 1;
  }
  if (!values['skip-drain']) {
    const refusal = drainBeforeTeardown(config, values['drain-timeout'] ?? defaultDrainTimeout(config));
    if (refusal) {
      console.error(`refusing: ${refusal}`);
      return 1;
    }
  }
  terraform(dir, ['apply', '-input=false', 'lift-protection.tfplan']);
  terraform(dir, ['destroy', '-input=false', '-auto-approve']);
  console.log(`${stackName(config.stage)} is destroyed`);
  return 0;
}

if (require.main === module) process.exit(main());
