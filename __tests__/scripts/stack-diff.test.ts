import { GITHUB_COMMENT_LIMIT } from '../../scripts/plan-comment';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStacksDirectory } from '../../scripts/diff';
import { DIFF_MARKER, changedAttributes, diffStack, diffSynths, formatDiffMarkdown, formatDiffText } from '../../scripts/stack-diff';
import type { TerraformJson } from '../../synth/output';

const stack = (resource: TerraformJson['resource'], extra: Partial<TerraformJson> = {}): TerraformJson => ({
  terraform: { backend: { s3: { bucket: 'state', key: 'dev.tfstate' } } },
  resource,
  ...extra,
});

const queue = { name: 'sluice-dev-intake', message_retention_seconds: 1209600, '//': { metadata: { path: 'sluice-dev/intake/queue' } } };
const lambda = {
  function_name: 'sluice-dev-dispatcher',
  filename: 'assets/dispatcher/1A2B3C/archive.zip',
  source_code_hash: 'abc=',
  memory_size: 256,
};
const policy = (action: string) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: action, Resource: '*' }] });

const base = stack({
  aws_sqs_queue: { intake: queue },
  aws_lambda_function: { dispatcher: lambda },
  aws_iam_role_policy: { p: { policy: policy('s3:GetObject') } },
});

describe('diffStack', () => {
  test('no change', () => {
    expect(diffStack('sluice-dev', base, structuredClone(base))).toEqual({
      stack: 'sluice-dev',
      status: 'unchanged',
      added: [],
      removed: [],
      moved: [],
      changed: [],
      noiseOnly: [],
    });
  });

  describe('moved blocks', () => {
    // The dispatcher's function under another construct: a new address, and a moved block from the old one.
    const movedHead = (edit: (fn: Record<string, unknown>) => void = () => {}) => {
      const head = structuredClone(base);
      const fn = head.resource!.aws_lambda_function.dispatcher;
      edit(fn);
      head.resource!.aws_lambda_function = { admission_dispatcher: fn };
      head.resource!.aws_iam_role_policy.p.policy = JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '${aws_lambda_function.admission_dispatcher.arn}' }],
      });
      head.moved = [{ from: 'aws_lambda_function.dispatcher', to: 'aws_lambda_function.admission_dispatcher' }];
      return head;
    };
    const referencing = structuredClone(base);
    referencing.resource!.aws_iam_role_policy.p.policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '${aws_lambda_function.dispatcher.arn}' }],
    });

    test('a resource renamed by a moved block is a move, not a removal and an addition; references to it are no change', () => {
      const diff = diffStack('sluice-dev', referencing, movedHead());
      expect(diff).toMatchObject({
        status: 'changed',
        added: [],
        removed: [],
        changed: [],
        moved: [{ from: 'aws_lambda_function.dispatcher', to: 'aws_lambda_function.admission_dispatcher' }],
      });
      expect(formatDiffText([diff], 'main')).toContain(
        'sluice-dev: 0 added, 0 removed, 0 changed, 1 moved\n  > aws_lambda_function.dispatcher → aws_lambda_function.admission_dispatcher',
      );
    });

    test('a moved resource that also changes is listed as changed, by its new address', () => {
      const diff = diffStack(
        'sluice-dev',
        referencing,
        movedHead((fn) => (fn.memory_size = 512)),
      );
      expect(diff.changed).toEqual([{ address: 'aws_lambda_function.admission_dispatcher', attributes: ['memory_size'] }]);
      expect(diff.moved).toHaveLength(1);
    });

    test('a name that only begins with a moved address is not renamed', () => {
      const head = movedHead();
      head.resource!.aws_iam_role_policy.p.policy = JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '${aws_lambda_function.dispatcher_2.arn}' }],
      });
      const before = structuredClone(referencing);
      before.resource!.aws_iam_role_policy.p.policy = head.resource!.aws_iam_role_policy.p.policy;
      expect(diffStack('sluice-dev', before, head).changed).toEqual([]);
    });

    test('a moved block whose old address the base does not have moves nothing: the resource is added', () => {
      const head = movedHead();
      head.moved = [{ from: 'aws_lambda_function.elsewhere', to: 'aws_lambda_function.admission_dispatcher' }];
      expect(diffStack('sluice-dev', base, head)).toMatchObject({
        moved: [],
        added: ['aws_lambda_function.admission_dispatcher'],
        removed: ['aws_lambda_function.dispatcher'],
      });
    });
  });

  test('added and removed resources', () => {
    const head = structuredClone(base);
    delete head.resource!.aws_sqs_queue;
    head.resource!.aws_dynamodb_table = { leases: { name: 'sluice-dev-leases' } };
    const diff = diffStack('sluice-dev', base, head);
    expect(diff.status).toBe('changed');
    expect(diff.added).toEqual(['aws_dynamodb_table.leases']);
    expect(diff.removed).toEqual(['aws_sqs_queue.intake']);
    expect(diff.changed).toEqual([]);
  });

  test('changed attributes, including inside JSON policies, with cdktf metadata ignored', () => {
    const head = structuredClone(base);
    head.resource!.aws_sqs_queue.intake.message_retention_seconds = 345600;
    (head.resource!.aws_sqs_queue.intake['//'] as any).metadata.path = 'elsewhere';
    head.resource!.aws_iam_role_policy.p.policy = policy('s3:PutObject');
    const diff = diffStack('sluice-dev', base, head);
    expect(diff.changed).toEqual([
      { address: 'aws_iam_role_policy.p', attributes: ['policy{Statement.0.Action}'] },
      { address: 'aws_sqs_queue.intake', attributes: ['message_retention_seconds'] },
    ]);
  });

  test('asset hashes and paths are folded as noise', () => {
    const head = structuredClone(base);
    Object.assign(head.resource!.aws_lambda_function.dispatcher, { filename: 'assets/dispatcher/9F8E7D/archive.zip', source_code_hash: 'xyz=' });
    const noisy = diffStack('sluice-dev', base, head);
    expect(noisy).toMatchObject({ status: 'unchanged', changed: [], noiseOnly: ['aws_lambda_function.dispatcher'] });
    head.resource!.aws_lambda_function.dispatcher.memory_size = 512;
    expect(diffStack('sluice-dev', base, head).changed).toEqual([{ address: 'aws_lambda_function.dispatcher', attributes: ['memory_size'] }]);
  });

  test('provider settings and outputs are compared too', () => {
    const withProvider = (tag: string) =>
      stack({}, { provider: { aws: [{ default_tags: [{ tags: { owner: tag } }] }] }, output: { settings: { value: { vcpuBudget: 4 } } } });
    const head = withProvider('data');
    (head.output!.settings.value as any).vcpuBudget = 5;
    expect(diffStack('sluice-dev', withProvider('platform'), head).changed).toEqual([
      { address: 'output.settings', attributes: ['value.vcpuBudget'] },
      { address: 'provider.aws', attributes: ['default_tags.0.tags.owner'] },
    ]);
  });

  test('changedAttributes reports array growth by index', () => {
    expect(changedAttributes({ subnets: ['a'] }, { subnets: ['a', 'b'] }).real).toEqual(['subnets.1']);
  });
});

