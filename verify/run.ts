/**
 * npm run verify:terraform [-- --stage dev] — every stage (and the bootstrap stack of its account) through real
 * Terraform and the real AWS provider against moto, an AWS emulator nobody here wrote:
 *   init + validate → apply → plan says no changes → exercise the applied stage (__tests__/on-moto) →
 *   teardown (lift protection, destroy) → the bootstrap refuses destroy of the state bucket, the rest is destroyed.
 * Per account one moto server; the stage's S3 backend lives in the bucket the bootstrap created there.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadEnvironments, type EnvironmentConfig } from '../environments';
import { bootstrapStackName } from '../modules/bootstrap';
import { stackName } from '../environments/names';
import { beyondProtection, synthesizeForTeardown } from '../synth/teardown';
import { readSynthesizedStacks, type TerraformJson } from '../synth/output';
import { emulatorOverride } from './endpoints';
import { createStandInNetwork, substituteNetwork, type ExistingNetwork } from './network-fixture';
import { startMoto, type MotoServer } from './moto';
import {
  checkTerraform,
  chooseProvider,
  mirrorCandidates,
  pinnedAwsProvider,
  registryReachable,
  resourcesInState,
  ScratchStack,
  type ProviderChoice,
} from '../synth/terraform';
import { terraformEnvironment } from './terraform';

const ROOT = resolve(__dirname, '..');
const BOOTSTRAP_OUTDIR = join('cdktf.out', 'bootstrap');

const log = (line: string) => console.log(line);

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): void {
  const result = spawnSync(command, args, { cwd: ROOT, env, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}`);
}

interface StageResult {
  readonly name: string;
  readonly steps: Array<[string, number]>;
}

function stackSource(outdir: string, name: string): { dir: string; json: TerraformJson } {
  const stack = readSynthesizedStacks(outdir).find((s) => s.name === name);
  if (!stack) throw new Error(`${name} is not in ${outdir}: the synth did not write it`);
  return { dir: join(outdir, 'stacks', name), json: stack.json };
}

/** Applies, re-plans and leaves the bootstrap stack of one account up (its state bucket holds the stages' state). */
function applyBootstrap(
  accountId: string,
  moto: MotoServer,
  scratch: string,
  choice: ProviderChoice,
  env: NodeJS.ProcessEnv,
  result: StageResult,
): ScratchStack {
  const name = bootstrapStackName(accountId);
  const source = stackSource(BOOTSTRAP_OUTDIR, name);
  const stack = ScratchStack.create(name, source.dir, scratch, choice, env, log);
  stack.writeOverride(emulatorOverride(source.json, moto.endpoint, { local: 'terraform.tfstate' }));
  timed(result, 'init', () => stack.terraform(['init', '-input=false', '-no-color']));
  timed(result, 'validate', () => stack.terraform(['validate', '-no-color']));
  timed(result, 'apply', () => stack.terraform(['apply', '-input=false', '-no-color', '-auto-approve']));
  timed(result, 're-plan', () => expectNoChanges(stack));
  return stack;
}

/** The state bucket has prevent_destroy: a plain destroy must be refused; the rest is destroyed by target. */
function destroyBootstrap(stack: ScratchStack, result: StageResult): void {
  const refused = stack.terraform(['destroy', '-input=false', '-no-color', '-auto-approve'], { allowCodes: [1] });
  if (!refused.output.includes('Instance cannot be destroyed'))
    throw new Error(`${stack.name}: destroy failed, but not because of prevent_destroy:\n${refused.output.slice(-2000)}`);
  const kept = new Set(['aws_s3_bucket']);
  const targets = resourcesInState(stack.state())
    .filter((r) => !kept.has(r.type))
    .map((r) => `-target=${r.address}`);
  timed(result, 'destroy (all but the state bucket)', () => stack.terraform(['destroy', '-input=false', '-no-color', '-auto-approve', ...targets]));
  const left = resourcesInState(stack.state()).map((r) => r.type);
  if (left.join(',') !== 'aws_s3_bucket') throw new Error(`${stack.name}: after the targeted destroy, state still holds ${left.join(', ')}`);
}

function expectNoChanges(stack: ScratchStack): void {
  const plan = stack.terraform(['plan', '-input=false', '-no-color', '-detailed-exitcode'], { allowCodes: [0, 2] });
  if (plan.code === 2) throw new Error(`${stack.name}: the plan after apply is not empty (a perpetual diff):\n${plan.output.slice(-6000)}`);
}

