/**
 * The rollout's promotion check (scripts/promotion.ts): a stage deploys a worker image only if the stage before it ran
 * it and passed its smoke test. Read from real plans of the dev stage on moto (__tests__/scripts/plans/), as stg's
 * would be: an image release, a budget change, and a revision that keeps its image.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvironmentConfig } from '../../environments';
import type { PlanJson } from '../../scripts/plan-review';
import { checkPromotion } from '../../scripts/promotion';
import { stageConfig } from '../support/synth';

const plan = (name: string) => JSON.parse(readFileSync(join(__dirname, 'plans', `${name}.json`), 'utf8')) as PlanJson;
const RAN = `sha256:${'a'.repeat(64)}`;
const OTHER = `sha256:${'b'.repeat(64)}`;
const stg: EnvironmentConfig = stageConfig('stg');

/** The image-bump plan with the worker image of each side replaced: before → after. */
function imageChange(before: string, after: string): PlanJson {
  const original = plan('image-bump');
  const withImage = (side: unknown, image: string) => {
    const resource = side as { container_definitions: string };
    const containers = (JSON.parse(resource.container_definitions) as Array<{ name: string; image: string }>).map((c) =>
      c.name === 'worker' ? { ...c, image } : c,
    );
    return { ...resource, container_definitions: JSON.stringify(containers) };
  };
  return {
    ...original,
    resource_changes: original.resource_changes!.map((r) =>
      r.type === 'aws_ecs_task_definition'
        ? { ...r, change: { ...r.change, before: withImage(r.change.before, before), after: withImage(r.change.after, after) } }
        : r,
    ),
  };
}
const repo = '111111111111.dkr.ecr.eu-west-1.amazonaws.com/sluice-worker';

test('a plan that deploys the digest dev ran and passed: promoted', () => {
  expect(checkPromotion({ config: stg, from: 'dev', ran: RAN, plan: imageChange(`${repo}@${OTHER}`, `${repo}@${RAN}`) })).toEqual({
    ok: true,
    why: `the plan deploys ${RAN}, which ran and passed in dev`,
  });
});

test.each<[string, () => PlanJson | undefined]>([
  ['no changes planned', () => undefined],
  ['a budget change (no new task definition)', () => plan('capacity')],
  ['a new revision that keeps its image (a size change)', () => imageChange(`${repo}@${OTHER}`, `${repo}@${OTHER}`)],
])('not a promotion, whatever dev ran: %s', (_what, planned) => {
  expect(checkPromotion({ config: stg, from: 'dev', ran: RAN, plan: planned() }).ok).toBe(true);
  expect(checkPromotion({ config: stg, from: 'dev', ran: '', plan: planned() }).ok).toBe(true);
});

