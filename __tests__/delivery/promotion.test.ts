/**
 * The rollout's promotion check (scripts/promotion.ts): a stage applies only the image digest the stage before it ran
 * and passed its smoke test with, as that smoke report recorded it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SmokeReport } from '../../cli/smoke';
import type { EnvironmentConfig } from '../../environments';
import { checkPromotion } from '../../scripts/promotion';
import { stageConfig } from '../support/synth';

const RAN = `sha256:${'a'.repeat(64)}`;
const stg: EnvironmentConfig = { ...stageConfig('stg'), image: { repository: 'sluice-worker', digest: RAN } };
const passed: SmokeReport = {
  stage: 'dev',
  object: 's3://sluice-dev-111111111111-eu-west-1/incoming/_sluice-smoke/x.jsonl',
  jobId: 'j',
  outcome: 'passed',
  worker: { taskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/sluice-dev/abc', image: 'sluice-dev-worker:2026-12-07.1', imageDigest: RAN },
  hops: [],
  checks: [],
  exitCode: 0,
};

test('the digest dev ran and passed with: promoted', () => {
  expect(checkPromotion(stg, 'dev', passed)).toEqual({ ok: true, digest: RAN });
});

test.each<[string, EnvironmentConfig, SmokeReport, RegExp]>([
  [
    'another digest',
    { ...stg, image: { repository: 'sluice-worker', digest: `sha256:${'b'.repeat(64)}` } },
    passed,
    /runs sluice-worker@sha256:b+, but dev ran and passed sha256:a+ .*set image\.digest = 'sha256:a+'/,
  ],
  [
    'an image by tag',
    { ...stg, image: { repository: 'sluice-worker', tag: 'latest' } },
    passed,
    /names its image by tag \(sluice-worker:latest\); a promoted stage names the digest that ran in dev/,
  ],
  ['a failed smoke test', stg, { ...passed, outcome: 'failed', exitCode: 1 }, /dev's smoke test failed/],
  ['a smoke test that timed out', stg, { ...passed, outcome: 'timed-out', exitCode: 4 }, /dev's smoke test timed-out/],
  ["another stage's report", stg, { ...passed, stage: 'qa' }, /the smoke report given is qa's, not dev's/],
  ['no digest recorded', stg, { ...passed, worker: { taskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/sluice-dev/abc' } }, /recorded no image digest/],
])('refused: %s', (_what, config, report, reason) => {
  const result = checkPromotion(config, 'dev', report);
  expect(result.ok).toBe(false);
  expect(!result.ok && result.reason).toMatch(/^stg is not promoted from dev: /);
  expect(!result.ok && result.reason).toMatch(reason);
});

describe('the command the rollout runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-promotion-'));
  const run = (...args: string[]) =>
    spawnSync(join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx'), ['scripts/promotion.ts', ...args], { encoding: 'utf8' });

  test('the shipped stg names a placeholder digest, not the one dev ran: exit 1, saying what to set', () => {
    const file = join(dir, 'smoke.json');
    writeFileSync(file, JSON.stringify(passed));
    const result = run('--stage', 'stg', '--from', 'dev', '--smoke', file);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/stg is not promoted from dev: .*set image\.digest = 'sha256:a+'/);
  });

  test.each([
    [['--stage', 'stg', '--from', 'dev'], /usage: /],
    [['--stage', 'nope', '--from', 'dev', '--smoke', 'x.json'], /no stage "nope"/],
    [['--stage', 'stg', '--from', 'dev', '--smoke', '/nonexistent/smoke.json'], /cannot read the smoke report \/nonexistent\/smoke.json/],
  ])('bad arguments %j: exit 2 with why', (args, message) => {
    const result = run(...args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  test('a file that is not a smoke report: exit 2', () => {
    const file = join(dir, 'not-a-report.json');
    writeFileSync(file, '{"hello": 1}');
    const result = run('--stage', 'stg', '--from', 'dev', '--smoke', file);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/is not a sluice smoke --json report/);
  });
});
