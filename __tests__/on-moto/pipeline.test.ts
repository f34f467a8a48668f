import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, GetQueueUrlCommand, PurgeQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { configurePool } from '../../functions/configure-pool';
import { runDispatcher } from '../../functions/dispatcher';
import { readBatchRecord } from '../../functions/batches';
import { readCapacity, usageMetric } from '../../functions/capacity';
import {
  capacitySettingsFromEnv,
  configurePoolSettingsFromEnv,
  dispatcherSettingsFromEnv,
  finisherSettingsFromEnv,
  janitorSettingsFromEnv,
} from '../../functions/environment';
import { runJanitor } from '../../functions/janitor';
import { jobIdOf } from '../../functions/jobs';
import { readLedgerRow } from '../../functions/ledger';
import { inUseVcpu, readPool } from '../../functions/limiter';
import { ownByRoute, routesOf } from '../../functions/routes';
import { finishTask, parseFinishEvent } from '../../functions/finish-task';
import { systemClock } from '../../functions/runtime';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backfill, formatBackfill } from '../../cli/backfill';
import { formatFailures, queryFailedJobs, readFailures } from '../../cli/failures';
import { findJobs, formatFound, parseTarget } from '../../cli/find';
import { drain, formatChange, formatDrain, pause, resize, resume } from '../../cli/pool';
import { formatRouteCap, resizeRoute } from '../../cli/route-cap';
import { progressBar } from '../../cli/progress';
import { formatRedrive, redrive } from '../../cli/redrive';
import { EXIT, stageClients, stageConfig, stageNames } from '../../cli/stage';
import { formatStatus, readStatus } from '../../cli/status';
import { loadEnvironments } from '../../environments';
import { TEST_CREDENTIALS } from '../../verify/moto';
import { appliedStage, clientConfig, functionEnvironment } from './applied-stage';

/**
 * The real configure-pool, dispatcher and janitor code, with the environment the applied functions have (from
 * Terraform state), against the stage applied on moto: its queues, table, state machine and bucket.
 * moto runs no Lambda code without Docker and leaves executions RUNNING (its interpreter is off), so the
 * handlers are called here, as Lambda would call them, and an execution is ended by StopExecution.
 */