function timed(result: StageResult, step: string, fn: () => unknown): void {
  const started = Date.now();
  fn();
  result.steps.push([step, (Date.now() - started) / 1000]);
}

/** What the on-moto tests need about the applied stage, read from its Terraform state. */
function exerciseContext(config: EnvironmentConfig, stack: ScratchStack, moto: MotoServer) {
  const state = stack.state();
  const functions = Object.fromEntries(
    resourcesInState(state, 'aws_lambda_function').map((r) => [
      String(r.values.function_name),
      (r.values.environment?.[0]?.variables ?? {}) as Record<string, string>,
    ]),
  );
  const [seed] = resourcesInState(state, 'aws_lambda_invocation');
  return {
    stage: config.stage,
    fargateVcpuQuota: config.capacity.accountVcpuQuota,
    endpoint: moto.endpoint,
    accountId: moto.accountId,
    region: moto.region,
    outputs: Object.fromEntries(Object.entries(state.values?.outputs ?? {}).map(([k, v]) => [k, v.value])),
    functions,
    seed: seed ? { functionName: String(seed.values.function_name), input: JSON.parse(String(seed.values.input)) } : undefined,
  };
}

function exercise(config: EnvironmentConfig, stack: ScratchStack, moto: MotoServer, scratch: string, result: StageResult): void {
  const file = join(scratch, `${stack.name}-context.json`);
  writeFileSync(file, JSON.stringify(exerciseContext(config, stack, moto), null, 2));
  timed(result, 'exercise (jest __tests__/on-moto)', () =>
    run(process.execPath, [join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), '-c', 'jest.moto.config.js'], { ...process.env, SLUICE_ON_MOTO: file }),
  );
}

/** Replaces the scratch copy's configuration by the stage synthesized for teardown, keeping its backend and init. */
function teardown(
  config: EnvironmentConfig,
  stack: ScratchStack,
  scratch: string,
  choice: ProviderChoice,
  result: StageResult,
  network?: ExistingNetwork,
): void {
  const lifted = synthesizeForTeardown(config, join(scratch, 'teardown-synth'));
  const fresh = ScratchStack.create(`${stack.name}-teardown-copy`, lifted, scratch, choice, {}, log);
  if (network) substituteNetwork(fresh.dir, config, network);
  for (const entry of readdirSync(fresh.dir)) cpSync(join(fresh.dir, entry), join(stack.dir, entry), { recursive: true, force: true });
  timed(result, 'teardown: plan lifting protection', () => {
    stack.terraform(['plan', '-input=false', '-no-color', '-out=lift-protection.tfplan']);
    const problems = beyondProtection(JSON.parse(stack.terraform(['show', '-json', 'lift-protection.tfplan'], { quiet: true }).output));
    if (problems.length > 0) throw new Error(`${stack.name}: the teardown plan does more than lift protection:\n${problems.join('\n')}`);
  });
  timed(result, 'teardown: apply', () => stack.terraform(['apply', '-input=false', '-no-color', 'lift-protection.tfplan']));
  timed(result, 'teardown: destroy', () => stack.terraform(['destroy', '-input=false', '-no-color', '-auto-approve']));
  const left = resourcesInState(stack.state());
  if (left.length > 0) throw new Error(`${stack.name}: destroy left ${left.map((r) => r.address).join(', ')}`);
}

async function verifyAccount(
  accountId: string,
  stages: EnvironmentConfig[],
  scratch: string,
  choice: ProviderChoice,
  env: NodeJS.ProcessEnv,
): Promise<StageResult[]> {
  const results: StageResult[] = [];
  // The account's Fargate quota as the stage config says it is (what Service Quotas would answer).
  const moto = await startMoto({
    accountId,
    region: stages[0].backend.region,
    log,
    logFile: join(scratch, `moto-${accountId}.log`),
    fargateVcpuQuota: stages[0].capacity.accountVcpuQuota,
  });
  try {
    const bootstrapResult: StageResult = { name: bootstrapStackName(accountId), steps: [] };
    results.push(bootstrapResult);
    const bootstrap = applyBootstrap(accountId, moto, scratch, choice, env, bootstrapResult);
    for (const config of stages) {
      const result: StageResult = { name: stackName(config.stage), steps: [] };
      results.push(result);
      const source = stackSource('cdktf.out', stackName(config.stage));
      const stack = ScratchStack.create(stackName(config.stage), source.dir, scratch, choice, env, log);
      stack.writeOverride(emulatorOverride(source.json, moto.endpoint, 's3'));
      const network = config.network.kind === 'existing' ? createStandInNetwork(config, moto.endpoint, scratch, choice, env, log) : undefined;
      if (network) substituteNetwork(stack.dir, config, network);
      timed(result, 'init', () => stack.terraform(['init', '-input=false', '-no-color']));
      timed(result, 'validate', () => stack.terraform(['validate', '-no-color']));
      timed(result, 'apply', () => stack.terraform(['apply', '-input=false', '-no-color', '-auto-approve']));
      timed(result, 're-plan', () => expectNoChanges(stack));
      exercise(config, stack, moto, scratch, result);
      teardown(config, stack, scratch, choice, result, network);
    }
    destroyBootstrap(bootstrap, bootstrapResult);
  } finally {
    await moto.stop();
  }
  return results;
}

