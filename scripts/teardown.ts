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
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EnvironmentConfig } from '../environments';
import { stackName } from '../environments/names';
import { beyondProtection, synthesizeForTeardown } from '../synth/teardown';
import { stageArguments } from './stages';

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
export function defaultDrainTimeout(config: EnvironmentConfig): string {
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