const stage = appliedStage();
const config = clientConfig(stage);
const s3 = new S3Client({ ...config, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
const sqs = new SQSClient(config);
const sfn = new SFNClient(config);
const lambda = new LambdaClient(config);
const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(config));
const quotas = new ServiceQuotasClient(config);
const cloudwatch = new CloudWatchClient(config);
const dispatcher = dispatcherSettingsFromEnv(functionEnvironment(stage, 'dispatcher'));
const janitor = janitorSettingsFromEnv(functionEnvironment(stage, 'janitor'));
const bucket = String(stage.outputs.bucket_name);

afterAll(async () => {
  for (const url of [dispatcher.queueUrl, dispatcher.deadLetterQueueUrl]) await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
  for (const client of [s3, sqs, sfn, lambda, ddb, quotas, cloudwatch]) client.destroy();
});

const quiet = () => undefined;
const dispatch = () => runDispatcher({ sqs, sfn, ddb, clock: systemClock, settings: dispatcher, log: quiet });
/** A janitor run after the stop grace: an ended execution's tasks have stopped, so its leases can go back. */
const afterStopGrace = { ...systemClock, now: () => systemClock.now() + janitor.stopGraceMs + 1000 };

async function visible(queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
}

async function waitForVisible(queueUrl: string, count: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await visible(queueUrl)) < count) {
    if (Date.now() > deadline) throw new Error(`${queueUrl} has ${await visible(queueUrl)} messages, expected ${count}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const keys = ['incoming/pipeline-1.csv', 'incoming/pipeline-2.csv', 'incoming/pipeline-3.csv'];
const versions = new Map<string, string>();
let admitted: Array<{ key: string; jobId: string; versionId: string; vcpu: number; capacityProvider?: string; route?: string }> = [];

test('configure-pool seeds the limiter with the applied seed input', async () => {
  expect(stage.seed).toBeDefined();
  await configurePool(ddb, { settings: configurePoolSettingsFromEnv(functionEnvironment(stage, 'configure-pool')), input: stage.seed!.input, now: Date.now() });
  const pool = await readPool(ddb, dispatcher.tableName);
  expect(pool).toMatchObject({ ...(stage.seed!.input as object), admittedVcpu: 0, releasedVcpu: 0 });
});

test("the capacity reader measures what the account leaves: the quota (Service Quotas) minus others' use (AWS/Usage)", async () => {
  const settings = capacitySettingsFromEnv(functionEnvironment(stage, 'capacity'));
  // Other workloads run 2 vCPU in each class the stage uses; AWS publishes it to AWS/Usage (here, the test does).
  const minuteAgo = new Date(Date.now() - 90_000);
  for (const capacityClass of Object.keys(settings.weights) as Array<keyof typeof settings.weights>) {
    const metric = usageMetric(capacityClass);
    await cloudwatch.send(
      new PutMetricDataCommand({
        Namespace: metric.Namespace,
        MetricData: [{ MetricName: metric.MetricName, Dimensions: metric.Dimensions, Timestamp: minuteAgo, Value: 2 }],
      }),
    );
  }
  const view = await readCapacity({ quotas, cloudwatch, ddb, clock: systemClock, settings, log: quiet });
  // Each class the stage places tasks in leaves quota − 2, and each batch goes where there is room: the stage may
  // hold what the classes leave in all.
  const classes = Object.values(settings.weights).filter((w) => (w ?? 0) > 0).length;
  const expected = classes * (stage.fargateVcpuQuota - 2);
  expect(view.freeVcpu).toBe(expected);
  expect((await readPool(ddb, dispatcher.tableName)).account).toMatchObject({ freeVcpu: expected });
});

test('uploads are admitted under the budget: ledger rows, leases and one execution for the batch', async () => {
  for (const key of keys) {
    const { VersionId } = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `${key}\n` }));
    versions.set(key, VersionId!);
  }
  await waitForVisible(dispatcher.queueUrl, keys.length);
  const summary = await dispatch();
  expect(summary).toMatchObject({ admitted: 3, executionsStarted: 1, poison: 0, duplicates: 0 });

  const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn: dispatcher.stateMachineArn }));
  expect(executions).toHaveLength(1);
  const described = await sfn.send(new DescribeExecutionCommand({ executionArn: executions[0].executionArn }));
  expect(described.status).toBe('RUNNING');
  const input = JSON.parse(described.input!) as { jobs: typeof admitted };
  expect(input.jobs.map((j) => j.key).sort()).toEqual(keys);
  admitted = input.jobs;

  const pool = await readPool(ddb, dispatcher.tableName);
  expect(inUseVcpu(pool)).toBe(3 * dispatcher.taskVcpu);
  // The batch is placed in one of the stage's classes, and counted there.
  const placed = input.jobs[0].capacityProvider!;
  expect(
    Object.entries(dispatcher.capacityWeights)
      .filter(([, weight]) => weight! > 0)
      .map(([name]) => name),
  ).toContain(placed);
  expect(input.jobs.map((j) => j.capacityProvider)).toEqual([placed, placed, placed]);
  expect(pool.admittedByClass).toEqual({ [placed]: 3 * dispatcher.taskVcpu });
  expect(await readBatchRecord(ddb, dispatcher.batchesTableName, executions[0].name!)).toMatchObject({
    jobs: expect.arrayContaining(
      input.jobs.map((j) =>
        expect.objectContaining({ jobId: j.jobId, vcpu: dispatcher.taskVcpu, capacityProvider: placed, ...(dispatcher.routes ? { route: j.route } : {}) }),
      ),
    ),
  });
  for (const job of input.jobs) {
    const row = await readLedgerRow(ddb, dispatcher.tableName, job.jobId);
    expect(job.jobId).toBe(jobIdOf(bucket, job.key, versions.get(job.key)!, row!.sequencer));
    expect(row).toMatchObject({
      status: 'running',
      executionName: executions[0].name,
      admissions: 1,
      lease: { execution: executions[0].name, vcpu: dispatcher.taskVcpu, capacityProvider: placed },
    });
  }
  expect(await visible(dispatcher.queueUrl)).toBe(0);
});

test('poison goes to the DLQ with its reason; a redelivered upload starts nothing', async () => {
  const [first] = keys;
  const row = await readLedgerRow(ddb, dispatcher.tableName, admitted.find((j) => j.key === first)!.jobId);
  const redelivered = {
    version: '0',
    source: 'aws.s3',
    'detail-type': 'Object Created',
    detail: { bucket: { name: bucket }, object: { key: first, 'version-id': versions.get(first), sequencer: row!.sequencer } },
  };
  await sqs.send(new SendMessageCommand({ QueueUrl: dispatcher.queueUrl, MessageBody: JSON.stringify(redelivered) }));
  await sqs.send(new SendMessageCommand({ QueueUrl: dispatcher.queueUrl, MessageBody: 'not json at all' }));
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: dispatcher.queueUrl,
      MessageBody: JSON.stringify({ ...redelivered, detail: { ...redelivered.detail, bucket: { name: 'someone-elses-bucket' } } }),
    }),
  );

  const summary = await dispatch();
  expect(summary).toMatchObject({ admitted: 0, executionsStarted: 0, poison: 2, duplicates: 1 });
  const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn: dispatcher.stateMachineArn }));
  expect(executions).toHaveLength(1);

  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: dispatcher.deadLetterQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2, MessageAttributeNames: ['All'] }),
  );
  expect(Messages.map((m) => m.MessageAttributes?.reason?.StringValue).sort()).toEqual([
    'body is not JSON',
    `bucket "someone-elses-bucket" is not this pipeline's bucket "${bucket}"`,
  ]);
  expect(await visible(dispatcher.queueUrl)).toBe(0);
});

test('an aborted execution: the janitor gives its leases back and puts its unfinished jobs back on the queue', async () => {
  const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn: dispatcher.stateMachineArn }));
  await sfn.send(new StopExecutionCommand({ executionArn: executions[0].executionArn, cause: 'verify: the execution dies' }));
  const ended = { detail: { executionArn: executions[0].executionArn, status: 'ABORTED' } };
  // Right after the abort its tasks may still be stopping (ECS stops them after the execution ends): leases held.
  const early = await runJanitor({ sfn, sqs, lambda, ddb, clock: systemClock, settings: janitor, log: quiet }, ended);
  expect(early).toMatchObject({ settled: 0, released: 0, requeued: 0, stillRunning: 3 });
  expect(inUseVcpu(await readPool(ddb, dispatcher.tableName))).toBeGreaterThan(0);
  const summary = await runJanitor({ sfn, sqs, lambda, ddb, clock: afterStopGrace, settings: janitor, log: quiet }, ended);
  expect(summary).toMatchObject({ settled: 1, released: 3, sweptLeases: 0, requeued: 3, failed: 0, stillRunning: 0, drift: 0 });
  expect(inUseVcpu(await readPool(ddb, dispatcher.tableName))).toBe(0);
  expect(await readBatchRecord(ddb, dispatcher.batchesTableName, executions[0].name!)).toBeUndefined();
  await waitForVisible(dispatcher.queueUrl, 3);
  const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dispatcher.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  expect(
    Messages.map((m) => JSON.parse(m.Body!))
      .map((b) => [b.sluice, b.key, b.round, b.failedRuns])
      .sort(),
  ).toEqual(keys.map((k) => ['requeue', k, 1, 1]));
});

/** With SLUICE_CLI_EXAMPLES set to a file, the commands' real output is appended there (the README's examples). */
function example(command: string, output: string): void {
  if (process.env.SLUICE_CLI_EXAMPLES) appendFileSync(process.env.SLUICE_CLI_EXAMPLES, `${command}\n${output}\n\n`);
}

