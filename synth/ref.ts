/**
 * Synthesizing another commit: `npm run diff` compares it with the working tree, `npm run verify:moves` applies it on
 * moto before planning the working tree against its state.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSynthesizedStacks, type TerraformJson } from './output';

function run(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): string {
  const result = spawnSync(command, args, { cwd: options.cwd, env: options.env ?? process.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} (in ${options.cwd}) failed with exit ${result.status}:\n${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

/** Synthesizes the checkout at `checkout` into `outdir` with `root`'s tsx. */
export function synthesizeCheckout(root: string, checkout: string, outdir: string): Map<string, TerraformJson> {
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
    return { commit, stacks: synthesizeCheckout(root, checkout, outdir) };
  } finally {
    const removed = spawnSync('git', ['worktree', 'remove', '--force', checkout], { cwd: root, encoding: 'utf8' });
    if (removed.status !== 0 && existsSync(checkout)) {
      console.error(`could not remove the temporary worktree ${checkout}: ${removed.stderr}; run \`git worktree prune\` after deleting it`);
    }
    rmSync(temp, { recursive: true, force: true });
  }
}

/** A git command's output, run in `cwd`. */
export function git(args: readonly string[], cwd: string): string {
  return run('git', args, { cwd });
}
