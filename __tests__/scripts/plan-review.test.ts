/**
 * The plan review (scripts/plan-review.ts) on real plans: __tests__/scripts/plans/ holds what `terraform show -json`
 * printed for four changes to the dev stage applied on moto (npm run verify:plan-fixtures writes them again).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatPlanComment, GITHUB_COMMENT_LIMIT } from '../../scripts/plan-comment';
import { reviewPlan, type PlanJson } from '../../scripts/plan-review';

const plan = (name: string) => JSON.parse(readFileSync(join(__dirname, 'plans', `${name}.json`), 'utf8')) as PlanJson;
const changeAt = (review: ReturnType<typeof reviewPlan>, pattern: RegExp) => {
  const found = review.changes.filter((c) => pattern.test(c.address));
  expect(found).toHaveLength(1);
  return found[0];
};

test('the fixtures are there (npm run verify:plan-fixtures writes them)', () => {
  for (const name of ['image-bump', 'capacity', 'iam', 'destroy']) expect(existsSync(join(__dirname, 'plans', `${name}.json`))).toBe(true);
});

describe('an image release', () => {
  const review = reviewPlan(plan('image-bump'));

  test('replaces the task definition, keeping the old revision: a replacement, not a destroy', () => {
    const taskDefinition = changeAt(review, /^aws_ecs_task_definition\./);
    expect(taskDefinition.verb).toBe('replace');
    expect(taskDefinition.why.join(' ')).toMatch(/container_definitions cannot change in place/);
    expect(taskDefinition.why.join(' ')).toMatch(/old one stays registered \(skip_destroy\)/);
    expect(taskDefinition.destructive).toBe(false);
    expect(taskDefinition.changes.join('\n')).toMatch(/container_definitions.*image.*2026-12-07\.1/);
    expect(review.changes.filter((c) => c.destructive)).toEqual([]);
    expect(review.counts.delete).toBe(0);
  });

  test('the comment raises no destroy alarm, and names what changes', () => {
    const body = formatPlanComment({ stage: 'dev', planText: 'Plan: 1 to add, 1 to change, 1 to destroy.', exitCode: 2, planJson: plan('image-bump') });
    expect(body).not.toContain('[!WARNING]');
    expect(body).toMatch(/### 📝 sluice-dev: planned — 0 to create, \d+ to update, 1 to replace, 0 to destroy/);
    expect(body.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
  });
});

describe('a capacity change', () => {
  const review = reviewPlan(plan('capacity'));

  test('runs the pool seed again, with the new budget, and says so', () => {
    const seed = changeAt(review, /^aws_lambda_invocation\./);
    expect(seed.verb).toBe('replace');
    expect(seed.why.join(' ')).toMatch(/seeded from the new configuration/);
    expect(seed.changes.join('\n')).toMatch(/^input\.budgetVcpu: 4 → 5$/m);
    expect(seed.destructive).toBe(false);
  });
});

describe('an IAM change', () => {
  const review = reviewPlan(plan('iam'));

  test("the task role's policy, statement by statement: only the statements that change, and what in them", () => {
    const policy = changeAt(review, /^aws_iam_role_policy\.compute_task-policy/);
    expect(policy.verb).toBe('update');
    const lines = policy.changes.join('\n');
    expect(lines).toMatch(/policy: statement ReadInput\.Resource: .*incoming\/\*.* → .*uploads\/\*/);
    expect(lines).not.toMatch(/statement ReadAndWriteResults/);
  });
});

describe('a real destroy', () => {
  const review = reviewPlan(plan('destroy'));

  test('is the only kind that raises the warning', () => {
    const destructive = review.changes.filter((c) => c.destructive);
    expect(destructive.map((c) => c.type).sort()).toEqual(expect.arrayContaining(['aws_subnet']));
    expect(destructive.every((c) => c.verb === 'delete' || c.verb === 'replace')).toBe(true);
    const body = formatPlanComment({ stage: 'dev', planText: 'Plan: 0 to add, 3 to change, 2 to destroy.', exitCode: 2, planJson: plan('destroy') });
    expect(body).toMatch(/\[!WARNING\]\n> \d+ change\(s\) delete data or running work: .*delete aws&#95;subnet\./);
  });
});
