/**
 * npm run verify:cdktf [-- --stage dev] — the README's CDKTF CLI path, run for real against moto: `cdktf synth`, then
 * for the stage `cdktf diff` (it would create the stage), `cdktf deploy`, `cdktf diff` (no changes), `cdktf destroy`,
 * all through the CLI of package.json (cdktf-cli) and the Terraform on the PATH. The stage's backend is overridden to
 * a local state and its endpoints to moto (an override file, as verify:terraform does): nothing else is touched.
 *
 * Behind a provider mirror — this machine, and any network that reaches registry.terraform.io only through one —
 * `cdktf diff/deploy/destroy` need `--skip-provider-lock`: after `terraform init` the CLI runs
 * `terraform providers lock -platform=…`, which ignores the CLI configuration's mirrors and asks the public registry.
 * This run shows both: first the CLI's own lock step failing (or passing, where the registry is reachable), then the
 * cycle with the flag. The trade-off of the flag: the stack's `.terraform.lock.hcl` records only the hashes of the
 * platform `terraform init` installed, not every platform's, so a lock file made here does not verify another OS.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, stripVTControlCharacters } from 'node:util';
import { loadEnvironments } from '../environments';
import { stackName } from '../environments/names';
import type { TerraformJson } from '../synth/output';
import { emulatorOverride } from './endpoints';
import { startMoto } from './moto';
import { checkTerraform, chooseProvider, mirrorCandidates, pinnedAwsProvider, registryReachable } from '../synth/terraform';
import { terraformEnvironment } from './terraform';

const ROOT = resolve(__dirname, '..');
const CDKTF = join(ROOT, 'node_modules', '.bin', 'cdktf');
const log = (line: string) => console.log(line);

interface CliRun {
  readonly code: number;
  readonly output: string;
  readonly seconds: number;
}

function cdktf(args: string[], env: NodeJS.ProcessEnv, logFile: string): CliRun {
  const started = Date.now();
  const result = spawnSync(CDKTF, args, { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  // The CLI colours terraform's output whatever the terminal: the checks read the text.
  const output = stripVTControlCharacters(`${result.stdout ?? ''}${result.stderr ?? ''}`);
  writeFileSync(logFile, output);
  return { code: result.status ?? 1, output, seconds: (Date.now() - started) / 1000 };
}

function expect(run: CliRun, what: string, ok: boolean): void {
  if (!ok) throw new Error(`${what}: exit ${run.code}\n${run.output.slice(-4000)}`);
  log(`ok   ${what} (${run.seconds.toFixed(0)} s)`);
}

/** The terraform state cdktf left in the stack's directory (local backend). */
function stateOf(stackDir: string) {
  const file = join(stackDir, 'terraform.tfstate');
  if (!existsSync(file)) return [];
  const state = JSON.parse(readFileSync(file, 'utf8')) as { resources?: Array<{ type: string; instances: unknown[] }> };
  return (state.resources ?? []).filter((r) => r.instances.length > 0);
}

/**
 * The CLI's own cycle against the emulated account: diff with the provider lock (fails behind a mirror, as documented),
 * then with --skip-provider-lock diff (would create), deploy, diff (no changes), destroy (nothing left).
 */
