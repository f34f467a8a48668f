import { GITHUB_COMMENT_LIMIT, commentMarker, formatPlanComment, parsePlanCounts, planStatus, truncatePlan } from '../../scripts/plan-comment';

const planned = `
Terraform used the selected providers to generate the following execution plan.

  # aws_sqs_queue.intake will be created
  + resource "aws_sqs_queue" "intake" {
      + name = "sluice-dev-intake"
    }

Plan: 2 to add, 1 to change, 0 to destroy.
`;

describe('parsing a plan', () => {
  test.each([
    ['Plan: 2 to add, 1 to change, 0 to destroy.', { import: 0, add: 2, change: 1, destroy: 0 }],
    ['Plan: 1 to import, 0 to add, 0 to change, 3 to destroy.', { import: 1, add: 0, change: 0, destroy: 3 }],
    ['\u001b[1mPlan:\u001b[0m 4 to add, 0 to change, 0 to destroy.', { import: 0, add: 4, change: 0, destroy: 0 }],
    ['No changes. Your infrastructure matches the configuration.', { import: 0, add: 0, change: 0, destroy: 0 }],
    ['Error: No valid credential sources found', undefined],
  ])('%j', (text, counts) => {
    expect(parsePlanCounts(text)).toEqual(counts);
  });

  test('status from -detailed-exitcode, and from the text when exit 0 hides changes', () => {
    expect(planStatus(2, planned)).toBe('planned');
    expect(planStatus(0, 'No changes.')).toBe('no-changes');
    expect(planStatus(0, planned)).toBe('planned');
    expect(planStatus(1, planned)).toBe('error');
    expect(planStatus(0, undefined)).toBe('error');
  });
});

