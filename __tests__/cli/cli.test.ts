import { deadLetterReason, formatFailures, type FailuresReport } from '../../cli/failures';
import { formatFound, parseTarget, type FoundJob } from '../../cli/find';
import { parseDuration, parseNumber } from '../../cli/options';
import { formatChange, isDrained } from '../../cli/pool';
import { formatRouteCap } from '../../cli/route-cap';
import { progressBar } from '../../cli/progress';
import { formatRedrive, skipReason } from '../../cli/redrive';
import { printable, run } from '../../cli/main';
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
    const code = await run(
      argv,
      (t) => out.push(t),
      (t) => err.push(t),
    );
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
    expect(() => parseTarget('s3://only-a-bucket', bucket)).toThrow(
      expect.objectContaining({ exitCode: EXIT.usage, message: '"s3://only-a-bucket" is not s3://<bucket>/<key>' }),
    );
  });

  test('prints each version’s job: status, attempts, times, execution with its console link, task, result, error', () => {
    const jobs: FoundJob[] = [
      {
        jobId: 'a'.repeat(32),
        versionId: 'v2',
        consoleUrl: 'https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:x',
        result: 's3://b/results/incoming/x.csv.json',
        route: 'default',
        taskTime: 'start-up 37.2 s (RunTask → RUNNING; image pull 22.0 s), ran 300.0 s, on FARGATE_SPOT',
        row: {
          jobId: 'a'.repeat(32),
          status: 'succeeded',
          bucket: 'b',
          objectKey: 'incoming/x.csv',
          versionId: 'v2',
          sequencer: '',
          admissions: 2,
          failedRuns: 1,
          executionArn: 'arn:x',
          startedAt: '2026-12-01T10:00:00.000Z',
          finishedAt: '2026-12-01T10:05:00.000Z',
          taskArn: 'arn:task',
        },
      },
      { jobId: 'b'.repeat(32), versionId: 'v1' },
    ];
    expect(formatFound(jobs)).toBe(
      [
        `job ${'a'.repeat(32)} (version v2)`,
        '  status      succeeded',
        '  object      s3://b/incoming/x.csv',
        '  route       default',
        '  attempts    2 admitted, 1 failed runs, 0 returned for capacity',
        '  finishedAt  2026-12-01T10:05:00.000Z',
        '  startedAt   2026-12-01T10:00:00.000Z',
        '  execution   arn:x',
        '              https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:x',
        '  task        arn:task',
        '  task time   start-up 37.2 s (RunTask → RUNNING; image pull 22.0 s), ran 300.0 s, on FARGATE_SPOT',
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
    vcpu: {
      configuredBudget: 100,
      effectiveBudget: 70,
      limitedBy: 'account',
      inUse: 42,
      account: { readAt: '2026-12-01T09:59:00.000Z', classes: { FARGATE: { quotaVcpu: 120, usedVcpu: 92, othersVcpu: 50 } } },
      placed: { FARGATE: 42 },
    },
    launchTokens: { available: 7, burst: 20, ratePerSecond: 10 },
    leases: { batches: 5, jobs: 42 },
    backlog: { waiting: 1200, inFlight: 0, delayed: 3 },
    deadLetters: { intake: 1, rule: 0 },
    runningExecutions: 5,
    failedLastHour: 2,
    startupLastHour: { p50: 35.12, p99: 71.9 },
  };
  expect(formatStatus(status).split('\n')).toEqual([
    'stage            prod at 2026-12-01T10:00:00.000Z',
    'vCPU in use      42 of 70 effective (configured budget 100; limited by the account)',
    'account FARGATE  92 of 120 vCPU quota in use, 50 by other workloads (read 2026-12-01T09:59:00.000Z); this stage holds 42 here now, room for 28 more',
    'launch tokens    7 of 20 (refill 10/s)',
    'leases           42 jobs in 5 batches',
    'backlog          1200 waiting, 0 in flight, 3 delayed',
    'oldest waiting   no datapoint yet',
    'task start-up    p50 35.12 s, p99 71.9 s over the last hour (RunTask → worker running)',
    'dead letters     1 in the intake DLQ, 0 in the rule DLQ',
    'executions       5 running',
    'failed           2 jobs in the last hour (sluice failures --since 1h says why)',
  ]);
});

test('sluice status on a stage with routes: a line per route, its use against its share and cap, and its queue', () => {
  const route = (name: string, fields: object) => ({
    name,
    share: 1,
    sharePercent: 25,
    priority: 0,
    taskVcpu: 1,
    inUseVcpu: 0,
    backlog: { waiting: 0, inFlight: 0, delayed: 0 },
    ...fields,
  });
  const lines = formatStatus({
    stage: 'prod',
    at: '2026-12-01T10:00:00.000Z',
    vcpu: { configuredBudget: 100, effectiveBudget: 100, limitedBy: 'budget', inUse: 100, placed: {} },
    launchTokens: { available: 7, burst: 20, ratePerSecond: 10 },
    leases: { batches: 5, jobs: 100 },
    backlog: { waiting: 1201, inFlight: 0, delayed: 0, oldestSeconds: 640 },
    deadLetters: { intake: 0, rule: 0 },
    runningExecutions: 5,
    failedLastHour: 0,
    routes: [
      route('default', { share: 3, sharePercent: 75, inUseVcpu: 80, backlog: { waiting: 1200, inFlight: 0, delayed: 0, oldestSeconds: 640 } }),
      route('urgent', { priority: 1, maxVcpu: 20, inUseVcpu: 20, backlog: { waiting: 1, inFlight: 0, delayed: 0 } }),
      // An operator's cap from before a deploy made its task larger: it admits nothing, and status says why.
      route('bulk', { taskVcpu: 4, maxVcpu: 2, configuredMaxVcpu: 40, backlog: { waiting: 30, inFlight: 0, delayed: 0 } }),
    ],
  }).split('\n');
  expect(lines).toContain('route default   80 vCPU in use; share 3 (75 %), priority 0; 1200 waiting, 0 in flight, 0 delayed, oldest 640 s');
  expect(lines).toContain('route urgent    20 vCPU in use of its cap 20; share 1 (25 %), priority 1; 1 waiting, 0 in flight, 0 delayed');
  expect(lines).toContain(
    'route bulk      0 vCPU in use of its cap 2 (resized; configured 40) — below one of its 4-vCPU tasks: it takes nothing; share 1 (25 %), priority 0; 30 waiting, 0 in flight, 0 delayed',
  );
});

describe('sluice: options a user types', () => {
  test.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
  ])('duration %s', (text, ms) => expect(parseDuration('--since', text)).toBe(ms));

  test.each(['0m', '24', '1w', '-5m', '1.5h', ''])('duration "%s" is refused with what is allowed', (text) => {
    expect(() => parseDuration('--since', text)).toThrow(
      expect.objectContaining({ exitCode: EXIT.usage, message: `--since takes a duration like 90s, 15m, 24h or 7d (got "${text}")` }),
    );
  });

  test('numbers: within their range, or one clear line', () => {
    expect(parseNumber('--vcpu', '12.5', 0)).toBe(12.5);
    expect(() => parseNumber('--vcpu', 'x', 0)).toThrow('--vcpu takes a number of at least 0 (got "x")');
    expect(() => parseNumber('--examples', '101', 0, 100)).toThrow('--examples takes a number from 0 to 100 (got "101")');
  });

  test.each([
    [['redrive', '--stage', 'dev'], /say what to redrive: --failed .*, --job <id>…, or --dlq/],
    [['redrive', '--stage', 'dev', '--job', 'abc'], /--job takes job ids \(32 hex digits/],
    [['redrive', '--stage', 'dev', '--error', 'X'], /--error goes with --failed/],
    [['failures', '--stage', 'dev', '--since', 'yesterday'], /--since takes a duration/],
    [['resize', '--stage', 'dev'], /required option '--vcpu <n>' not specified/],
    [['resize', '--stage', 'dev', '--vcpu', '-1'], /--vcpu takes a number of at least 0/],
    [['resize', '--stage', 'dev', '--route', 'bulk', '--max-vcpu', '2'], /stage dev has no routes/],
    [['resize', '--stage', 'stg', '--route', 'nope', '--max-vcpu', '2'], /stage stg has no route 'nope' \(its routes: default, urgent, small\)/],
    [['resize', '--stage', 'stg', '--route', 'urgent'], /--route needs --max-vcpu <n\|config>/],
    [['resize', '--stage', 'stg', '--route', 'urgent', '--max-vcpu', 'lots'], /--max-vcpu takes a number of at least 0/],
    [['resize', '--stage', 'stg', '--route', 'urgent', '--max-vcpu', '2', '--vcpu', '3'], /give one or the other/],
    [['resize', '--stage', 'dev', '--vcpu', '3', '--max-vcpu', '2'], /--max-vcpu is a route's cap: give the route with --route <name>/],
    [['drain', '--stage', 'dev', '--timeout', 'soon'], /--timeout takes a duration/],
  ])('%j is refused before any AWS call, exit 2', async (argv, message) => {
    const { code, err } = await runQuietly(...argv);
    expect(code).toBe(EXIT.usage);
    expect(err).toMatch(message);
  });

  test('--help lists the operating commands', async () => {
    const { out } = await runQuietly('--help');
    for (const command of ['failures', 'redrive', 'pause', 'resume', 'resize', 'drain']) expect(out).toMatch(new RegExp(`\\n  ${command} `));
  });
});

describe('sluice failures, redrive, pause and drain: what they print', () => {
  const deadLetters = (queue: string, reasons: FailuresReport['deadLetters']['intake']['reasons'], depth = reasons.reduce((n, r) => n + r.count, 0)) => ({
    queue,
    depth,
    sampled: depth,
    reasons,
  });

  test('failures: a line per error with its count, its newest examples with their cause, then each DLQ by reason', () => {
    const report: FailuresReport = {
      stage: 'prod',
      since: '2026-12-01T09:00:00.000Z',
      failedJobs: 3,
      groups: [
        {
          error: 'States.TaskFailed',
          count: 2,
          examples: [
            {
              jobId: 'a'.repeat(32),
              bucket: 'b',
              objectKey: 'incoming/x.csv',
              error: 'States.TaskFailed',
              finishedAt: '2026-12-01T09:30:00.000Z',
              cause: '{"ExitCode": 65,\n "Reason": "bad input"}',
            },
          ],
        },
        { error: 'ExecutionABORTED', count: 1, examples: [] },
      ],
      deadLetters: { intake: deadLetters('p-intake-dlq', [{ reason: 'body is not JSON', count: 1, example: 'hello' }]), rule: deadLetters('p-rule-dlq', []) },
    };
    expect(formatFailures(report).split('\n')).toEqual([
      '3 failed jobs in prod since 2026-12-01T09:00:00.000Z',
      '',
      '2 × States.TaskFailed',
      `  2026-12-01T09:30:00.000Z  ${'a'.repeat(32)}  s3://b/incoming/x.csv`,
      '    {"ExitCode": 65, "Reason": "bad input"}',
      '',
      '1 × ExecutionABORTED',
      '',
      '1 message in p-intake-dlq',
      '  1 × body is not JSON',
      '    hello',
      '',
      '0 messages in p-rule-dlq',
    ]);
  });

  test.each([
    [{ MessageAttributes: { reason: { DataType: 'String', StringValue: 'body is not JSON' } } }, 'body is not JSON'],
    [{ MessageAttributes: { ERROR_CODE: { DataType: 'String', StringValue: 'NO_PERMISSIONS' } } }, 'EventBridge could not deliver it: NO_PERMISSIONS'],
    [{}, 'received too often without being started (StartExecution kept failing, or the dispatcher kept dying)'],
  ])('a dead letter’s reason: %j', (message, reason) => expect(deadLetterReason(message)).toBe(reason));

  test('redrive: each job and queue, then one summary line; a dry run says it changed nothing', () => {
    const summary = {
      dryRun: true,
      redriven: ['a'.repeat(32)],
      skipped: [{ jobId: 'b'.repeat(32), status: 'succeeded' as const, reason: 'succeeded: only failed jobs are redriven' }],
      deadLetters: { 'p-intake-dlq': 2 },
      poisonLeft: { 'p-intake-dlq': 1 },
    };
    expect(formatRedrive(summary).split('\n')).toEqual([
      `would redrive  ${'a'.repeat(32)}`,
      `skipped  ${'b'.repeat(32)} (succeeded: only failed jobs are redriven)`,
      'would move  2 messages from p-intake-dlq to the intake queue',
      'left  1 poison message in p-intake-dlq (they would come back; --include-poison moves them once their cause is fixed)',
      'dry run: nothing changed; 1 job(s) would redrive, 1 skipped, 2 dead letter(s) to move',
    ]);
    expect(formatRedrive({ ...summary, dryRun: false })).toMatch(/\n1 job\(s\) redriven, 1 skipped, 2 dead letter\(s\) moved$/);
  });

  test('pause and resize show the pool before and after', () => {
    const view = { budgetVcpu: 100, effectiveVcpu: 70, inUseVcpu: 42.5, ratePerSecond: 10, burst: 20 };
    expect(formatChange({ stage: 'prod', before: view, after: { ...view, budgetVcpu: 0, effectiveVcpu: 0, pausedFromVcpu: 100 } }).split('\n')).toEqual([
      'before  budget 100 vCPU (effective 70), 42.5 in use, 10 launches/s, burst 20',
      'after   budget 0 vCPU (effective 0), 42.5 in use, 10 launches/s, burst 20; paused from 100',
    ]);
  });

  test("resize --route shows the route's cap before and after, what it holds over it, and how to go back", () => {
    const lowered = { stage: 'prod', route: 'bulk', before: 40, after: 10, configured: 40, inUseVcpu: 25 };
    expect(formatRouteCap(lowered).split('\n')).toEqual([
      'route bulk: cap 40 vCPU → cap 10 vCPU (configured: cap 40 vCPU), 25 vCPU in use',
      'it holds more than its cap: its running tasks finish, and it takes nothing new until it is under 10 vCPU',
      'the cap stands until: sluice resize --route bulk --max-vcpu config --stage prod',
    ]);
    expect(formatRouteCap({ ...lowered, before: 10, after: 40, inUseVcpu: 5 })).toBe(
      'route bulk: cap 10 vCPU → cap 40 vCPU (configured: cap 40 vCPU), 5 vCPU in use',
    );
    expect(formatRouteCap({ stage: 'prod', route: 'bulk', after: 8, inUseVcpu: 0 })).toMatch(/^route bulk: no cap → cap 8 vCPU \(configured: no cap\)/);
  });

  test('drain: drained only when no vCPU is leased and no execution runs', () => {
    const status = { vcpu: { inUse: 0 }, runningExecutions: 0, leases: { batches: 2, jobs: 4 } } as unknown as StageStatus;
    expect(isDrained(status)).toBe(true); // batch records the janitor has not settled yet hold nothing
    expect(isDrained({ ...status, runningExecutions: 1 })).toBe(false);
    expect(isDrained({ ...status, vcpu: { ...status.vcpu, inUse: 0.25 } })).toBe(false);
  });
});

test('the progress bar draws on a terminal and stays silent in a pipe', () => {
  const written: string[] = [];
  const stream = (isTTY: boolean) => ({ isTTY, write: (chunk: string) => (written.push(chunk), true) }) as unknown as NodeJS.WriteStream;
  const silent = progressBar('redrive', stream(false));
  silent.update(1, 2);
  silent.end();
  expect(written).toEqual([]);
  const bar = progressBar('redrive', stream(true));
  bar.update(1, 2, 'jobs');
  bar.end();
  expect(written).toEqual([`\rredrive [${'#'.repeat(15)}${'.'.repeat(15)}] 1/2 jobs\x1b[K`, '\r\x1b[K']);
});

test('redrive says why it leaves a job: unknown, running or done, or failed with its lease still held', () => {
  const row = { jobId: 'a'.repeat(32), status: 'failed', bucket: 'b', objectKey: 'k', versionId: 'v', sequencer: 's', admissions: 1, failedRuns: 0 } as const;
  const lease = { execution: 'batch1-x', vcpu: 1, admittedAt: 0, expiresAt: 0 };
  expect(skipReason(undefined, true)).toBe('no such job in the ledger');
  expect(skipReason(row, false)).toBeUndefined();
  expect(skipReason({ ...row, lease }, false)).toMatch(/^its lease is still held \(batch batch1-x\); the janitor gives it back within 5 minutes$/);
  expect(skipReason({ ...row, status: 'running', lease }, true)).toBe('running: only failed jobs are redriven');
  expect(skipReason({ ...row, status: 'succeeded' }, true)).toBe('succeeded: only failed jobs are redriven');
  // Named, a queued job without a lease is sent again; one found by --failed never is queued.
  expect(skipReason({ ...row, status: 'queued' }, true)).toBeUndefined();
  expect(skipReason({ ...row, status: 'queued' }, false)).toBe('queued: only failed jobs are redriven');
});

test("an uploader's object key cannot drive the operator's terminal: control characters and bidi overrides print as escapes (review L6)", () => {
  // The security review's key: it would erase the line, print a fake all-clear and hide a link.
  const key = 'incoming/report.csv\x1b[2K\r\x1b[32m0 failed jobs in prod\x1b[0m\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\u202e';
  const shown = printable(`  s3://bucket/${key}\n\tnext line`);
  // eslint-disable-next-line no-control-regex -- control characters are what must be absent
  expect(shown).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
  expect(shown).toBe(
    '  s3://bucket/incoming/report.csv\\u001b[2K\\u000d\\u001b[32m0 failed jobs in prod\\u001b[0m\\u001b]8;;https://evil.example\\u0007click\\u001b]8;;\\u0007\\u202e\n\tnext line',
  );
});

test('every command prints through it, usage errors included', async () => {
  const printed: string[] = [];
  await run(
    ['find', '--stage', 'dev', 'incoming/x\x1b[31m.csv', '--bogus'],
    (t) => printed.push(t),
    (t) => printed.push(t),
  );
  expect(printed.join('\n')).not.toContain('\x1b');
});
