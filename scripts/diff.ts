import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { TerraformJson } from '../synth/output';
import { git, synthesizeCheckout, synthesizeRef } from '../synth/ref';
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
  const root = git(['rev-parse', '--show-toplevel'], process.cwd()).trim();
  const temp = mkdtempSync(join(tmpdir(), 'sluice-diff-'));
  let output: string;
  try {
    const { commit, stacks: base } = synthesizeRef(root, values.base, join(temp, 'out-base'));
    const head = values['head-stacks'] ? readStacksDirectory(values['head-stacks']) : synthesizeCheckout(root, root, join(temp, 'out-head'));
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