describe('the comment', () => {
  test('planned: marker, heading with counts, the plan folded', () => {
    const body = formatPlanComment({ stage: 'dev', planText: planned, exitCode: 2, commit: 'abcdef0123456789', runUrl: 'https://example/run/1' });
    const lines = body.split('\n');
    expect(lines[0]).toBe('<!-- sluice-plan:dev -->');
    expect(lines[1]).toBe('### 📝 sluice-dev: planned — 2 to add, 1 to change, 0 to destroy');
    expect(body).toContain('commit `abcdef012345` · [workflow run](https://example/run/1)');
    expect(body).toMatch(/<details><summary>Full plan \(\d+ lines\)<\/summary>\n\n```text\n/);
    expect(body).toContain('+ resource "aws_sqs_queue" "intake"');
    expect(body.endsWith('```\n\n</details>')).toBe(true);
    expect(body).not.toContain('[!WARNING]');
  });

  test('no changes', () => {
    expect(formatPlanComment({ stage: 'stg', planText: 'No changes. Your infrastructure matches the configuration.', exitCode: 0 }).split('\n')[1]).toBe(
      '### ✅ sluice-stg: no changes',
    );
  });

  test('destroys are called out', () => {
    const body = formatPlanComment({ stage: 'prod', planText: 'Plan: 0 to add, 0 to change, 2 to destroy.', exitCode: 2 });
    expect(body).toContain('> [!WARNING]\n> 2 resource(s) will be destroyed.');
  });

  test('a failing plan still posts its output', () => {
    const failed = 'Initializing the backend...\n\nError: error configuring S3 Backend: no valid credential sources';
    const body = formatPlanComment({ stage: 'dev', planText: failed, exitCode: 1 });
    expect(body.split('\n')[1]).toBe('### ❌ sluice-dev: error — `terraform plan exited 1`');
    expect(body).toContain('Error: error configuring S3 Backend');
  });

  test('a job that never reached terraform says so', () => {
    const body = formatPlanComment({ stage: 'dev', planText: undefined, exitCode: 1 });
    expect(body.split('\n')[1]).toBe('### ❌ sluice-dev: error — `terraform init/plan did not run`');
    expect(body).toContain('No plan output');
  });

  test('drift reports use their own marker and words', () => {
    expect(commentMarker('prod', 'drift')).toBe('<!-- sluice-drift:prod -->');
    const body = formatPlanComment({ stage: 'prod', planText: planned, exitCode: 2, kind: 'drift' });
    expect(body.split('\n').slice(0, 2)).toEqual(['<!-- sluice-drift:prod -->', '### ⚠️ sluice-prod: drift — 2 to add, 1 to change, 0 to destroy']);
    expect(formatPlanComment({ stage: 'prod', planText: 'No changes.', exitCode: 0, kind: 'drift' })).toContain('### ✅ sluice-prod: no drift');
  });

  test('backticks in the plan cannot close the code block', () => {
    const body = formatPlanComment({ stage: 'dev', planText: 'description = "use ```code```"\nPlan: 1 to add, 0 to change, 0 to destroy.', exitCode: 2 });
    expect(body).toContain('````text\n');
    expect(body.endsWith('````\n\n</details>')).toBe(true);
  });
});

describe('fitting GitHub’s 65,536-character limit', () => {
  const resource = (i: number) =>
    `  # aws_ssm_parameter.p${i} will be created\n  + resource "aws_ssm_parameter" "p${i}" {\n      + value = "${'x'.repeat(80)}"\n    }\n`;
  const huge = `Terraform will perform the following actions:\n\n${Array.from({ length: 2000 }, (_, i) => resource(i)).join('\n')}\nPlan: 2000 to add, 0 to change, 0 to destroy.\n\nNote: You didn't use the -out option.`;

  test('a huge plan is cut to fit, keeping the head and the summary, saying how much was cut and where the rest is', () => {
    expect(huge.length).toBeGreaterThan(GITHUB_COMMENT_LIMIT * 3);
    const body = formatPlanComment({ stage: 'dev', planText: huge, exitCode: 2, artifact: 'plan-dev', runUrl: 'https://example/run/1' });
    expect(body.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
    expect(body.length).toBeGreaterThan(GITHUB_COMMENT_LIMIT - 1000); // uses the room it has
    expect(body.split('\n')[1]).toBe('### 📝 sluice-dev: planned — 2000 to add, 0 to change, 0 to destroy');
    expect(body).toContain('Terraform will perform the following actions:');
    expect(body).toContain('# aws_ssm_parameter.p0 will be created');
    expect(body).toMatch(/… [\d,]+ characters \([\d,]+ lines\) cut to fit GitHub's comment limit; the full plan is in this run's artifact `plan-dev`/);
    expect(body).toContain("Plan: 2000 to add, 0 to change, 0 to destroy.\n\nNote: You didn't use the -out option.\n```\n\n</details>");
    expect(body).not.toContain('aws_ssm_parameter.p1999');
  });

  test('the cut count is exact', () => {
    const text = `${'a'.repeat(5000)}\nPlan: 1 to add, 0 to change, 0 to destroy.`;
    const cut = truncatePlan(text, 1000);
    const reported = Number(/… ([\d,]+) characters/.exec(cut)![1].replace(/,/g, ''));
    const [head] = cut.split('\n\n…');
    expect(head.length + reported + 'Plan: 1 to add, 0 to change, 0 to destroy.'.length + 1).toBe(text.length + 1);
    expect(cut.length).toBeLessThanOrEqual(1000);
    expect(cut.endsWith('Plan: 1 to add, 0 to change, 0 to destroy.')).toBe(true);
  });

  test('an error at the end of a huge output is kept', () => {
    const text = `${'refreshing…\n'.repeat(20000)}Error: creating ECS Cluster: AccessDenied`;
    const body = formatPlanComment({ stage: 'stg', planText: text, exitCode: 1 });
    expect(body.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
    expect(body).toContain('Error: creating ECS Cluster: AccessDenied');
  });

  test('a text that fits is left alone', () => {
    expect(truncatePlan('short', 100)).toBe('short');
  });
});