const USAGE = 'usage: npm run verify:terraform [-- --stage <stage> ...] [--keep]';

/** The stages named by --stage (all when none is), or the message that says why the arguments are wrong. */
function parseOptions(): { selected: EnvironmentConfig[]; keep: boolean } | { error: string } {
  let values: { stage?: string[]; keep?: boolean };
  try {
    ({ values } = parseArgs({ options: { stage: { type: 'string', multiple: true }, keep: { type: 'boolean', default: false } } }));
  } catch (error) {
    return { error: `${(error as Error).message}\n${USAGE}` };
  }
  const configs = loadEnvironments();
  const unknown = (values.stage ?? []).filter((s) => !configs.some((c) => c.stage === s));
  if (unknown.length > 0) {
    return { error: `no stage ${unknown.map((s) => `"${s}"`).join(', ')}; stages: ${configs.map((c) => c.stage).join(', ')}\n${USAGE}` };
  }
  return { selected: configs.filter((c) => !values.stage || values.stage.includes(c.stage)), keep: values.keep ?? false };
}

/** Both apps, each into the outdir its stacks' scratch copies are taken from (cdktf.out, cdktf.out/bootstrap). */
function synthesizeEverything(): void {
  log('=== synth (every stage, and the bootstrap stacks)');
  const tsx = join(ROOT, 'node_modules', '.bin', 'tsx');
  run(tsx, ['--disable-warning=DEP0044', 'main.ts']);
  run(tsx, ['--disable-warning=DEP0044', 'bootstrap.ts'], { ...process.env, CDKTF_OUTDIR: BOOTSTRAP_OUTDIR });
}

/** One moto server per account: its stages share the bootstrap's state bucket. */
function byAccount(selected: EnvironmentConfig[]): Map<string, EnvironmentConfig[]> {
  const accounts = new Map<string, EnvironmentConfig[]>();
  for (const config of selected) accounts.set(config.account.id, [...(accounts.get(config.account.id) ?? []), config]);
  return accounts;
}

function printSummary(results: StageResult[], started: number): void {
  log('\n=== verified against moto');
  for (const r of results) log(`${r.name.padEnd(30)} ${r.steps.map(([step, s]) => `${step} ${s.toFixed(0)}s`).join(' · ')}`);
  log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

async function main(): Promise<number> {
  const options = parseOptions();
  if ('error' in options) {
    console.error(options.error);
    return 2;
  }
  const { selected, keep } = options;
  checkTerraform();
  synthesizeEverything();

  const choice = chooseProvider(pinnedAwsProvider(stackSource('cdktf.out', stackName(selected[0].stage)).json), mirrorCandidates(), registryReachable);
  log(`=== hashicorp/aws ${choice.version}${choice.mirror ? ` from the filesystem mirror ${choice.mirror}` : ' from registry.terraform.io'}`);
  if (choice.note) log(`NOTE: ${choice.note}`);

  const scratch = process.env.SLUICE_VERIFY_DIR ? resolve(process.env.SLUICE_VERIFY_DIR) : mkdtempSync(join(tmpdir(), 'sluice-verify-'));
  mkdirSync(scratch, { recursive: true });
  const env = terraformEnvironment(scratch, choice);

  const results: StageResult[] = [];
  const started = Date.now();
  try {
    for (const [accountId, stages] of byAccount(selected)) {
      log(`=== account ${accountId}: ${[bootstrapStackName(accountId), ...stages.map((s) => stackName(s.stage))].join(', ')}`);
      results.push(...(await verifyAccount(accountId, stages, scratch, choice, env)));
    }
  } finally {
    if (!keep && !process.env.SLUICE_VERIFY_DIR) rmSync(scratch, { recursive: true, force: true });
    else log(`scratch copies kept in ${scratch}`);
  }
  printSummary(results, started);
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`\nverify:terraform failed: ${error.message}`);
      process.exit(1);
    },
  );
}
