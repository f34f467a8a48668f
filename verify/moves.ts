/**
 * npm run verify:moves -- --from <git ref> [--stage dev] — a refactoring that moves resources to new addresses
 * re-plans an applied stage with moves only: the stage as <ref> synthesizes it is applied on moto with real Terraform,
 * then this checkout's synth of it is planned against that state. The plan must move at least one resource and
 * create, update, replace and destroy nothing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadEnvironments, type EnvironmentConfig } from '../environments';
import { stackName } from '../environments/names';
import { synthesizeRef } from '../synth/ref';
import { synthesizeStageTo } from '../synth/stage';
import type { TerraformJson } from '../synth/output';
import { emulatorOverride } from './endpoints';
import { startMoto } from './moto';
import { checkTerraform, chooseProvider, mirrorCandidates, pinnedAwsProvider, registryReachable, ScratchStack } from '../synth/terraform';
import { terraformEnvironment } from './terraform';

const ROOT = resolve(__dirname, '..');
const log = (line: string) => console.log(line);

type PlannedChange = {
  address: string;
  previous_address?: string;
  change: { actions: string[]; before?: Record<string, unknown> | null; after?: Record<string, unknown> | null };
};

/** What a function's new bundle changes: a release of its code, not of the stage's shape. */
const CODE_ATTRIBUTES = new Set(['filename', 'source_code_hash']);

/** An update whose only known changes are a function's bundle (what becomes unknown follows from them). */
function isCodeUpdate(change: PlannedChange['change']): boolean {
  const { before, after } = change;
  if (!change.actions.includes('update') || change.actions.length !== 1 || !before || !after) return false;
  const changed = Object.keys(after).filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
  return changed.length > 0 && changed.every((key) => CODE_ATTRIBUTES.has(key));
}

export interface MovePlanSummary {
  readonly moved: readonly string[];
  /** Addresses by what Terraform would do to them besides moving them: create, update, delete (a replace is both). */
  readonly create: readonly string[];
  readonly update: readonly string[];
  /** Functions updated in place with a new bundle only: the code changed, as in any release; reported, not refused. */
  readonly codeUpdate: readonly string[];
  readonly delete: readonly string[];
  /** Resources the plan leaves as they are (a moved one included). */
  readonly noOp: number;
}

/** What a `terraform show -json` plan does: the resources it moves, and any it would create, update or delete. */
export function summarizeMovePlan(plan: { resource_changes?: PlannedChange[] }): MovePlanSummary {
  const changes = plan.resource_changes ?? [];
  const doing = (action: string) => changes.filter((c) => c.change.actions.includes(action)).map((c) => c.address);
  return {
    moved: changes.filter((c) => c.previous_address !== undefined && c.previous_address !== c.address).map((c) => `${c.previous_address} → ${c.address}`),
    create: doing('create'),
    update: changes.filter((c) => c.change.actions.includes('update') && !isCodeUpdate(c.change)).map((c) => c.address),
    codeUpdate: changes.filter((c) => isCodeUpdate(c.change)).map((c) => c.address),
    delete: doing('delete'),
    noOp: changes.filter((c) => c.change.actions.join() === 'no-op').length,
  };
}

/** Why the plan is not a pure move, or undefined if it is. */
export function notOnlyMoves(summary: MovePlanSummary): string | undefined {
  const problems = [
    ...(summary.moved.length === 0 ? ['it moves nothing'] : []),
    ...(['create', 'update', 'delete'] as const).filter((a) => summary[a].length > 0).map((a) => `${a}: ${summary[a].join(', ')}`),
  ];
  return problems.length > 0 ? problems.join('; ') : undefined;
}

function parseOptions(): { from: string; config: EnvironmentConfig } {
  const { values } = parseArgs({ options: { from: { type: 'string' }, stage: { type: 'string', default: 'dev' } } });
  const config = loadEnvironments().find((c) => c.stage === values.stage);
  if (!values.from || !config) throw new Error('usage: npm run verify:moves -- --from <git ref> [--stage <stage>]');
  return { from: values.from, config };
}

async function main(): Promise<number> {
  const { from, config } = parseOptions();
  checkTerraform();
  const scratch = mkdtempSync(join(tmpdir(), 'sluice-moves-'));
  try {
    const name = stackName(config.stage);
    const { commit } = synthesizeRef(ROOT, from, join(scratch, 'synth-from'));
    const applied = join(scratch, 'synth-from', 'stacks', name);
    const json = JSON.parse(readFileSync(join(applied, 'cdk.tf.json'), 'utf8')) as TerraformJson;
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
      const override = emulatorOverride(json, moto.endpoint, { local: 'terraform.tfstate' });
      const before = ScratchStack.create(`${name}-at-${from}`, applied, join(scratch, 'stacks'), choice, env, log);
      before.writeOverride(override);
      before.terraform(['init', '-input=false', '-no-color']);
      before.terraform(['apply', '-input=false', '-no-color', '-auto-approve']);

      const after = ScratchStack.create(`${name}-here`, synthesizeStageTo(config, join(scratch, 'synth-here')), join(scratch, 'stacks'), choice, env, log);
      after.writeOverride(override);
      // The plan is of this checkout's code against the stage applied as `from`.
      const summary = summarizeMovePlan(after.planAgainst(before) as Parameters<typeof summarizeMovePlan>[0]);
      log(`\n${name}: applied as ${from} (${commit.slice(0, 12)}), planned with this checkout:`);
      log(
        `  ${summary.moved.length} moved, ${summary.create.length} to add, ${summary.update.length} to change, ${summary.delete.length} to destroy, ${summary.codeUpdate.length} function bundle(s) updated; ${summary.noOp} of ${summary.noOp + new Set([...summary.create, ...summary.update, ...summary.delete, ...summary.codeUpdate]).size} resources left as they are`,
      );
      for (const move of summary.moved) log(`  > ${move}`);
      for (const fn of summary.codeUpdate) log(`  ~ ${fn} (new bundle only)`);
      const problem = notOnlyMoves(summary);
      if (problem) throw new Error(`${name}: the plan is not only moves: ${problem}`);
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
      console.error(`\nverify:moves failed: ${error.message}`);
      process.exit(1);
    },
  );
}
