import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { decide, remoteHead } from '../../scripts/rollout-guard';

type Step = { name?: string; id?: string; if?: string; run?: string };
const workflow = (name: string) => parse(readFileSync(join(__dirname, '..', '..', '.github', 'workflows', name), 'utf8'));

describe('rollout order', () => {
  test('one rollout at a time, never cancelled half-way', () => {
    expect(workflow('rollout.yml').concurrency).toEqual({ group: 'sluice-rollout', 'cancel-in-progress': false });
  });

  test('each stage applies only if its commit is still main’s head, checked after the plan and right before the apply', () => {
    const steps = workflow('apply-stage.yml').jobs.apply.steps as Step[];
    const plan = steps.findIndex((s) => s.id === 'plan');
    const guard = steps.findIndex((s) => s.id === 'guard');
    const apply = steps.findIndex((s) => s.run?.includes('terraform apply'));
    expect(plan).toBeGreaterThan(-1);
    expect(guard).toBeGreaterThan(plan);
    expect(apply).toBe(guard + 1);
    expect(steps[guard].run).toContain('npm run -s rollout-guard -- --commit "$GITHUB_SHA"');
    expect(steps[apply].if).toContain("steps.guard.outputs.current == 'true'");
  });

  test('pull-request plans and the drift check never take the state lock (the plan role cannot write it)', () => {
    const planRun = (workflow('pull-request.yml').jobs.plan.steps as Step[]).find((s) => s.id === 'plan')!.run!;
    const driftRun = (workflow('drift.yml').jobs.drift.steps as Step[]).find((s) => s.id === 'plan')!.run!;
    for (const run of [planRun, driftRun]) {
      expect(run).toMatch(/terraform plan .*-lock=false/);
      expect(run).not.toContain('-lock-timeout');
    }
  });
});

describe('rollout guard against a real git remote', () => {
  let dir: string;
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_SYSTEM: '/dev/null' } }).trim();
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-guard-'));
    git(dir, 'init', '--bare', '-q', 'remote.git');
    git(dir, 'init', '-q', '-b', 'main', 'work');
    const work = join(dir, 'work');
    git(work, 'config', 'user.email', 't@example.com');
    git(work, 'config', 'user.name', 't');
    git(work, 'remote', 'add', 'origin', join(dir, 'remote.git'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const commit = (message: string) => {
    const work = join(dir, 'work');
    writeFileSync(join(work, 'file.txt'), message);
    git(work, 'add', 'file.txt');
    git(work, 'commit', '-q', '-m', message);
    git(work, 'push', '-q', 'origin', 'main');
    return git(work, 'rev-parse', 'HEAD');
  };

  test('the head is applied; an older commit, run late, is refused', () => {
    const older = commit('first');
    expect(decide(older, remoteHead('origin', 'main', join(dir, 'work')), 'main')).toEqual({ current: true });
    const newer = commit('second');
    const head = remoteHead('origin', 'main', join(dir, 'work'));
    expect(head).toBe(newer);
    expect(decide(newer, head, 'main')).toEqual({ current: true });
    expect(decide(older, head, 'main')).toEqual({
      current: false,
      reason: expect.stringMatching(/^main is at [0-9a-f]{12}, this run would apply [0-9a-f]{12}: superseded/),
    });
  });

  test('an unknown branch is an error, not a pass', () => {
    expect(() => remoteHead('origin', 'no-such-branch', join(dir, 'work'))).toThrow();
  });
});