describe('the sluice command against the applied stage', () => {
  const stageConfigOf = () => stageConfig(stage.stage);
  const cliClients = () => ({ ...stageClients(stageConfigOf(), config), cloudwatch });

  test('status: the pool, the queues and the executions, as DynamoDB, SQS and Step Functions tell them', async () => {
    const status = await readStatus(cliClients(), stageConfigOf(), Date.now());
    const pool = await readPool(ddb, dispatcher.tableName);
    const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn: dispatcher.stateMachineArn, statusFilter: 'RUNNING' }));
    expect(status).toMatchObject({
      stage: stage.stage,
      vcpu: { configuredBudget: pool.budgetVcpu, inUse: inUseVcpu(pool), account: { classes: pool.account!.classes } },
      launchTokens: { burst: pool.burst, ratePerSecond: pool.ratePerSecond },
      backlog: { waiting: await visible(dispatcher.queueUrl) },
      runningExecutions: executions.length,
    });
    expect(formatStatus(status)).toMatch(new RegExp(`^stage +${stage.stage} at `));
    example(`$ npx sluice status --stage ${stage.stage}`, formatStatus(status));
  });

  test('find: an object’s jobs by key and by s3:// URL, one job by id; an unknown object is exit 3', async () => {
    const key = keys[0];
    const jobId = admitted.find((j) => j.key === key)!.jobId;
    const row = await readLedgerRow(ddb, dispatcher.tableName, jobId);
    for (const target of [key, `s3://${bucket}/${key}`, jobId]) {
      const [found, ...more] = await findJobs(cliClients(), stageConfigOf(), parseTarget(target, bucket));
      expect(more).toEqual([]);
      expect(found).toMatchObject({ jobId, versionId: versions.get(key), row: { status: row!.status, admissions: row!.admissions } });
      // On a stage with routes, the route its key belongs to.
      expect(found.route).toBe(dispatcher.routes?.find((r) => key.startsWith(r.inputPrefix))?.name);
      if (target === key) example(`$ npx sluice find ${key} --stage ${stage.stage}`, formatFound([found]));
    }
    await expect(findJobs(cliClients(), stageConfigOf(), parseTarget('incoming/never-uploaded.csv', bucket))).rejects.toMatchObject({
      exitCode: EXIT.notFound,
    });
  });

  test('a stage that is not deployed here is one clear error, for every command', async () => {
    const absent = { ...stageConfigOf(), namePrefix: 'sluice-absent' };
    const clients = { ...stageClients(absent, config), cloudwatch };
    const notDeployed = (what: string) => ({
      message: `stage ${stage.stage} is not deployed in account ${stage.accountId} (${stage.region}): no ${what}`,
      exitCode: EXIT.failed,
    });
    const since = Date.now() - 3_600_000;
    await expect(readStatus(clients, absent, Date.now())).rejects.toMatchObject(notDeployed('table sluice-absent-state'));
    await expect(readFailures(clients, absent, { since, examples: 1 }, Date.now())).rejects.toMatchObject(notDeployed('table sluice-absent-state'));
    await expect(
      redrive(
        clients,
        absent,
        { failedSince: since, jobIds: [], deadLetters: false, dryRun: true },
        { update: () => undefined, end: () => undefined },
        Date.now(),
      ),
    ).rejects.toMatchObject(notDeployed('table sluice-absent-state'));
    await expect(
      redrive(clients, absent, { jobIds: [], deadLetters: true, dryRun: true }, { update: () => undefined, end: () => undefined }, Date.now()),
    ).rejects.toMatchObject(notDeployed('queue sluice-absent-intake'));
    for (const change of [pause, resume]) await expect(change(clients, absent, Date.now())).rejects.toMatchObject(notDeployed('table sluice-absent-state'));
    await expect(resize(clients, absent, { vcpu: 1 }, Date.now())).rejects.toMatchObject(notDeployed('table sluice-absent-state'));
  });

  const silent = { update: () => undefined, end: () => undefined };
  const failureKeys = ['incoming/fails-1.csv', 'incoming/fails-2.csv'];
  let failedIds: string[] = [];

  /** Stops every running execution and lets the janitor settle them (with `attempts`, its jobs fail or return). */
  async function endRunningExecutions(maxExecutionAttempts = janitor.maxExecutionAttempts) {
    const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn: dispatcher.stateMachineArn, statusFilter: 'RUNNING' }));
    for (const e of executions) await sfn.send(new StopExecutionCommand({ executionArn: e.executionArn, cause: 'verify: the execution dies' }));
    return runJanitor({ sfn, sqs, lambda, ddb, clock: afterStopGrace, settings: { ...janitor, maxExecutionAttempts }, log: quiet });
  }

  test('failures: jobs the janitor failed, from the failed-by-day index, grouped by error with their cause', async () => {
    for (const key of failureKeys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `${key}\n` }));
    await waitForVisible(dispatcher.queueUrl, failureKeys.length);
    expect((await dispatch()).admitted).toBeGreaterThanOrEqual(failureKeys.length);
    // Their execution dies, and with one attempt allowed the janitor fails them: the real writers of a failed row.
    const summary = await endRunningExecutions(1);
    expect(summary.jobsFailed).toBeGreaterThanOrEqual(failureKeys.length);
    // Read as of the janitor's clock, which wrote the failures (after the stop grace).
    const since = afterStopGrace.now() - 3_600_000;
    const failed = await queryFailedJobs(cliClients(), stageConfigOf(), since, afterStopGrace.now());
    failedIds = failed.filter((j) => failureKeys.includes(j.objectKey)).map((j) => j.jobId);
    expect(failedIds).toHaveLength(failureKeys.length);
    expect(failed).toHaveLength(summary.jobsFailed);

    const report = await readFailures(cliClients(), stageConfigOf(), { since, examples: 5 }, afterStopGrace.now());
    expect(report.failedJobs).toBe(summary.jobsFailed);
    expect(report.groups).toEqual([
      {
        error: 'ExecutionABORTED',
        count: summary.jobsFailed,
        examples: expect.arrayContaining(failedIds.map((jobId) => expect.objectContaining({ jobId, cause: expect.stringContaining('ended ABORTED') }))),
      },
    ]);
    expect((await readFailures(cliClients(), stageConfigOf(), { since, error: 'States.TaskFailed', examples: 5 }, afterStopGrace.now())).failedJobs).toBe(0);
    expect((await readStatus(cliClients(), stageConfigOf(), afterStopGrace.now())).failedLastHour).toBe(summary.jobsFailed);
    // Failed before the window: not listed.
    expect(await queryFailedJobs(cliClients(), stageConfigOf(), afterStopGrace.now() + 1000, afterStopGrace.now() + 1000)).toEqual([]);
    example(`$ npx sluice failures --stage ${stage.stage} --since 1h`, formatFailures(report));
  });

  test('redrive --failed: a dry run changes nothing; then each failed job is sent back once, and a second run sends nothing', async () => {
    const request = { failedSince: Date.now() - 3_600_000, jobIds: [], deadLetters: false };
    const dry = await redrive(cliClients(), stageConfigOf(), { ...request, dryRun: true }, silent, Date.now());
    expect(dry.redriven).toEqual(expect.arrayContaining(failedIds));
    for (const jobId of failedIds) expect(await readLedgerRow(ddb, dispatcher.tableName, jobId)).toMatchObject({ status: 'failed' });

    const before = await visible(dispatcher.queueUrl);
    const done = await redrive(cliClients(), stageConfigOf(), { ...request, dryRun: false }, silent, Date.now());
    expect(done.redriven.sort()).toEqual(dry.redriven.sort());
    for (const jobId of failedIds) {
      // Failed (and listed) until the message that redrives this failure is admitted; marked as sent back.
      const row = await readLedgerRow(ddb, dispatcher.tableName, jobId);
      expect(row).toMatchObject({ status: 'failed', redriveOf: row!.finishedAt, redrivenAt: expect.any(String) });
    }
    await waitForVisible(dispatcher.queueUrl, before + done.redriven.length);
    example(`$ npx sluice redrive --failed --since 1h --stage ${stage.stage}`, formatRedrive(done));

    // A second run, by --failed or by name, finds each job sent back and nothing changed since: it sends nothing.
    const again = await redrive(cliClients(), stageConfigOf(), { ...request, dryRun: false }, silent, Date.now());
    expect(again.redriven).toEqual([]);
    expect(again.skipped.map((s) => s.jobId).sort()).toEqual([...failedIds].sort());
    expect(again.skipped[0].reason).toMatch(/already sent back at .*: its message waits in the intake queue/);
    const named = await redrive(cliClients(), stageConfigOf(), { jobIds: [failedIds[0]], deadLetters: false, dryRun: false }, silent, Date.now());
    expect(named).toMatchObject({ redriven: [], skipped: [expect.objectContaining({ jobId: failedIds[0] })] });
    expect(await visible(dispatcher.queueUrl)).toBe(before + done.redriven.length);
  });

  test('redrive --dlq: dead letters of both queues, with their reasons, go back to the intake queue once', async () => {
    const urlOf = async (name: string) => (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
    const names = stageNames(stageConfigOf());
    const [intakeDlq, ruleDlq] = [await urlOf(names.intakeDeadLetterQueue), await urlOf(names.ruleDeadLetterQueue)];
    for (const url of [intakeDlq, ruleDlq]) await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
    const event = JSON.stringify({
      version: '0',
      source: 'aws.s3',
      'detail-type': 'Object Created',
      detail: { bucket: { name: bucket }, object: { key: 'incoming/undelivered.csv', sequencer: '0A1B' } },
    });
    // What EventBridge puts in a target's DLQ: the event, with the error as message attributes.
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: ruleDlq,
        MessageBody: event,
        MessageAttributes: {
          ERROR_CODE: { DataType: 'String', StringValue: 'NO_PERMISSIONS' },
          ERROR_MESSAGE: { DataType: 'String', StringValue: 'Access denied' },
        },
      }),
    );
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: intakeDlq,
        MessageBody: 'not json at all',
        MessageAttributes: { reason: { DataType: 'String', StringValue: 'body is not JSON' } },
      }),
    );

    const report = await readFailures(cliClients(), stageConfigOf(), { since: Date.now() - 60_000, examples: 1 }, Date.now());
    expect(report.deadLetters.rule).toMatchObject({
      depth: 1,
      reasons: [{ reason: 'EventBridge could not deliver it: NO_PERMISSIONS (Access denied)', count: 1 }],
    });
    expect(report.deadLetters.intake).toMatchObject({ depth: 1, reasons: [{ reason: 'body is not JSON', count: 1, example: 'not json at all' }] });

    const request = { jobIds: [], deadLetters: true };
    // A dry run looks without taking: both messages stay visible.
    const dry = await redrive(cliClients(), stageConfigOf(), { ...request, dryRun: true }, silent, Date.now());
    expect(dry).toMatchObject({
      deadLetters: { [names.intakeDeadLetterQueue]: 0, [names.ruleDeadLetterQueue]: 1 },
      poisonLeft: { [names.intakeDeadLetterQueue]: 1 },
    });
    expect([await visible(intakeDlq), await visible(ruleDlq)]).toEqual([1, 1]);

    const before = await visible(dispatcher.queueUrl);
    const moved = await redrive(cliClients(), stageConfigOf(), { ...request, dryRun: false }, silent, Date.now());
    expect(moved).toMatchObject({
      deadLetters: { [names.intakeDeadLetterQueue]: 0, [names.ruleDeadLetterQueue]: 1 },
      poisonLeft: { [names.intakeDeadLetterQueue]: 1 },
    });
    await waitForVisible(dispatcher.queueUrl, before + 1);
    // The poison stays, and is visible again at once: a redrive with --include-poison can take it right away.
    expect([await visible(intakeDlq), await visible(ruleDlq)]).toEqual([1, 0]);
    example(`$ npx sluice redrive --dlq --stage ${stage.stage}`, formatRedrive(moved));

    // The poison, once its cause is fixed.
    const withPoison = await redrive(cliClients(), stageConfigOf(), { ...request, includePoison: true, dryRun: false }, silent, Date.now());
    expect(withPoison).toMatchObject({ deadLetters: { [names.intakeDeadLetterQueue]: 1, [names.ruleDeadLetterQueue]: 0 }, poisonLeft: {} });
    expect([await visible(intakeDlq), await visible(ruleDlq)]).toEqual([0, 0]);
    await waitForVisible(dispatcher.queueUrl, before + 2);
    expect((await redrive(cliClients(), stageConfigOf(), { ...request, dryRun: false }, silent, Date.now())).deadLetters).toEqual({
      [names.intakeDeadLetterQueue]: 0,
      [names.ruleDeadLetterQueue]: 0,
    });
  });

  test('pause, resume and resize: through the limiter, checked against the stage’s quota and Fargate’s rate', async () => {
    const configured = (await readPool(ddb, dispatcher.tableName)).budgetVcpu;
    const paused = await pause(cliClients(), stageConfigOf(), Date.now());
    expect(paused).toMatchObject({ before: { budgetVcpu: configured }, after: { budgetVcpu: 0, effectiveVcpu: 0, pausedFromVcpu: configured } });
    example(`$ npx sluice pause --stage ${stage.stage}`, formatChange(paused));
    await expect(pause(cliClients(), stageConfigOf(), Date.now())).rejects.toMatchObject({
      exitCode: EXIT.usage,
      message: `stage ${stage.stage} is already paused (resume restores ${configured} vCPU)`,
    });
    expect(await dispatch()).toMatchObject({ admitted: 0 });

    expect(await resume(cliClients(), stageConfigOf(), Date.now())).toMatchObject({ after: { budgetVcpu: configured } });
    expect(await readPool(ddb, dispatcher.tableName)).not.toHaveProperty('pausedFromVcpu', expect.anything());
    await expect(resume(cliClients(), stageConfigOf(), Date.now())).rejects.toMatchObject({
      exitCode: EXIT.usage,
      message: expect.stringContaining('is not paused'),
    });

    const quota = stageConfigOf().capacity.accountVcpuQuota;
    await expect(resize(cliClients(), stageConfigOf(), { vcpu: quota + 1 }, Date.now())).rejects.toMatchObject({
      exitCode: EXIT.usage,
      message: expect.stringContaining(`must not exceed the stage's accountVcpuQuota (${quota} vCPU)`),
    });
    await expect(resize(cliClients(), stageConfigOf(), { vcpu: configured, rate: 25 }, Date.now())).rejects.toMatchObject({
      message: expect.stringContaining("below Fargate's 20 launches/s"),
    });
    expect((await readPool(ddb, dispatcher.tableName)).budgetVcpu).toBe(configured);
    const resized = await resize(cliClients(), stageConfigOf(), { vcpu: configured + 1, rate: 2, burst: 3 }, Date.now());
    expect(resized.after).toMatchObject({ budgetVcpu: configured + 1, ratePerSecond: 2, burst: 3 });
    example(`$ npx sluice resize --vcpu ${configured + 1} --rate 2 --burst 3 --stage ${stage.stage}`, formatChange(resized));
    await resize(cliClients(), stageConfigOf(), { vcpu: configured, rate: resized.before.ratePerSecond, burst: resized.before.burst }, Date.now());
  });

  test('drain: pauses, waits while an execution runs, and once nothing runs says what is still queued', async () => {
    expect((await dispatch()).admitted).toBeGreaterThan(0); // the redriven jobs: an execution now runs
    const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
    const waiting = await drain(cliClients(), stageConfigOf(), { timeoutMs: 1500, intervalMs: 500 }, silent, clock);
    expect(waiting).toMatchObject({ drained: false, status: { runningExecutions: expect.any(Number) } });
    expect(waiting.status.runningExecutions).toBeGreaterThan(0);
    expect((await readPool(ddb, dispatcher.tableName)).budgetVcpu).toBe(0);
    expect(formatDrain(waiting)).toMatch(/not drained after \d+ s: [\d.]+ vCPU still leased, \d+ executions running/);
    // The executable says so with exit 4, for scripts.
    const timedOut = sluice('drain', '--stage', stage.stage, '--timeout', '1s', '--interval', '1s');
    expect({ code: timedOut.status, stderr: timedOut.stderr }).toEqual({
      code: EXIT.timedOut,
      stderr: expect.stringContaining('sluice: drain timed out after 1s'),
    });
    expect(timedOut.stdout).toContain('not drained after');

    await endRunningExecutions(); // their jobs go back to the queue
    const drained = await drain(cliClients(), stageConfigOf(), { timeoutMs: 10_000, intervalMs: 500 }, progressBar('drain'), clock);
    expect(drained).toMatchObject({ drained: true, status: { runningExecutions: 0 } });
    expect(drained.status.vcpu.inUse).toBeCloseTo(0, 9);
    expect(drained.status.backlog.waiting + drained.status.backlog.inFlight).toBeGreaterThan(0);
    example(`$ npx sluice drain --stage ${stage.stage}`, formatDrain(drained));
    await resume(cliClients(), stageConfigOf(), Date.now());
  });

  // The executable itself, as a user runs it: the standard credential chain and AWS_ENDPOINT_URL (moto's
  // self-signed certificate accepted for this child process only).
  const sluice = (...args: string[]) =>
    spawnSync(process.execPath, [join(__dirname, '..', '..', 'bin', 'sluice.cjs'), ...args], {
      encoding: 'utf8',
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: stage.endpoint,
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        NODE_TLS_REJECT_UNAUTHORIZED: '0',
      },
    });

  test('sluice status --json exits 0 with the status; another stage’s account is refused with exit 1', () => {
    const ok = sluice('status', '--stage', stage.stage, '--json');
    expect({ code: ok.status, stderr: ok.stderr }).toEqual({ code: 0, stderr: expect.not.stringContaining('sluice:') });
    expect(JSON.parse(ok.stdout)).toMatchObject({ stage: stage.stage, runningExecutions: expect.any(Number) });
    const other = loadEnvironments().find((c) => c.account.id !== stage.accountId)!;
    const refused = sluice('status', '--stage', other.stage);
    expect(refused.status).toBe(EXIT.failed);
    expect(refused.stderr).toContain(`sluice: these credentials are for account ${stage.accountId}; stage ${other.stage} lives in ${other.account.id}`);
  });
  test('backfill: objects already in the bucket each become one job, as their uploads would; a second backfill starts nothing', async () => {
    const preexisting = ['incoming/backfill/old-1.csv', 'incoming/backfill/old-2.csv', 'incoming/backfill/old-3.csv'];
    // Objects from before the stage: their upload events are dropped, as if none had been sent.
    await sqs.send(new PurgeQueueCommand({ QueueUrl: dispatcher.queueUrl }));
    // An older version of one key, and a deleted key: neither is a current object.
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: preexisting[0], Body: 'an older version\n' }));
    const uploaded = new Map<string, string>();
    for (const key of preexisting) uploaded.set(key, (await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `${key}\n` }))).VersionId!);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'incoming/backfill/deleted.csv', Body: 'gone\n' }));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'incoming/backfill/deleted.csv' }));
    await waitForVisible(dispatcher.queueUrl, preexisting.length + 2);
    await sqs.send(new PurgeQueueCommand({ QueueUrl: dispatcher.queueUrl }));
    const { executions: before = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn: dispatcher.stateMachineArn }));

    const dry = sluice('backfill', '--stage', stage.stage, '--prefix', 'incoming/backfill/', '--dry-run');
    expect({ code: dry.status, stderr: dry.stderr }).toEqual({ code: 0, stderr: expect.not.stringContaining('sluice:') });
    expect(dry.stdout.match(/^would send {2}incoming\/backfill\/old-\d\.csv/gm)).toHaveLength(preexisting.length);
    expect(await visible(dispatcher.queueUrl)).toBe(0);

    const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
    const checkpointFile = join(mkdtempSync(join(tmpdir(), 'sluice-backfill-')), 'checkpoint.json');
    const request = { prefix: 'incoming/backfill/', ratePerSecond: 20, dryRun: false, checkpointFile };
    const first = await backfill(cliClients(), stageConfigOf(), request, silent, clock);
    expect(first).toMatchObject({ listed: preexisting.length, sent: preexisting.length });
    expect(JSON.parse(readFileSync(checkpointFile, 'utf8'))).toMatchObject({ next: null, sent: preexisting.length, prefix: 'incoming/backfill/' });
    example(`$ npx sluice backfill --stage ${stage.stage} --prefix incoming/backfill/ --checkpoint backfill.json`, formatBackfill(first));

    let admittedNow = 0;
    for (let round = 0; round < 5 && admittedNow < preexisting.length; round++) admittedNow += (await dispatch()).admitted;
    expect(admittedNow).toBe(preexisting.length);
    const { executions: after = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn: dispatcher.stateMachineArn }));
    const started = after.filter((e) => !before.some((b) => b.executionArn === e.executionArn));
    const startedJobs: Array<{ key: string; jobId: string }> = [];
    for (const e of started)
      startedJobs.push(...(JSON.parse((await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }))).input!).jobs as typeof startedJobs));
    expect(startedJobs.map((j) => j.key).sort()).toEqual(preexisting);
    const rows = new Map<string, Awaited<ReturnType<typeof readLedgerRow>>>();
    for (const job of startedJobs) {
      const row = await readLedgerRow(ddb, dispatcher.tableName, job.jobId);
      // The id the upload's own event gives: the object's version decides it.
      expect(job.jobId).toBe(jobIdOf(bucket, job.key, uploaded.get(job.key)!, 'the upload event’s sequencer'));
      expect(row).toMatchObject({ status: 'running', admissions: 1, versionId: uploaded.get(job.key) });
      rows.set(job.jobId, row);
    }

    // Resumed with the same checkpoint: nothing is listed again.
    expect(await backfill(cliClients(), stageConfigOf(), request, silent, clock)).toMatchObject({ alreadyComplete: true, listed: 0, sent: 0 });
    // A second backfill of its own sends each object again; the dispatcher starts none of them twice.
    const second = await backfill(cliClients(), stageConfigOf(), { ...request, checkpointFile: undefined }, silent, clock);
    expect(second).toMatchObject({ listed: preexisting.length, sent: preexisting.length });
    await waitForVisible(dispatcher.queueUrl, preexisting.length);
    // The pool has room for fewer jobs than were sent again: a run receives only as many, so it may take a few.
    const again = { admitted: 0, executionsStarted: 0, duplicates: 0 };
    for (let round = 0; round < 6 && again.duplicates < preexisting.length; round++) {
      const summary = await dispatch();
      for (const field of ['admitted', 'executionsStarted', 'duplicates'] as const) again[field] += summary[field];
    }
    expect(again).toEqual({ admitted: 0, executionsStarted: 0, duplicates: preexisting.length });
    const { executions: afterSecond = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn: dispatcher.stateMachineArn }));
    expect(afterSecond).toHaveLength(after.length);
    for (const [jobId, row] of rows) expect(await readLedgerRow(ddb, dispatcher.tableName, jobId)).toEqual(row);
  });
});