describe('diffSynths and formatting', () => {
  const head = structuredClone(base);
  head.resource!.aws_sqs_queue.intake.name = 'sluice-dev-jobs';
  const diffs = diffSynths(
    new Map([
      ['sluice-dev', base],
      ['sluice-old', base],
    ]),
    new Map([
      ['sluice-dev', head],
      ['sluice-new', base],
    ]),
  );

  test('whole stacks added and removed', () => {
    expect(diffs.map((d) => [d.stack, d.status])).toEqual([
      ['sluice-dev', 'changed'],
      ['sluice-new', 'added'],
      ['sluice-old', 'removed'],
    ]);
    expect(diffs[1].added).toContain('aws_sqs_queue.intake');
    expect(diffs[2].removed).toContain('aws_sqs_queue.intake');
  });

  test('text', () => {
    const text = formatDiffText(diffs, 'main');
    expect(text).toContain('sluice-dev: 0 added, 0 removed, 1 changed\n  ~ aws_sqs_queue.intake\n      name');
    expect(text).toContain('sluice-new: new stack — 4 added, 0 removed, 0 changed');
  });

  test('markdown has its marker and fits the comment limit, closing an open code block when cut', () => {
    const md = formatDiffMarkdown(diffs, 'main');
    expect(md.startsWith(`${DIFF_MARKER}\n### 🔎 synth diff against \`main\`: 3 stack(s) change`)).toBe(true);
    expect(md).toContain('```diff\n~ aws_sqs_queue.intake\n    name\n```');
    const many = structuredClone(base);
    many.resource!.aws_ssm_parameter = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`parameter_${i}`, { name: `p${i}` }]));
    const cut = formatDiffMarkdown(diffSynths(new Map(), new Map([['sluice-dev', many]])), 'main', GITHUB_COMMENT_LIMIT);
    expect(cut.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
    expect(cut).toMatch(/\n```\n\n… cut to fit GitHub's comment limit/);
    expect((cut.match(/^```/gm) ?? []).length % 2).toBe(0);
  });
});

describe("readStacksDirectory (a pull request's synthesized stacks, read as data by plan-comments.yml)", () => {
  test('reads <stack>/cdk.tf.json for plain stack names only, and refuses a directory with none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-stacks-'));
    try {
      for (const name of ['sluice-dev', 'not a stack!', 'empty']) mkdirSync(join(dir, name));
      writeFileSync(join(dir, 'sluice-dev', 'cdk.tf.json'), JSON.stringify({ terraform: {}, resource: { aws_sqs_queue: { q: { name: 'x' } } } }));
      writeFileSync(join(dir, 'not a stack!', 'cdk.tf.json'), '{}');
      const stacks = readStacksDirectory(dir);
      expect([...stacks.keys()]).toEqual(['sluice-dev']);
      expect(stacks.get('sluice-dev')!.resource!.aws_sqs_queue.q).toEqual({ name: 'x' });
      expect(() => readStacksDirectory(join(dir, 'empty'))).toThrow(/no <stack>\/cdk\.tf\.json under/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
