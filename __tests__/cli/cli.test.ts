import { formatFound, parseTarget, type FoundJob } from '../../cli/find';
import { run } from '../../cli/main';
import { EXIT, stageNames } from '../../cli/stage';
import { formatStatus, type StageStatus } from '../../cli/status';
import { stageConfig } from '../support/synth';

/** The command's own logic; every command against a real stage runs in __tests__/on-moto (npm run verify:terraform). */
async function runQuietly(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
  try {
    const code = await run(argv, (t) => out.push(t), (t) => err.push(t));
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
}

describe('sluice: usage', () => {
  test('--help lists every command and exits 0', async () => {
    const { code, out } = await runQuietly('--help');
    expect(code).toBe(0);
    expect(out).toMatch(/status \[options\]/);
    expect(out).toMatch(/find \[options\] <target>/);
  });

  test.each([
    [['status', '--stage', 'nope'], /sluice: no stage "nope"; stages: dev, stg, prod/],
    [['status'], /sluice: no --stage given; stages: dev, stg, prod/],
    [['status', '--stage', 'dev', '--watch', '0'], /--watch takes seconds, at least 1 \(got 0\)/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['find', '--stage', 'dev'], /missing required argument 'target'/],
  ])('%j is a usage error: one clear line, exit 2, and nothing sent to AWS', async (argv, message) => {
    const { code, err } = await runQuietly(...argv);
    expect(code).toBe(EXIT.usage);
    expect(err).toMatch(message);
  });
});

describe('sluice find: what it is asked for', () => {
  const bucket = stageNames(stageConfig('dev')).bucket;
  test.each([
    ['0123456789abcdef0123456789abcdef', { kind: 'job', jobId: '0123456789abcdef0123456789abcdef' }],
    ['s3://other-bucket/incoming/a b.csv', { kind: 'object', bucket: 'other-bucket', key: 'incoming/a b.csv' }],
    ['incoming/report.csv', { kind: 'object', bucket, key: 'incoming/report.csv' }],
  ])('%s', (target, expected) => {
    expect(parseTarget(target, bucket)).toEqual(expected);
  });

  test('a malformed s3:// URL is a usage error', () => {
    expect(() => parseTarget('s3://only-a-bucket', bucket)).toThrow(expect.objectContaining({ exitCode: EXIT.usage, message: '"s3://only-a-bucket" is not s3://<bucket>/<key>' }));
  });

  test('prints each version’s job: status, attempts, times, execution with its console link, task, result, error', () => {
    const jobs: FoundJob[] = [
      {
        jobId: 'a'.repeat(32),
        versionId: 'v2',
        consoleUrl: 'https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:x',
        result: 's3://b/results/incoming/x.csv.json',
        row: { jobId: 'a'.repeat(32), status: 'succeeded', bucket: 'b', objectKey: 'incoming/x.csv', versionId: 'v2', sequencer: '', admissions: 2, failedRuns: 1, executionArn: 'arn:x', startedAt: '2026-12-01T10:00:00.000Z', finishedAt: '2026-12-01T10:05:00.000Z', taskArn: 'arn:task' },
      },
      { jobId: 'b'.repeat(32), versionId: 'v1' },
    ];
    expect(formatFound(jobs)).toBe(
      [
        `job ${'a'.repeat(32)} (version v2)`,
        '  status      succeeded',
        '  object      s3://b/incoming/x.csv',
        '  attempts    2 admitted, 1 failed runs, 0 returned for capacity',
        '  finishedAt  2026-12-01T10:05:00.000Z',
        '  startedAt   2026-12-01T10:00:00.000Z',
        '  execution   arn:x',
        '              https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:x',
        '  task        arn:task',
        '  result      s3://b/results/incoming/x.csv.json',
        '',
        `job ${'b'.repeat(32)} (version v1)`,
        '  no ledger row: this version was never seen by the pipeline (outside the input prefix, or its event is still on the way)',
      ].join('\n'),
    );
  });
});

test('sluice status prints one aligned line per question', () => {
  const status: StageStatus = {
    stage: 'prod',
    at: '2026-12-01T10:00:00.000Z',
    vcpu: { configuredBudget: 100, effectiveBudget: 70, limitedBy: 'account', inUse: 42, account: { readAt: '2026-12-01T09:59:00.000Z', classes: { FARGATE: { quotaVcpu: 120, usedVcpu: 92, othersVcpu: 50 } } } },
    launchTokens: { available: 7, burst: 20, ratePerSecond: 10 },
    leases: { batches: 5, jobs: 42 },
    backlog: { waiting: 1200, inFlight: 0, delayed: 3 },
    deadLetters: { intake: 1, rule: 0 },
    runningExecutions: 5,
  };
  expect(formatStatus(status).split('\n')).toEqual([
    'stage            prod at 2026-12-01T10:00:00.000Z',
    'vCPU in use      42 of 70 effective (configured budget 100; limited by the account)',
    'account FARGATE  92 of 120 vCPU quota in use, 50 by other workloads (read 2026-12-01T09:59:00.000Z)',
    'launch tokens    7 of 20 (refill 10/s)',
    'leases           42 jobs in 5 batches',
    'backlog          1200 waiting, 0 in flight, 3 delayed',
    'oldest waiting   no datapoint yet',
    'dead letters     1 in the intake DLQ, 0 in the rule DLQ',
    'executions       5 running',
  ]);
});
