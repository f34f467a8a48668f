/**
 * npm run verify:plan-fixtures — real Terraform plans, for the plan review's tests (__tests__/scripts/plans/): the dev
 * stage is applied on moto, then four changes a team makes are planned against that state with the real provider,
 * and each `terraform show -json` is written, trimmed to what the review reads (resource_changes, output_changes).
 *   image-bump   a new worker image tag (the task definition is replaced, its old revision kept)
 *   capacity     the vCPU budget 4 → 5 (the pool's seed runs again)
 *   iam          the input prefix moves (the task role's policy, the rule, the functions' settings)
 *   destroy      the VPC shrinks to one zone (a subnet and its route table association really go)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadEnvironments, type EnvironmentConfig } from '../environments';
import { stackName } from '../environments/names';
import { synthesizeStageTo } from '../synth/stage';
import type { TerraformJson } from '../synth/output';
import { emulatorOverride } from './endpoints';
import { startMoto } from './moto';
import { checkTerraform, chooseProvider, mirrorCandidates, pinnedAwsProvider, registryReachable, ScratchStack } from '../synth/terraform';
import { terraformEnvironment } from './terraform';

const ROOT = resolve(__dirname, '..');
const FIXTURES = join(ROOT, '__tests__', 'scripts', 'plans');
const log = (line: string) => console.log(line);

const VARIANTS: ReadonlyArray<readonly [string, (c: EnvironmentConfig) => EnvironmentConfig]> = [
  ['image-bump', (c) => ({ ...c, image: { ...c.image, tag: '2026-12-07.1' } })],
  ['capacity', (c) => ({ ...c, capacity: { ...c.capacity, vcpuBudget: c.capacity.vcpuBudget + 1 } })],
  ['iam', (c) => ({ ...c, bucket: { ...c.bucket, inputPrefix: 'uploads/' } })],
  ['destroy', (c) => (c.network.kind === 'create' ? { ...c, network: { ...c.network, availabilityZones: c.network.availabilityZones.slice(0, 1) } } : c)],
];

type Listed = { change: { actions: string[]; importing?: unknown } };

/**
 * What the review reads; the rest (prior state, configuration, resources left as they are) is large and says nothing
 * more: the review skips a no-op that imports nothing.
 */
function trimmed(plan: Record<string, unknown>): Record<string, unknown> {
  const { format_version, terraform_version, output_changes } = plan;
  const changing = (plan.resource_changes as Listed[]).filter((r) => r.change.actions.join() !== 'no-op' || r.change.importing);
  return { format_version, terraform_version, resource_changes: changing, output_changes };
}

async function main(): Promise<number> {
  checkTerraform();
  const config = loadEnvironments().find((c) => c.stage === 'dev')!;
  const scratch = mkdtempSync(join(tmpdir(), 'sluice-plans-'));
  try {
    const base = synthesizeStageTo(config, join(scratch, 'synth-base'));
    const json = JSON.parse(readFileSync(join(base, 'cdk.tf.json'), 'utf8')) as TerraformJson;
    const choice = chooseProvider(pinnedAwsProvider(json), mirrorCandidates(), registryReachable);
    if (choice.note) log(`NOTE: ${choice.note}`);
    const env = terraformEnvironment(scratch, choice);
    const moto = await startMoto({
      accountId: config.account.id,
      region: config.account.region,
      log,
      logFile: join(scratch, 'moto.log'),
      fargateVcpuQuota: config.capacity.accountVcpuQuota,
    });
    try {
      const stack = ScratchStack.create(stackName(config.stage), base, join(scratch, 'stacks'), choice, env, log);
      const override = emulatorOverride(json, moto.endpoint, { local: 'terraform.tfstate' });
      stack.writeOverride(override);
      stack.terraform(['init', '-input=false', '-no-color']);
      stack.terraform(['apply', '-input=false', '-no-color', '-auto-approve']);
      mkdirSync(FIXTURES, { recursive: true });
      for (const [name, change] of VARIANTS) {
        const variant = ScratchStack.create(
          `variant-${name}`,
          synthesizeStageTo(change(config), join(scratch, `synth-${name}`)),
          join(scratch, 'stacks'),
          choice,
          env,
          log,
        );
        variant.writeOverride(override);
        // The plan is of this change to the applied stage.
        const plan = variant.planAgainst(stack);
        const listed = trimmed(plan);
        writeFileSync(join(FIXTURES, `${name}.json`), `${JSON.stringify(listed, null, 1)}\n`);
        log(
          `wrote __tests__/scripts/plans/${name}.json (${(listed.resource_changes as unknown[]).length} of ${(plan.resource_changes as unknown[]).length} resources change)`,
        );
      }
    } finally {
      await moto.stop();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`\nverify:plan-fixtures failed: ${error.message}`);
      process.exit(1);
    },
  );
}