test.each<[string, PlanJson, string, RegExp]>([
  [
    'another digest than dev ran',
    imageChange(`${repo}@${RAN}`, `${repo}@${OTHER}`),
    RAN,
    /the plan deploys sha256:b+, but dev ran and passed sha256:a+: set image\.digest = 'sha256:a+' in environments\/stg\.ts/,
  ],
  [
    'an image by tag (the real image release plan)',
    plan('image-bump'),
    RAN,
    /deploys 111111111111\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/sluice-dev-worker:2026-12-07\.1, an image by tag/,
  ],
  ["dev's smoke recorded no digest", imageChange(`${repo}@${OTHER}`, `${repo}@${RAN}`), '', /dev's smoke test recorded no image digest/],
])('refused: %s', (_what, planned, ran, reason) => {
  const result = checkPromotion({ config: stg, from: 'dev', ran, plan: planned });
  expect(result.ok).toBe(false);
  expect(!result.ok && result.reason).toMatch(/^stg is not promoted from dev: /);
  expect(!result.ok && result.reason).toMatch(reason);
});

describe('the command the rollout runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-promotion-'));
  const run = (...args: string[]) =>
    spawnSync(join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx'), ['scripts/promotion.ts', ...args], { encoding: 'utf8' });

  test('refused: exit 1, saying which digest to set', () => {
    const file = join(dir, 'plan.json');
    writeFileSync(file, JSON.stringify(imageChange(`${repo}@${RAN}`, `${repo}@${OTHER}`)));
    const result = run('--stage', 'stg', '--from', 'dev', '--ran', RAN, '--plan-json', file);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/set image\.digest = 'sha256:a+'/);
  });

  test('no plan (nothing changes): exit 0, saying why', () => {
    const result = run('--stage', 'stg', '--from', 'dev', '--ran', '');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/stg: promoted from dev: no changes planned/);
  });

  test.each([
    [['--stage', 'stg', '--from', 'dev'], /usage: /],
    [['--stage', 'stg', '--from', 'dev', '--ran', 'latest'], /--ran takes an image digest/],
    [['--stage', 'nope', '--from', 'dev', '--ran', RAN], /no stage "nope"/],
    [['--stage', 'stg', '--from', 'dev', '--ran', RAN, '--plan-json', '/nonexistent/plan.json'], /cannot read the plan \/nonexistent\/plan\.json/],
  ])('bad arguments %j: exit 2 with why', (args, message) => {
    const result = run(...args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});

test("a route's own task definition is checked like the stage's: an image of its own that no smoke test in dev ran is refused", () => {
  const stageRelease = imageChange(`${repo}@${OTHER}`, `${repo}@${RAN}`);
  const stageRevision = stageRelease.resource_changes!.find((r) => r.type === 'aws_ecs_task_definition')!;
  const routeRevision = (image: string) => {
    const { before, after } = imageChange(`${repo}@sha256:${'c'.repeat(64)}`, image).resource_changes!.find(
      (r) => r.type === 'aws_ecs_task_definition',
    )!.change;
    const family = (side: unknown) => ({ ...(side as object), family: 'sluice-stg-worker-urgent' });
    return {
      ...stageRevision,
      address: 'aws_ecs_task_definition.compute_task-definition-urgent',
      change: { ...stageRevision.change, before: family(before), after: family(after) },
    };
  };
  const withRoute = (image: string): PlanJson => ({ ...stageRelease, resource_changes: [...stageRelease.resource_changes!, routeRevision(image)] });
  // The route runs the stage's image: both revisions deploy what dev ran.
  expect(checkPromotion({ config: stg, from: 'dev', ran: RAN, plan: withRoute(`${repo}@${RAN}`) })).toEqual({
    ok: true,
    why: `the plan deploys ${RAN}, which ran and passed in dev`,
  });
  // The route's own image, by digest or by tag: refused, naming the route's family.
  expect(checkPromotion({ config: stg, from: 'dev', ran: RAN, plan: withRoute(`${repo}@${OTHER}`) })).toMatchObject({
    ok: false,
    reason: expect.stringMatching(/^stg is not promoted from dev: sluice-stg-worker-urgent: the plan deploys sha256:b+, but dev ran and passed sha256:a+/),
  });
  expect(checkPromotion({ config: stg, from: 'dev', ran: RAN, plan: withRoute(`${repo}:urgent-1`) })).toMatchObject({
    ok: false,
    reason: expect.stringMatching(/sluice-stg-worker-urgent: the plan deploys .*:urgent-1, an image by tag/),
  });
});

test("on a new stage (its repository new, so no image is known until applied) a route's own configured image is the one checked", () => {
  const stageRevision = plan('image-bump').resource_changes!.find((r) => r.type === 'aws_ecs_task_definition')!;
  const unknownImage = (family: string) => ({
    ...stageRevision,
    address: `aws_ecs_task_definition.${family}`,
    change: { ...stageRevision.change, actions: ['create'], before: null, after: { family }, after_unknown: { container_definitions: true } },
  });
  const newStage = { ...plan('image-bump'), resource_changes: [unknownImage('sluice-stg-worker'), unknownImage('sluice-stg-worker-urgent')] } as PlanJson;
  const withUrgentImage = (image: { tag?: string; digest?: string }): EnvironmentConfig => ({
    ...stg,
    image: { repository: stg.image.repository, digest: RAN },
    routes: stg.routes!.map((r) => (r.name === 'urgent' ? { ...r, task: { ...r.task!, image } } : r)),
  });
  expect(checkPromotion({ config: withUrgentImage({ tag: 'urgent-untested' }), from: 'dev', ran: RAN, plan: newStage })).toMatchObject({
    ok: false,
    reason: expect.stringMatching(/sluice-stg-worker-urgent: the plan deploys .*:urgent-untested, an image by tag/),
  });
  expect(checkPromotion({ config: withUrgentImage({ digest: RAN }), from: 'dev', ran: RAN, plan: newStage }).ok).toBe(true);
});