/** A stage with routes (dev): each route's uploads reach its own queue through its own rule, and count on its own counters. */
const describeRouted = dispatcher.routes ? describe : describe.skip;

describeRouted('routes on the applied stage', () => {
  const routes = dispatcher.routes ?? [];
  const urgent = routes.find((r) => r.priority > 0)!;
  const standard = routes.find((r) => r !== urgent)!;
  const urgentKey = `${urgent?.inputPrefix}routes-1.csv`;
  const standardKey = `${standard?.inputPrefix}routes-2.csv`;
  const running = async () =>
    (await sfn.send(new ListExecutionsCommand({ stateMachineArn: dispatcher.stateMachineArn, statusFilter: 'RUNNING' }))).executions ?? [];
  let started: string[] = [];

  beforeAll(async () => {
    // A clean slate: every execution the earlier tests left running ends, and the janitor gives its leases back.
    for (const e of await running()) await sfn.send(new StopExecutionCommand({ executionArn: e.executionArn, cause: 'verify: routes start clean' }));
    await runJanitor({ sfn, sqs, lambda, ddb, clock: afterStopGrace, settings: janitor, log: quiet });
    for (const route of routes) await sqs.send(new PurgeQueueCommand({ QueueUrl: route.queueUrl }));
  });

  afterAll(async () => {
    for (const route of routes) await sqs.send(new PurgeQueueCommand({ QueueUrl: route.queueUrl }));
  });

  test("each upload reaches its route's own queue through its route's rule, and is admitted from there with its route", async () => {
    expect(inUseVcpu(await readPool(ddb, dispatcher.tableName))).toBe(0);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: urgentKey, Body: 'urgent\n' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: standardKey, Body: 'standard\n' }));
    await waitForVisible(urgent.queueUrl, 1);
    await waitForVisible(standard.queueUrl, 1);

    let admittedNow = 0;
    for (let round = 0; round < 3 && admittedNow < 2; round++) admittedNow += (await dispatch()).admitted;
    expect(admittedNow).toBe(2);
    started = (await running()).map((e) => e.executionArn!);
    const jobs: Array<{ key: string; jobId: string; route: string; intakeQueueUrl: string; vcpu: number; taskDefinitionArn: string }> = [];
    for (const arn of started) jobs.push(...JSON.parse((await sfn.send(new DescribeExecutionCommand({ executionArn: arn }))).input!).jobs);
    // Each job runs its route's task definition (stg's urgent route has its own, smaller) and leases its size.
    expect(jobs.map((j) => [j.key, j.route, j.intakeQueueUrl, j.vcpu, j.taskDefinitionArn]).sort()).toEqual(
      [
        [standardKey, standard.name, standard.queueUrl, standard.taskVcpu, standard.taskDefinitionArn],
        [urgentKey, urgent.name, urgent.queueUrl, urgent.taskVcpu, urgent.taskDefinitionArn],
      ].sort(),
    );
    expect(urgent.taskDefinitionArn).not.toBe(standard.taskDefinitionArn);
    for (const job of jobs) expect((await readLedgerRow(ddb, dispatcher.tableName, job.jobId))?.lease).toMatchObject({ route: job.route });
    const pool = await readPool(ddb, dispatcher.tableName);
    expect(ownByRoute(pool)).toMatchObject({ [urgent.name]: urgent.taskVcpu, [standard.name]: standard.taskVcpu });
  });

  test('status shows each route: its use, share, priority and cap', async () => {
    const status = await readStatus({ ...stageClients(stageConfig(stage.stage), config), cloudwatch }, stageConfig(stage.stage), Date.now());
    // The two routes that each admitted a job hold a task; any other route (stg's packed one) holds nothing.
    const holding = (r: (typeof routes)[number]) => (r === urgent || r === standard ? r.taskVcpu : 0);
    expect(status.routes?.map((r) => [r.name, r.inUseVcpu, r.priority, r.maxVcpu])).toEqual(routes.map((r) => [r.name, holding(r), r.priority, r.maxVcpu]));
    example(`$ npx sluice status --stage ${stage.stage}   # a stage with routes`, formatStatus(status));
  });

  test("resize --route caps a route at run time: the dispatcher admits by it, status shows it, and 'config' gives the configured cap back", async () => {
    const stageOf = stageConfig(stage.stage);
    const clients = { ...stageClients(stageOf, config), cloudwatch };
    const task = urgent.taskVcpu;
    const lowered = await resizeRoute(clients, stageOf, urgent.name, task);
    expect(lowered).toMatchObject({ route: urgent.name, before: urgent.maxVcpu, after: task, configured: urgent.maxVcpu, inUseVcpu: task });
    expect((await readPool(ddb, dispatcher.tableName)).routeCaps).toEqual({ [urgent.name]: task });
    const status = await readStatus(clients, stageOf, Date.now());
    expect(status.routes?.find((r) => r.name === urgent.name)).toMatchObject({ maxVcpu: task, configuredMaxVcpu: urgent.maxVcpu });
    example(`$ npx sluice resize --route ${urgent.name} --max-vcpu ${task} --stage ${stage.stage}`, formatRouteCap(lowered));
    // At its new cap, the route's next upload waits in its queue, never received.
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${urgent.inputPrefix}routes-capped.csv`, Body: 'urgent\n' }));
    await waitForVisible(urgent.queueUrl, 1);
    expect(await dispatch()).toMatchObject({ admitted: 0 });
    const restored = await resizeRoute(clients, stageOf, urgent.name, 'config');
    expect(restored).toMatchObject({ before: task, after: urgent.maxVcpu });
    expect((await readPool(ddb, dispatcher.tableName)).routeCaps).toEqual({});
    await sqs.send(new PurgeQueueCommand({ QueueUrl: urgent.queueUrl }));
  });

  test("ended, the jobs go back to their own route's queue and the route's counters give their vCPU back", async () => {
    for (const arn of started) await sfn.send(new StopExecutionCommand({ executionArn: arn, cause: 'verify: the routed executions die' }));
    const summary = await runJanitor({ sfn, sqs, lambda, ddb, clock: afterStopGrace, settings: janitor, log: quiet });
    expect(summary).toMatchObject({ released: 2, requeued: 2, drift: 0 });
    const pool = await readPool(ddb, dispatcher.tableName);
    expect(ownByRoute(pool)).toMatchObject({ [urgent.name]: 0, [standard.name]: 0 });
    for (const [route, key] of [
      [urgent, urgentKey],
      [standard, standardKey],
    ] as const) {
      await waitForVisible(route.queueUrl, 1);
      const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: route.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      expect(Messages.map((m) => JSON.parse(m.Body!).key)).toEqual([key]);
    }
  });
});

/** The route whose tasks run several objects (stg's `small`), if the applied stage packs. */
const packedRoute = routesOf(dispatcher).find((route) => (route.objectsPerTask ?? 1) > 1);
const describePacked = packedRoute ? describe : describe.skip;

/**
 * A stage that packs (stg's `small` route): its uploads are admitted as one task; the real worker (its bundle, against
 * moto's S3 and DynamoDB) runs the task's objects from the batch record and records each one's end; the real finisher
 * code, called as the state machine calls it, gives each object its result and the task's vCPU back.
 */
describePacked('packing on the applied stage', () => {
  // describe.skip still runs this body on a stage that does not pack: nothing here may need the route.
  const route = packedRoute!;
  const packedKeys = ['packed-1.csv', 'packed-2.csv', 'packed-3.csv'].map((name) => `${packedRoute?.inputPrefix}${name}`);
  const running = async () =>
    (await sfn.send(new ListExecutionsCommand({ stateMachineArn: dispatcher.stateMachineArn, statusFilter: 'RUNNING' }))).executions ?? [];
  let execution = '';
  let lead: Record<string, unknown> & { jobId: string; pack: { task: number; objects: number } };

  beforeAll(async () => {
    for (const e of await running()) await sfn.send(new StopExecutionCommand({ executionArn: e.executionArn, cause: 'verify: packing starts clean' }));
    await runJanitor({ sfn, sqs, lambda, ddb, clock: afterStopGrace, settings: janitor, log: quiet });
    for (const r of routesOf(dispatcher)) await sqs.send(new PurgeQueueCommand({ QueueUrl: r.queueUrl }));
  });

  test("a packed route's uploads are admitted as one task: its lead leases the task's vCPU, the others none, and the batch record lists them", async () => {
    expect(inUseVcpu(await readPool(ddb, dispatcher.tableName))).toBe(0);
    for (const key of packedKeys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `${key}\n` }));
    await waitForVisible(route.queueUrl, packedKeys.length);
    let admittedNow = 0;
    for (let round = 0; round < 3 && admittedNow < packedKeys.length; round++) admittedNow += (await dispatch()).admitted;
    expect(admittedNow).toBe(packedKeys.length);
    const [only, ...others] = await running();
    expect(others).toEqual([]);
    execution = only.name!;
    const items = JSON.parse((await sfn.send(new DescribeExecutionCommand({ executionArn: only.executionArn }))).input!).jobs;
    expect(items).toHaveLength(1);
    lead = items[0];
    expect(lead.pack).toEqual({ task: 0, objects: packedKeys.length });
    const record = (await readBatchRecord(ddb, dispatcher.batchesTableName, execution))!;
    expect(record.jobs.map((j) => [j.key, j.task, j.vcpu])).toEqual(packedKeys.map((key, i) => [key, 0, i === 0 ? route.taskVcpu : 0]));
    expect(record.outcomes).toEqual({});
    expect(inUseVcpu(await readPool(ddb, dispatcher.tableName))).toBe(route.taskVcpu);
  });

  test('the worker runs the task: each object processed and its end recorded on the batch record', async () => {
    const built = spawnSync(process.execPath, ['task-image/build.mjs', '--if-stale'], { encoding: 'utf8' });
    expect(built.status).toBe(0);
    const worker = spawnSync(process.execPath, ['task-image/dist/worker.js'], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        AWS_ENDPOINT_URL: stage.endpoint,
        AWS_REGION: stage.region,
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        // moto's self-signed certificate.
        NODE_TLS_REJECT_UNAUTHORIZED: '0',
        BATCHES_TABLE_NAME: dispatcher.batchesTableName,
        BATCH: execution,
        TASK_INDEX: String(lead.pack.task),
        JOB_ID: lead.jobId,
        RESULTS_PREFIX: stageConfig(stage.stage).bucket.resultsPrefix,
      },
    });
    expect({ status: worker.status, stderr: worker.stderr }).toMatchObject({ status: 0 });
    const record = (await readBatchRecord(ddb, dispatcher.batchesTableName, execution))!;
    expect(Object.values(record.outcomes ?? {}).map((o) => o.status)).toEqual(packedKeys.map(() => 'succeeded'));
    const resultsPrefix = stageConfig(stage.stage).bucket.resultsPrefix;
    for (const key of packedKeys) {
      const result = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${resultsPrefix}${key}.json` }));
      expect(result.ContentLength).toBeGreaterThan(0);
    }
  });

  test("the finisher gives each object its result and the task's vCPU back once; the janitor then finds nothing to do", async () => {
    const settings = finisherSettingsFromEnv(functionEnvironment(stage, 'finish-task'));
    const event = parseFinishEvent({
      execution,
      job: lead,
      outcome: { kind: 'ran', taskArn: `arn:aws:ecs:${stage.region}:${stage.accountId}:task/verify/packed` },
    });
    const summary = await finishTask({ ddb, sqs, clock: systemClock, settings, log: quiet }, event);
    expect(summary).toEqual({ objects: 3, succeeded: 3, failed: 0, returned: 0, alreadyGivenBack: 0 });
    const record = (await readBatchRecord(ddb, dispatcher.batchesTableName, execution))!;
    for (const job of record.jobs) expect(await readLedgerRow(ddb, dispatcher.tableName, job.jobId)).toMatchObject({ status: 'succeeded' });
    expect(inUseVcpu(await readPool(ddb, dispatcher.tableName))).toBe(0);
    const [only] = await running();
    await sfn.send(new StopExecutionCommand({ executionArn: only.executionArn, cause: 'verify: the packed execution ends' }));
    const swept = await runJanitor({ sfn, sqs, lambda, ddb, clock: afterStopGrace, settings: janitor, log: quiet });
    expect(swept).toMatchObject({ released: 0, requeued: 0, drift: 0, jobsSucceeded: 3 });
  });
});
