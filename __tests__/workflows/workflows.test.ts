import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';

type Step = {
  name?: string;
  id?: string;
  if?: string;
  run?: string;
  shell?: string;
  uses?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
};
type Job = {
  steps?: Step[];
  uses?: string;
  with?: Record<string, unknown>;
  outputs?: Record<string, string>;
  needs?: string | string[];
  if?: string;
  environment?: string;
  permissions?: Record<string, string>;
};
const DIR = join(__dirname, '..', '..', '.github', 'workflows');
const workflow = (name: string) => parse(readFileSync(join(DIR, name), 'utf8')) as { on: any; concurrency?: unknown; jobs: Record<string, Job> };
const files = readdirSync(DIR).filter((f) => f.endsWith('.yml'));
const allJobs = files.flatMap((file) => Object.entries(workflow(file).jobs).map(([name, job]) => ({ file, name, job })));

describe('supply chain and credentials (security review H3, M3)', () => {
  test('every action is pinned to a full commit SHA (the only immutable reference), with its tag beside it', () => {
    const uses = allJobs.flatMap(({ file, job }) => (job.steps ?? []).filter((s) => s.uses).map((s) => `${file}: ${s.uses}`));
    expect(uses.length).toBeGreaterThan(20);
    expect(uses.filter((u) => !/: [\w.-]+\/[\w.-]+@[0-9a-f]{40}$/.test(u))).toEqual([]);
    for (const file of files) {
      for (const line of readFileSync(join(DIR, file), 'utf8')
        .split('\n')
        .filter((l) => /uses: [\w.-]+\/[\w.-]+@/.test(l))) {
        expect(line).toMatch(/@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
      }
    }
  });

  test('no job that holds an AWS credential installs packages or checks out code: terraform, or the bundled CLI, on artifacts', () => {
    const withCredentials = allJobs.filter(({ job }) => (job.steps ?? []).some((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials@')));
    expect(withCredentials.map(({ file, name }) => `${file}:${name}`).sort()).toEqual([
      'apply-stage.yml:apply',
      'apply-stage.yml:plan',
      'apply-stage.yml:smoke',
      'drift.yml:drift',
      'pull-request.yml:plan',
    ]);
    for (const { file, name, job } of withCredentials) {
      // The smoke test runs the sluice CLI, bundled in a job without credentials, with node alone.
      const runsTheBundle = `${file}:${name}` === 'apply-stage.yml:smoke';
      for (const step of job.steps!) {
        const where = `${file}:${name}: ${step.name ?? step.uses ?? step.run}`;
        const run = step.run ?? '';
        expect({ where, installs: /\b(npm|npx|tsx|yarn|pnpm)\b/.test(run) }).toEqual({ where, installs: false });
        expect({ where, node: /\bnode\b/.test(run) && !(runsTheBundle && /^node cli\/sluice\.cjs /.test(run)) }).toEqual({ where, node: false });
        expect({ where, checkout: /^actions\/checkout@/.test(step.uses ?? '') }).toEqual({ where, checkout: false });
        if (step.uses?.startsWith('actions/setup-node@')) expect({ where, allowed: runsTheBundle && !step.with?.cache }).toEqual({ where, allowed: true });
      }
    }
  });

  test('no checkout leaves the job token in .git/config for later steps', () => {
    const checkouts = allJobs.flatMap(({ file, name, job }) =>
      (job.steps ?? [])
        .filter((s) => s.uses?.startsWith('actions/checkout@'))
        .map((s) => ({ where: `${file}:${name}`, persist: s.with?.['persist-credentials'] })),
    );
    expect(checkouts.length).toBeGreaterThan(3);
    expect(checkouts.filter((c) => c.persist !== false)).toEqual([]);
  });

  test("the pull request's own run cannot write to the pull request; its comments come from main's code (M2)", () => {
    for (const job of Object.values(workflow('pull-request.yml').jobs)) expect(job.permissions?.['pull-requests']).toBeUndefined();
    const comments = workflow('plan-comments.yml');
    expect(comments.on).toEqual({ workflow_run: { workflows: ['pull request'], types: ['completed'] } });
    // Only pull-request.yml's runs (a pull request can add a workflow of the same name), into main, not cancelled.
    expect(comments.jobs.comment.if).toEqual(expect.stringContaining("github.event.workflow_run.path == '.github/workflows/pull-request.yml'"));
    expect(comments.jobs.comment.if).toEqual(expect.stringContaining("github.event.workflow_run.pull_requests[0].base.ref == 'main'"));
    expect(comments.jobs.comment.if).toEqual(expect.stringContaining("github.event.workflow_run.conclusion != 'cancelled'"));
    const steps = comments.jobs.comment.steps!;
    // No cache shared with the pull request's runs, and the diff's base proven to be main's.
    expect(steps.find((s) => s.uses?.startsWith('actions/setup-node@'))!.with).not.toHaveProperty('cache');
    expect(steps.find((s) => s.run?.includes('--head-stacks'))!.run).toContain('git merge-base --is-ancestor "$BASE_SHA" origin/main');
    // It reads the run's artifacts as data: no step runs anything from them.
    expect(steps.filter((s) => s.run?.includes('artifacts/') && /\b(bash|sh|source|node|tsx|chmod)\s+artifacts\//.test(s.run))).toEqual([]);
    expect(steps.some((s) => s.run?.includes('--head-stacks artifacts/stacks'))).toBe(true);
  });
});

test("a pull request's job without credentials runs every offline check: types, lint (code, Dockerfile, workflows), tests", () => {
  const runs = (workflow('pull-request.yml').jobs.check.steps ?? []).map((s) => s.run);
  expect(runs).toEqual(
    expect.arrayContaining([
      'npm ci --no-audit --no-fund',
      'npm run typecheck',
      'npm run lint',
      'npm run lint:dockerfile',
      'npm test',
      'npm run lint:workflows',
    ]),
  );
  expect((workflow('pull-request.yml').jobs.check.steps ?? []).some((s) => s.uses?.startsWith('aws-actions/'))).toBe(false);
});

test('the files that decide who may deliver, and how, need a code owner’s review', () => {
  const rules = readFileSync(join(DIR, '..', 'CODEOWNERS'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() && !line.startsWith('#'))
    .map((line) => line.split(/\s+/)[0]);
  // environments/ holds the stage configs and the delivery roles' names and trust subjects (environments/ci-roles.ts).
  expect(rules).toEqual(expect.arrayContaining(['/.github/', '/modules/bootstrap.ts', '/environments/']));
});

describe('rollout order', () => {
  test('one rollout at a time, never cancelled half-way', () => {
    expect(workflow('rollout.yml').concurrency).toEqual({ group: 'sluice-rollout', 'cancel-in-progress': false });
  });

  test('each stage ends with its smoke test, after an apply or when nothing was to apply; a failed smoke stops the rollout there', () => {
    const { jobs } = workflow('apply-stage.yml');
    expect(jobs.smoke.needs).toEqual(['synth', 'plan', 'summary', 'apply']);
    expect(jobs.smoke.if).toContain("needs.apply.result == 'success' || needs.apply.result == 'skipped'");
    expect(jobs.smoke.environment).toBeUndefined();
    expect(jobs.smoke.steps!.find((s) => s.name === 'sluice smoke')!.run).toMatch(/^node cli\/sluice\.cjs smoke --stage "\$STAGE"/);
    const rollout = workflow('rollout.yml').jobs;
    expect([rollout.stg.needs, rollout.prod.needs]).toEqual(['dev', 'stg']);
    // Without pipefail (GitHub's default bash -e) the step would take tee's exit code, and a failed smoke would pass.
    expect(jobs.smoke.steps!.find((s) => s.name === 'sluice smoke')!.shell).toBe('bash');
  });

  test('stg and prod deploy only the image digest the stage before ran: checked on the saved plan, before the apply', () => {
    const rollout = workflow('rollout.yml').jobs;
    expect([rollout.dev.with, rollout.stg.with, rollout.prod.with]).toEqual([
      { stage: 'dev' },
      { stage: 'stg', 'promoted-from': 'dev', 'promoted-digest': '${{ needs.dev.outputs.image-digest }}' },
      { stage: 'prod', 'promoted-from': 'stg', 'promoted-digest': '${{ needs.stg.outputs.image-digest }}' },
    ]);
    const stage = workflow('apply-stage.yml');
    // The digest comes from the smoke job's own output (set only once it passed), not from an artifact a re-run could leave behind.
    expect(stage.on.workflow_call.outputs['image-digest'].value).toBe('${{ jobs.smoke.outputs.image-digest }}');
    expect(stage.jobs.smoke.outputs).toEqual({ 'image-digest': '${{ steps.smoke.outputs.image-digest }}' });
    expect(stage.jobs.smoke.steps!.find((s) => s.id === 'smoke')!.run).toMatch(
      /\| tee smoke\.json\necho "image-digest=\$\(jq -r '\.worker\.imageDigest \/\/ ""' smoke\.json\)" >> "\$GITHUB_OUTPUT"/,
    );
    const check = stage.jobs.summary.steps!.find((s) => /scripts\/promotion\.ts/.test(s.run ?? ''))!;
    expect(check.if).toBe("inputs.promoted-from != ''");
    expect(check.env).toEqual({ EXIT_CODE: '${{ needs.plan.outputs.exitcode }}', FROM: '${{ inputs.promoted-from }}', RAN: '${{ inputs.promoted-digest }}' });
    expect(check.run).toContain('npx tsx scripts/promotion.ts --stage "$STAGE" --from "$FROM" --ran "$RAN" "${plan[@]}"');
    // The apply needs the job that checks; the smoke never runs after a failed plan or check.
    expect(stage.jobs.apply.needs).toContain('summary');
    expect(stage.jobs.smoke.if).toContain("needs.summary.result == 'success'");
    expect(stage.jobs.smoke.if).toContain("needs.plan.result == 'success'");
  });

  test("each stage is planned, its plan shown, then applied in the stage's environment: the reviewers approve a plan that exists", () => {
    const { jobs } = workflow('apply-stage.yml');
    expect(jobs.plan.environment).toBeUndefined();
    expect(jobs.summary.needs).toEqual(['synth', 'plan']);
    expect(jobs.apply).toMatchObject({ environment: '${{ inputs.stage }}', needs: ['synth', 'plan', 'summary'], if: "needs.plan.outputs.exitcode == '2'" });
    const plan = jobs.plan.steps!.find((s) => s.id === 'plan')!.run!;
    expect(plan).toMatch(/terraform plan .*-lock=false .*-out=tfplan/);
    const apply = jobs.apply.steps!;
    const guard = apply.findIndex((s) => s.id === 'guard');
    const terraformApply = apply.findIndex((s) => s.run?.includes('terraform apply'));
    expect(guard).toBeGreaterThan(-1);
    expect(terraformApply).toBe(apply.length - 1);
    expect(apply[terraformApply].run).toMatch(/terraform apply -input=false -no-color -lock-timeout=10m tfplan\s*$/);
    expect(apply[terraformApply].run).toContain('-lockfile=readonly');
    // Nothing acts after the guard says no: no credential is even taken.
    for (const step of apply.slice(guard + 1)) expect(step.if).toBe("steps.guard.outputs.current == 'true'");
  });

  test('pull-request plans and the drift check never take the state lock (the plan role cannot write it)', () => {
    const planRun = workflow('pull-request.yml').jobs.plan.steps!.find((s) => s.id === 'plan')!.run!;
    const driftRun = workflow('drift.yml').jobs.drift.steps!.find((s) => s.run?.includes('terraform plan'))!.run!;
    for (const run of [planRun, driftRun]) {
      expect(run).toMatch(/terraform plan .*-lock=false/);
      expect(run).not.toContain('-lock-timeout');
    }
  });
});

/** How GitHub runs a `run:` step on Linux that names no shell: `bash -e {0}` (no pipefail: that is `shell: bash`'s). */
const GITHUB_BASH = ['-e', '-c'];

describe("the apply's guard (its shell, run with a stand-in gh)", () => {
  const guard = workflow('apply-stage.yml').jobs.apply.steps!.find((s) => s.id === 'guard')!.run!;
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-guard-'));
    // gh answers `api repos/<repo>/git/ref/heads/main --jq .object.sha` with main's head (the GitHub CLI on runners).
    writeFileSync(join(dir, 'gh'), '#!/bin/sh\n[ "$*" = "api repos/example-org/sluice/git/ref/heads/main --jq .object.sha" ] || exit 3\necho "$MAIN_HEAD"\n');
    chmodSync(join(dir, 'gh'), 0o755);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (commit: string, head: string) => {
    const output = join(dir, `output-${commit.slice(0, 4)}-${head.slice(0, 4)}`);
    writeFileSync(output, '');
    const printed = execFileSync('bash', [...GITHUB_BASH, guard], {
      env: {
        PATH: `${dir}:${process.env.PATH}`,
        GITHUB_REPOSITORY: 'example-org/sluice',
        GITHUB_SHA: commit,
        GITHUB_OUTPUT: output,
        STAGE: 'dev',
        MAIN_HEAD: head,
      },
      encoding: 'utf8',
    });
    return { output: readFileSync(output, 'utf8'), printed };
  };
  const older = 'a'.repeat(40);
  const newer = 'b'.repeat(40);

  test("main's head is applied", () => {
    expect(run(newer, newer).output).toBe('current=true\n');
  });

  test('an older commit, run late, is skipped with a notice that says why', () => {
    const { output, printed } = run(older, newer);
    expect(output).toBe('current=false\n');
    expect(printed).toContain(`::notice title=sluice-dev not applied::main is at bbbbbbbbbbbb, this run would apply aaaaaaaaaaaa: superseded`);
  });

  test('when GitHub cannot say what main is, the step fails rather than apply', () => {
    expect(() =>
      execFileSync('bash', [...GITHUB_BASH, guard], {
        env: { PATH: `${dir}:${process.env.PATH}`, GITHUB_REPOSITORY: 'other/repo', GITHUB_SHA: newer, GITHUB_OUTPUT: join(dir, 'x'), STAGE: 'dev' },
        stdio: 'pipe',
      }),
    ).toThrow();
  });
});
