import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readSynthesizedStacks, type TerraformJson } from './synth-output';
import { diffSynths, formatDiffMarkdown, formatDiffText } from './stack-diff';

/**
 * npm run diff -- --base <git ref> [--head-stacks <dir>] [--format text|markdown] [--out <file>]
 *
 * Synthesizes <ref> (in a temporary git worktree that borrows this checkout's node_modules, so it runs
 * offline) and the working tree, then prints per stage the resources added, removed and changed. No
 * credentials, no state. The worktree is removed even when a synth fails.
 *
 * --head-stacks: compare with stacks synthesized elsewhere (`<dir>/<stack>/cdk.tf.json`, as in cdktf.out/stacks)
 * instead of the working tree: how plan-comments.yml diffs a pull request's synth with main's code, reading the
 * pull request's output as data only.
 */

function run(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): string {
  const result = spawnSync(command, args, { cwd: options.cwd, env: options.env ?? process.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} (in ${options.cwd}) failed with exit ${result.status}:\n${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

function synth(root: string, checkout: string, outdir: string): Map<string, TerraformJson> {
  run(join(root, 'node_modules', '.bin', 'tsx'), ['main.ts'], {
    cwd: checkout,
    env: { ...process.env, CDKTF_OUTDIR: outdir, CHECKPOINT_DISABLE: '1' },
  });
  return new Map(readSynthesizedStacks(outdir).map((stack) => [stack.name, stack.json]));
}

/**
 * Synthesizes git `ref` into `outdir` (stacks with their assets, as cdktf writes them), in a temporary worktree that
 * borrows this checkout's node_modules; the worktree is removed even when the synth fails.
 */
export function synthesizeRef(root: string, ref: string, outdir: string): { commit: string; stacks: Map<string, TerraformJson> } {
  const commit = run('git', ['rev-parse', '--verify', `${ref}^{commit}`], { cwd: root }).trim();
  const temp = mkdtempSync(join(tmpdir(), 'sluice-ref-'));
  const checkout = join(temp, 'checkout');
  try {
    run('git', ['worktree', 'add', '--detach', '--quiet', checkout, commit], { cwd: root });
    symlinkSync(join(root, 'node_modules'), join(checkout, 'node_modules'), 'dir');
    if (!existsSync(join(checkout, 'main.ts'))) throw new Error(`${ref} has no main.ts to synthesize`);
    return { commit, stacks: synth(root, checkout, outdir) };
  } finally {
    const removed = spawnSync('git', ['worktree', 'remove', '--force', checkout], { cwd: root, encoding: 'utf8' });
    if (removed.status !== 0 && existsSync(checkout)) {
      console.error(`could not remove the temporary worktree ${checkout}: ${removed.stderr}; run \`git worktree prune\` after deleting it`);
    }
    rmSync(temp, { recursive: true, force: true });
  }
}

/** Stacks synthesized elsewhere, read as data: only `<dir>/<name>/cdk.tf.json` with a plain stack name. */
export function readStacksDirectory(dir: string): Map<string, TerraformJson> {
  const stacks = new Map<string, TerraformJson>();
  for (const name of readdirSync(dir).sort()) {
    const file = join(dir, name, 'cdk.tf.json');
    if (!/^[A-Za-z0-9-]{1,64}$/.test(name) || !existsSync(file)) continue;
    stacks.set(name, JSON.parse(readFileSync(file, 'utf8')) as TerraformJson);
  }
  if (stacks.size === 0) throw new Error(`no <stack>/cdk.tf.json under ${dir}`);
  return stacks;
}

function main(): void {
  const { values } = parseArgs({
    options: { base: { type: 'string' }, 'head-stacks': { type: 'string' }, format: { type: 'string', default: 'text' }, out: { type: 'string' } },
  });
  if (!values.base || (values.format !== 'text' && values.format !== 'markdown')) {
    console.error('usage: npm run diff -- --base <git ref> [--head-stacks <dir>] [--format text|markdown] [--out <file>]');
    process.exit(64);
  }
  const root = run('git', ['rev-parse', '--show-toplevel'], { cwd: process.cwd() }).trim();
  const temp = mkdtempSync(join(tmpdir(), 'sluice-diff-'));
  let output: string;
  try {
    const { commit, stacks: base } = synthesizeRef(root, values.base, join(temp, 'out-base'));
    const head = values['head-stacks'] ? readStacksDirectory(values['head-stacks']) : synth(root, root, join(temp, 'out-head'));
    const diffs = diffSynths(base, head);
    const label = `${values.base} (${commit.slice(0, 12)})`;
    output = values.format === 'markdown' ? formatDiffMarkdown(diffs, label) : formatDiffText(diffs, label);
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
  if (values.out) writeFileSync(values.out, `${output}\n`);
  else console.log(output);
}

if (require.main === module) main();