function cycle(run: { stack: string; stackDir: string; outdir: string; env: NodeJS.ProcessEnv; logs: string }): void {
  const { stack, stackDir, outdir, env, logs } = run;
  const common = ['--skip-synth', '--output', outdir];

  const locked = cdktf(['diff', stack, ...common], env, join(logs, 'diff-with-provider-lock.log'));
  if (locked.code === 0) log(`ok   cdktf diff without --skip-provider-lock passes here (registry.terraform.io is reachable)`);
  else
    expect(
      locked,
      'cdktf diff without --skip-provider-lock fails at its provider lock step, as documented',
      /Could not retrieve providers for locking/.test(locked.output),
    );

  const flags = [...common, '--skip-provider-lock'];
  const before = cdktf(['diff', stack, ...flags], env, join(logs, 'diff-before.log'));
  expect(before, 'cdktf diff: the stage would be created', before.code === 0 && /Plan: \d+ to add, 0 to change, 0 to destroy/.test(before.output));
  const deploy = cdktf(['deploy', stack, ...flags, '--auto-approve'], env, join(logs, 'deploy.log'));
  const deployed = stateOf(stackDir).length;
  expect(deploy, `cdktf deploy: ${deployed} resources in state`, deploy.code === 0 && deployed > 50);
  const after = cdktf(['diff', stack, ...flags], env, join(logs, 'diff-after.log'));
  expect(after, 'cdktf diff after deploy: no changes', after.code === 0 && /No changes/.test(after.output) && !/Plan: /.test(after.output));
  const destroy = cdktf(['destroy', stack, ...flags, '--auto-approve'], env, join(logs, 'destroy.log'));
  const left = stateOf(stackDir);
  expect(destroy, 'cdktf destroy: nothing left in state', destroy.code === 0 && left.length === 0);
  // The provider lock the CLI left: this platform's hashes only (the trade-off of --skip-provider-lock).
  const lock = readFileSync(join(stackDir, '.terraform.lock.hcl'), 'utf8');
  log(`     .terraform.lock.hcl: hashicorp/aws ${/version\s+=\s+"([^"]+)"/.exec(lock)?.[1]}, ${(lock.match(/"h1:/g) ?? []).length} h1 hash(es)`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { stage: { type: 'string', default: 'dev' }, keep: { type: 'boolean', default: false } } });
  const config = loadEnvironments().find((c) => c.stage === values.stage);
  if (!config || config.network.kind !== 'create') {
    // A stage in an existing network needs that network first: verify:terraform builds a stand-in for it.
    console.error(
      `${config ? `stage "${values.stage}" deploys into an existing network` : `no stage "${values.stage}"`}; this check runs a stage that creates its own (dev)\nusage: npm run verify:cdktf [-- --stage <stage>] [--keep]`,
    );
    return 2;
  }
  checkTerraform();
  const stack = stackName(config.stage);
  const scratch = mkdtempSync(join(tmpdir(), 'sluice-cdktf-'));
  const outdir = join(scratch, 'cdktf.out');
  const logs = join(scratch, 'logs');
  mkdirSync(logs);
  const shellEnv = { ...process.env, CHECKPOINT_DISABLE: '1' };
  try {
    const synth = cdktf(['synth', '--output', outdir], shellEnv, join(logs, 'synth.log'));
    expect(synth, 'cdktf synth', synth.code === 0 && existsSync(join(outdir, 'stacks', stack, 'cdk.tf.json')));

    const stackDir = join(outdir, 'stacks', stack);
    const file = join(stackDir, 'cdk.tf.json');
    const json = JSON.parse(readFileSync(file, 'utf8')) as TerraformJson;
    const choice = chooseProvider(pinnedAwsProvider(json), mirrorCandidates(), registryReachable);
    if (choice.note) log(`NOTE: ${choice.note}`);
    if (choice.version !== choice.pinned) {
      (json.terraform.required_providers as Record<string, { version: string }>).aws.version = choice.version;
      writeFileSync(file, JSON.stringify(json, null, 2));
    }
    const moto = await startMoto({
      accountId: config.account.id,
      region: config.account.region,
      log,
      logFile: join(logs, 'moto.log'),
      fargateVcpuQuota: config.capacity.accountVcpuQuota,
    });
    try {
      writeFileSync(
        join(stackDir, 'zz_sluice_override.tf.json'),
        JSON.stringify(emulatorOverride(json, moto.endpoint, { local: 'terraform.tfstate' }), null, 2),
      );
      const env = { ...terraformEnvironment(scratch, choice), CHECKPOINT_DISABLE: '1', PATH: process.env.PATH };
      cycle({ stack, stackDir, outdir, env, logs });
    } finally {
      await moto.stop();
    }
  } finally {
    if (values.keep) log(`scratch kept in ${scratch} (logs in ${logs})`);
    else rmSync(scratch, { recursive: true, force: true });
  }
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`\nverify:cdktf failed: ${error.message}`);
      process.exit(1);
    },
  );
}
