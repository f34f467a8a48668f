/**
 * The plan review's rules, each on the smallest plan that shows it (the real plans are plan-review.test.ts'): verbs,
 * unknown and sensitive values, imports, what a hostile key cannot do to the comment, and its size limit.
 */
import { formatPlanComment, GITHUB_COMMENT_LIMIT } from '../../scripts/plan-comment';
import { formatReview, reviewPlan, verbOf } from '../../scripts/plan-review';

test('every action Terraform writes has a verb; an unknown one is an error, and the comment falls back to the text', () => {
  expect([['create'], ['update'], ['delete'], ['read'], ['forget'], ['no-op'], ['delete', 'create'], ['create', 'delete']].map(verbOf)).toEqual([
    'create',
    'update',
    'delete',
    'read',
    'forget',
    'no-op',
    'replace',
    'replace',
  ]);
  expect(() => verbOf(['create', 'create'])).toThrow(/unknown plan actions/);
  const odd = { resource_changes: [{ address: 'a.b', mode: 'managed' as const, type: 'a', change: { actions: ['transmogrify'] } }] };
  const body = formatPlanComment({ stage: 'dev', planText: 'Plan: 1 to add, 0 to change, 0 to destroy.', exitCode: 2, planJson: odd });
  expect(body).toContain('### 📝 sluice-dev: planned — 1 to add, 0 to change, 0 to destroy');
});

/** One resource change, as `terraform show -json` writes it. */
const one = (change: Record<string, unknown>, address = 'aws_x.y', type = 'aws_x') => ({
  resource_changes: [{ address, mode: 'managed' as const, type, change: { actions: ['update'], ...change } }],
});

test('a nested value known only after apply is said so, not shown as removed', () => {
  const review = reviewPlan(
    one({ before: { settings: { arn: 'old', keep: 1 } }, after: { settings: { arn: null, keep: 1 } }, after_unknown: { settings: { arn: true } } }),
  );
  expect(review.changes[0].changes).toEqual(['settings.arn: old → (known after apply)']);
});

test('sensitive values are never printed, in attributes or outputs', () => {
  const review = reviewPlan({
    ...one({
      before: { password: 'hunter2', name: 'a' },
      after: { password: 'hunter3', name: 'b' },
      before_sensitive: { password: true },
      after_sensitive: { password: true },
    }),
    output_changes: { token: { actions: ['update'], before: 'secret-1', after: 'secret-2', before_sensitive: true, after_sensitive: true } },
  });
  expect(review.changes[0].changes).toEqual(['name: a → b', 'password: (sensitive value changes)']);
  expect(review.outputs).toEqual(['token: (sensitive)']);
  expect(JSON.stringify(review)).not.toMatch(/hunter|secret-/);
});

test('imports and forgotten resources are counted and named', () => {
  const review = reviewPlan({
    resource_changes: [
      { address: 'aws_x.imported', mode: 'managed', type: 'aws_x', change: { actions: ['no-op'], importing: { id: 'x' } } },
      { address: 'aws_x.kept', mode: 'managed', type: 'aws_x', change: { actions: ['forget'] } },
    ],
  });
  expect(review.counts).toMatchObject({ import: 1, forget: 1 });
  expect(review.changes.map((c) => [c.verb, c.why[0]])).toEqual([
    ['import', 'imported into the state'],
    ['forget', 'removed from the state only: it stays in AWS (a removed block)'],
  ]);
});

test('nothing a plan carries can write Markdown or HTML into the comment (a pull request chooses keys and values)', () => {
  const hostile = 'aws_x.y["<!-- x -->`</details>[click](https://evil.example) @org/team\r\n| row |"]';
  const review = reviewPlan(one({ actions: ['delete'], before: { name: hostile } }, hostile));
  const body = formatPlanComment({
    stage: 'dev',
    planText: 'Plan: 0 to add, 0 to change, 1 to destroy.',
    exitCode: 2,
    planJson: { resource_changes: review.changes.length ? one({ actions: ['delete'] }, hostile).resource_changes : [] },
  });
  // Everything between the comment's own marker and the folded plan text (in a fence of its own) is Markdown a reviewer reads.
  const rendered = body.split('\n').slice(1).join('\n').split('<details>')[0];
  expect(rendered).not.toMatch(/<!--|<\/details>|\]\(|@org|`<|\r/);
  expect(formatReview(review, 10_000)).not.toMatch(/<!--|\]\(|@org|\| row \|/);
});

test('a review that does not fit says how many changes it left out, and the comment stays under the limit', () => {
  const many = {
    resource_changes: Array.from({ length: 3000 }, (_, i) => ({
      address: `aws_x.resource_${i}`,
      mode: 'managed' as const,
      type: 'aws_x',
      change: { actions: ['create'], after: { name: `n${i}` } },
    })),
  };
  const body = formatPlanComment({
    stage: 'dev',
    planText: 'x\n'.repeat(50_000) + 'Plan: 3000 to add, 0 to change, 0 to destroy.',
    exitCode: 2,
    planJson: many,
  });
  expect(body.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
  expect(body).toMatch(/… \d+ more change\(s\) did not fit: see the full plan\./);
});

test('the state machine definition is diffed state by state', () => {
  const definition = (wait: number, extra = false) =>
    JSON.stringify({
      StartAt: 'A',
      States: {
        A: {
          Type: 'Map',
          ItemProcessor: { StartAt: 'B', States: { B: { Type: 'Wait', Seconds: wait, End: true } } },
          End: !extra,
          ...(extra ? { Next: 'C' } : {}),
        },
        ...(extra ? { C: { Type: 'Succeed' } } : {}),
      },
    });
  const review = reviewPlan({
    resource_changes: [
      {
        address: 'aws_sfn_state_machine.pipeline',
        mode: 'managed',
        type: 'aws_sfn_state_machine',
        change: { actions: ['update'], before: { definition: definition(1) }, after: { definition: definition(2, true) }, after_unknown: {} },
      },
    ],
  });
  expect(review.changes[0].changes).toEqual([
    'definition: state A.End: true → false',
    'definition: state A.Next: (none) → C',
    'definition: state A/B.Seconds: 1 → 2',
    'definition: + state C (Succeed)',
  ]);
});

test('a caution (the pull request changes its own workflows) is said under the heading, as text', () => {
  const body = formatPlanComment({ stage: 'dev', planText: 'No changes.', exitCode: 0, caution: 'changes its own workflows <b>' });
  expect(body.split('\n').slice(2, 5).join('\n')).toBe('\n> [!CAUTION]\n> changes its own workflows &#60;b&#62;');
});
