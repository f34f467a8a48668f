import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { isDeepStrictEqual } from 'node:util';
import { chooseProvider, cliConfig, mirrorCandidates, pinnedAwsProvider, registryReachable, ScratchStack } from '../synth/terraform';
import { compareFlavours, formatFlavourDifferences, NOT_REWRITTEN, rewriteImports, SOURCE_FILE, variantPackageJson } from './cdk-terrain';
import { readSynthesizedStacks, type TerraformJson } from '../synth/output';

/**
 * npm run check:cdk-terrain                  build the CDK Terrain variant in a scratch copy and prove it equivalent
 * npm run check:cdk-terrain -- --update-lock  re-derive variants/cdk-terrain/package.json and re-lock it
 * (--keep leaves the scratch copy)
 *
 * The check: the variant's package.json must be what scripts/cdk-terrain.ts derives from this one; a scratch copy of
 * the project gets its imports rewritten and `npm ci` from the committed variant lockfile; it type-checks,
 * synthesizes every stage and the bootstrap stacks, and each stack must equal the CDKTF synthesis apart from the
 * AWS provider's version; each variant stack passes `terraform validate`; then the unit suite runs on it.
 */
const ROOT = join(__dirname, '..');
const VARIANT_DIR = join(ROOT, 'variants', 'cdk-terrain');
const log = (line: string) => console.log(line);

function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): void {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd, env, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed with exit ${result.status ?? result.signal}`);
  log(`  ${[command.split('/').pop(), ...args].join(' ')}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** Tracked and new (not ignored) files of the working tree. */
function projectFiles(): string[] {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  return listed.stdout.split('\0').filter((file) => file && existsSync(join(ROOT, file)));
}

function derivedPackageJson(): string {
  return `${JSON.stringify(variantPackageJson(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))), null, 2)}\n`;
}

/** A copy of the project in `dir` with its imports on CDK Terrain; returns how many files changed. */
function copyAsVariant(dir: string): number {
  let rewritten = 0;
  for (const file of projectFiles()) {
    const target = join(dir, file);
    mkdirSync(dirname(target), { recursive: true });
    if (!SOURCE_FILE.test(file) || NOT_REWRITTEN.has(file)) {
      cpSync(join(ROOT, file), target);
      continue;
    }
    const source = readFileSync(join(ROOT, file), 'utf8');
    const variant = rewriteImports(file, source);
    if (variant !== source) rewritten++;
    writeFileSync(target, variant);
  }
  cpSync(join(VARIANT_DIR, 'package.json'), join(dir, 'package.json'));
  cpSync(join(VARIANT_DIR, 'package-lock.json'), join(dir, 'package-lock.json'));
  return rewritten;
}

function synthesize(checkout: string, outdir: string): Map<string, TerraformJson> {
  const tsx = join(checkout, 'node_modules', '.bin', 'tsx');
  const stacks = new Map<string, TerraformJson>();
  for (const [app, out] of [
    ['main.ts', join(outdir, 'stages')],
    ['bootstrap.ts', join(outdir, 'bootstrap')],
  ] as const) {
    mkdirSync(out, { recursive: true });
    run(tsx, ['--disable-warning=DEP0044', app], checkout, { ...process.env, CDKTF_OUTDIR: out, CHECKPOINT_DISABLE: '1' });
    for (const stack of readSynthesizedStacks(out)) stacks.set(stack.name, stack.json);
  }
  return stacks;
}

function validate(outdir: string, scratch: string): void {
  const stages = readSynthesizedStacks(join(outdir, 'stages'));
  const bootstrap = readSynthesizedStacks(join(outdir, 'bootstrap'));
  const choice = chooseProvider(pinnedAwsProvider(stages[0].json), mirrorCandidates(), registryReachable);
  log(
    choice.version === choice.pinned
      ? `=== terraform validate with hashicorp/aws ${choice.version}, the version CDK Terrain pins`
      : `=== terraform validate with hashicorp/aws ${choice.version}: CDK Terrain pins ${choice.pinned}, which is not installable here ` +
          `(no mirror has it, registry.terraform.io unreachable); the scratch copies' constraint is rewritten to ${choice.version}` +
          (choice.version.split('.')[0] !== choice.pinned.split('.')[0]
            ? ` — another major version, so this checks the configuration's structure and the attributes both majors share, not ${choice.pinned}'s own`
            : ''),
  );
  const tfDir = join(scratch, 'terraform');
  mkdirSync(join(tfDir, 'plugin-cache'), { recursive: true });
  writeFileSync(join(tfDir, 'terraform.rc'), cliConfig(choice, join(tfDir, 'plugin-cache')));
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TF_CLI_CONFIG_FILE: join(tfDir, 'terraform.rc'),
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    CHECKPOINT_DISABLE: '1',
  };
  for (const stack of [...stages, ...bootstrap]) {
    const copy = ScratchStack.create(stack.name, dirname(stack.path), tfDir, choice, env, log);
    copy.terraform(['init', '-backend=false', '-input=false', '-no-color'], { quiet: true });
    copy.terraform(['validate', '-no-color']);
  }
}

