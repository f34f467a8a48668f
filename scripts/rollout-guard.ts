import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/**
 * A rollout applies only the commit at the head of main. GitHub runs queued workflow runs in no guaranteed order
 * ("Ordering is not guaranteed for jobs or workflow runs using concurrency groups"), so an older commit's rollout
 * could otherwise apply after a newer one and roll it back. Run just before `terraform apply`:
 *   npm run -s rollout-guard -- --commit <sha> [--remote origin] [--branch main]
 * Prints `current=true|false` (to $GITHUB_OUTPUT when set); a superseded commit is skipped, not failed: the newer
 * commit's own rollout applies everything up to it.
 */
type GuardDecision = { readonly current: true } | { readonly current: false; readonly reason: string };

export function decide(commit: string, head: string, branch: string): GuardDecision {
  if (commit === head) return { current: true };
  return {
    current: false,
    reason: `${branch} is at ${head.slice(0, 12)}, this run would apply ${commit.slice(0, 12)}: superseded, not applied (the newer commit's rollout applies it)`,
  };
}

/** The branch's head on the remote, asked now (not the checkout's possibly stale copy). */
export function remoteHead(remote: string, branch: string, cwd = process.cwd()): string {
  const out = execFileSync('git', ['ls-remote', '--exit-code', remote, `refs/heads/${branch}`], { cwd, encoding: 'utf8' });
  const sha = out.trim().split(/\s+/)[0];
  if (!/^[0-9a-f]{40}$/.test(sha ?? '')) throw new Error(`git ls-remote ${remote} refs/heads/${branch} printed no commit: ${JSON.stringify(out)}`);
  return sha;
}

function main(): void {
  const usage = 'usage: npm run -s rollout-guard -- --commit <40-hex sha> [--remote origin] [--branch main]';
  let values: { commit?: string; remote?: string; branch?: string };
  try {
    ({ values } = parseArgs({
      options: { commit: { type: 'string' }, remote: { type: 'string', default: 'origin' }, branch: { type: 'string', default: 'main' } },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (!values.commit || !/^[0-9a-f]{40}$/.test(values.commit)) {
    console.error(`--commit must be a full commit sha (got ${JSON.stringify(values.commit)})\n${usage}`);
    process.exit(2);
  }
  const decision = decide(values.commit, remoteHead(values.remote!, values.branch!), values.branch!);
  const line = `current=${decision.current}`;
  if (process.env.GITHUB_OUTPUT) appendFileSync(process.env.GITHUB_OUTPUT, `${line}\n`);
  console.log(decision.current ? `${line}: ${values.commit.slice(0, 12)} is the head of ${values.branch}` : `${line}: ${decision.reason}`);
  if (!decision.current && process.env.GITHUB_ACTIONS) console.log(`::notice title=rollout skipped::${decision.reason}`);
}

if (require.main === module) main();