function updateLock(scratch: string): void {
  mkdirSync(VARIANT_DIR, { recursive: true });
  writeFileSync(join(VARIANT_DIR, 'package.json'), derivedPackageJson());
  cpSync(join(VARIANT_DIR, 'package.json'), join(scratch, 'package.json'));
  // From this project's lockfile: every package the swap leaves alone keeps its locked version.
  cpSync(join(ROOT, 'package-lock.json'), join(scratch, 'package-lock.json'));
  run('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], scratch);
  cpSync(join(scratch, 'package-lock.json'), join(VARIANT_DIR, 'package-lock.json'));
  log(`wrote ${join('variants', 'cdk-terrain', 'package.json')} and package-lock.json: commit both`);
}

function check(scratch: string): void {
  const committed = existsSync(join(VARIANT_DIR, 'package.json')) ? JSON.parse(readFileSync(join(VARIANT_DIR, 'package.json'), 'utf8')) : undefined;
  if (!isDeepStrictEqual(committed, JSON.parse(derivedPackageJson())) || !existsSync(join(VARIANT_DIR, 'package-lock.json'))) {
    throw new Error(
      'variants/cdk-terrain/package.json is not what package.json derives (or its lockfile is missing): run npm run check:cdk-terrain -- --update-lock and commit both',
    );
  }
  const checkout = join(scratch, 'project');
  log(`=== the variant: ${copyAsVariant(checkout)} files with their imports rewritten, in ${checkout}`);
  run('npm', ['ci', '--no-audit', '--no-fund'], checkout);
  run('npm', ['run', '--silent', 'typecheck'], checkout);

  log('=== synthesize every stage and the bootstrap stacks with each flavour');
  // Each under its own checkout, at the same place: the bootstrap's local state path is relative to the project.
  const outdir = join('cdktf.out', 'flavour-check');
  rmSync(join(ROOT, outdir), { recursive: true, force: true });
  const cdktf = synthesize(ROOT, join(ROOT, outdir));
  const cdkTerrain = synthesize(checkout, join(checkout, outdir));
  rmSync(join(ROOT, outdir), { recursive: true, force: true });
  const differences = compareFlavours(cdktf, cdkTerrain);
  log(formatFlavourDifferences(differences));
  if (differences.some((d) => d.unexpected.length > 0))
    throw new Error('the CDK Terrain synthesis differs from the CDKTF one beyond the provider version (above)');

  validate(join(checkout, outdir), scratch);

  log('=== the unit suite on the variant (npm test)');
  run('npm', ['test', '--silent'], checkout);
  log(`=== CDK Terrain variant: ${differences.length} stacks equal to CDKTF's apart from the provider version; type-check, validate and tests pass`);
}

function main(): void {
  const { values } = parseArgs({ options: { 'update-lock': { type: 'boolean', default: false }, keep: { type: 'boolean', default: false } } });
  const scratch = mkdtempSync(join(tmpdir(), 'sluice-cdk-terrain-'));
  try {
    if (values['update-lock']) updateLock(scratch);
    else check(scratch);
  } catch (error) {
    console.error(`check:cdk-terrain: ${(error as Error).message}`);
    process.exitCode = 1;
  } finally {
    if (values.keep) log(`scratch kept: ${scratch}`);
    else rmSync(scratch, { recursive: true, force: true });
  }
}

main();
