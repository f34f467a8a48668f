import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { runDispatcher, StartedBatches, type Wake } from '../../functions/dispatcher';
import type { DispatcherSettings, JanitorSettings } from '../../functions/environment';
import { executionArnOf, type JobInput } from '../../functions/jobs';
import { runJanitor } from '../../functions/janitor';
import { configureCommand } from '../../functions/limiter';
import { INTAKE_VISIBILITY_TIMEOUT_SECONDS } from '../../environments/function-settings';
import { VirtualClock } from '../../twin/engines/clock';
import { AwsError } from '../../twin/engines/errors';
import { Recorder } from '../../twin/engines/recorder';
import { SqsEmulator } from '../../twin/engines/sqs';
import type { MotoDynamo } from './moto';
import type { LogEvent } from '../../functions/log-events';
import { standIn } from '../../functions/runtime';

export const BUCKET = 'sluice-test-bucket';
/** Past the intake queue's visibility timeout: a message a run held and did not delete is visible again. */
export const VISIBILITY_PASSED_MS = (INTAKE_VISIBILITY_TIMEOUT_SECONDS + 1) * 1000;

/** The EventBridge event S3 sends for an upload (ev-events.html), as the intake queue receives it. */
export function objectCreated(key: string, versionId = `v-${key}`, bucket = BUCKET): string {
  return JSON.stringify({
    version: '0',
    id: `event-${key}`,
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '111111111111',
    time: '2026-11-28T12:00:00Z',
    region: 'eu-west-1',
    resources: [`arn:aws:s3:::${bucket}`],
    detail: {
      version: '0',
      bucket: { name: bucket },
      object: { key, size: 5, etag: 'b1946ac92492d2347c6235b4d2611184', 'version-id': versionId, sequencer: '617f08299329d189' },
      'request-id': 'N4N7GDK58NMKJ12R',
      requester: '111111111111',
      reason: 'PutObject',
    },
  });
}

export interface StartedExecution {
  readonly name: string;
  readonly jobs: JobInput[];
  /** What DescribeExecution and ListExecutions answer for it; a test ends it by setting this. */
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
  /** When it ended (epoch ms); DescribeExecution answers the world's start of time if a test ended it without saying. */
  stoppedAt?: number;
  error?: string;
}

/**
 * The dispatcher's and janitor's surroundings: DynamoDB on moto (the stage's two tables), SQS (the twin's emulator,
 * on a virtual clock), and a Step Functions front that records StartExecution calls, answers Describe/List from
 * them and can be told to fail.
 */
export async function intakeWorld(moto: MotoDynamo, pool: { budgetVcpu: number; ratePerSecond: number; burst: number }, maxReceiveCount = 3) {
  // This world's own: one world's batch names must not count as started in another's.
  const startedBatches = new StartedBatches();
  const clock = new VirtualClock();
  const recorder = new Recorder(clock);
  const sqs = new SqsEmulator(clock, recorder);
  const deadLetterQueueUrl = sqs.createQueue({ name: 'intake-dlq' });
  /** The functions' SQS: the emulator, its calls counted. */
  const sqsClient = { send: async (command: { constructor: { name: string }; input: any }) => (await nextCall(), sqs.send(command)) };
  const queueUrl = sqs.createQueue({
    name: 'intake',
    visibilityTimeoutSeconds: INTAKE_VISIBILITY_TIMEOUT_SECONDS,
    redrive: { deadLetterQueueName: 'intake-dlq', maxReceiveCount },
  });
  const { tableName, batchesTableName } = await moto.createTables();
  await moto.ddb.send(new UpdateCommand(configureCommand(tableName, pool, clock.now())));
  // Time stands still while a request is out to moto, as for every tracked operation of the virtual clock.
  let crashAfter: string | undefined;
  let before: { commandName: string; run: () => Promise<unknown> } | undefined;
  /** Calls the functions made to DynamoDB, SQS and Step Functions, and something to run before the one numbered `at`. */
  let calls = 0;
  let beforeCallAt: { at: number; run: () => Promise<unknown> } | undefined;
  async function nextCall(): Promise<void> {
    const n = calls++;
    if (beforeCallAt?.at !== n) return;
    const { run } = beforeCallAt;
    beforeCallAt = undefined;
    await run();
  }
  /** Every DynamoDB request the functions made, in order. */
  const ddbCalls: Array<{ name: string; input: Record<string, any> }> = [];
  const ddb = standIn({
    async send(command: unknown) {
      await nextCall();
      ddbCalls.push({ name: (command as object).constructor.name, input: (command as { input: Record<string, any> }).input });
      if (before && (command as object).constructor.name === before.commandName) {
        const { run } = before;
        before = undefined;
        await run();
      }
      const output = await clock.track(() => moto.ddb.send(command as never));
      if (crashAfter && (command as object).constructor.name === crashAfter) {
        crashAfter = undefined;
        throw new AwsError('FunctionCrashed', 'the function died right after this call (what it did stays done)', false);
      }
      return output;
    },
  });

  const started: StartedExecution[] = [];
  let failStarts: string | undefined;
  /** Step Functions creates the execution, then the caller gets this error anyway (a lost answer, the SDK's retries spent). */
  let createThenFail: string | undefined;
  const stateMachineArn = 'arn:aws:states:eu-west-1:111111111111:stateMachine:sluice-test-jobs';
  const sfn = {
    async send(command: { constructor: { name: string }; input: any }) {
      await nextCall();
      switch (command.constructor.name) {
        case 'StartExecutionCommand': {
          if (failStarts) throw new AwsError(failStarts, 'StartExecution failed');
          const { name, input } = command.input;
          if (started.some((s) => s.name === name)) throw new AwsError('ExecutionAlreadyExists', `Execution Already Exists: '${name}'`, false);
          started.push({ name, jobs: JSON.parse(input).jobs, status: 'RUNNING' });
          if (createThenFail) {
            const error = createThenFail;
            createThenFail = undefined;
            throw new AwsError(error, 'the execution was created; the answer did not arrive');
          }
          return { executionArn: executionArnOf(stateMachineArn, name), startDate: new Date(clock.now()) };
        }
        case 'DescribeExecutionCommand': {
          const found = started.find((s) => executionArnOf(stateMachineArn, s.name) === command.input.executionArn);
          if (!found) throw new AwsError('ExecutionDoesNotExist', 'Execution Does Not Exist', false);
          const ended = found.status !== 'RUNNING';
          return {
            status: found.status,
            executionArn: command.input.executionArn,
            ...(ended ? { stopDate: new Date(found.stoppedAt ?? clock.epochMs) } : {}),
            ...(found.error ? { error: found.error } : {}),
          };
        }
        case 'ListExecutionsCommand':
          return {
            executions: started
              .filter((s) => !command.input.statusFilter || s.status === command.input.statusFilter)
              .map((s) => ({ name: s.name, status: s.status })),
          };
        default:
          throw new Error(`unexpected ${command.constructor.name}`);
      }
    },
  };
  /** The Step Functions front as the functions take it; a test may replace `sfn.send`. */
  const sfnClient = standIn(sfn);
  const settings: DispatcherSettings = {
    queueUrl,
    deadLetterQueueUrl,
    tableName,
    batchesTableName,
    stateMachineArn,
    bucketName: BUCKET,
    inputPrefix: 'incoming/',
    taskVcpu: 1,
    jobsPerExecution: 10,
    leaseSeconds: 3600,
    maxRunMs: 30_000,
    batchWindowMs: 0,
    startGraceMs: 330_000,
    capacityWeights: { FARGATE_SPOT: 1 },
  };
  const janitorSettings: JanitorSettings = {
    tableName,
    batchesTableName,
    queueUrl,
    stateMachineArn,
    dispatcherFunctionName: 'sluice-test-dispatcher',
    maxExecutionAttempts: 3,
    startGraceMs: 120_000,
    // The tests end executions by hand, with no tasks to stop: a test of the stop grace sets one.
    stopGraceMs: 0,
  };
  const logs: LogEvent[] = [];
  const wakes: unknown[] = [];

  /** Runs `work` with virtual time passing as it sleeps, until it returns. */
  async function untilDone<T>(work: Promise<T>): Promise<T> {
    let done = false;
    void work.then(
      () => ((done = true), clock.stop()),
      () => ((done = true), clock.stop()),
    );
    await clock.run();
    if (!done) await work;
    return work;
  }

  /** Runs the dispatcher right now, inside whatever else is running (no clock.run of its own): an interleaving. */
  const dispatchNow = (overrides: Partial<DispatcherSettings> = {}, wake?: Wake) =>
    runDispatcher({
      sqs: sqsClient,
      sfn: sfnClient,
      ddb,
      clock,
      settings: { ...settings, ...overrides },
      started: startedBatches,
      log: (e) => logs.push(e),
      wake,
    });

  return {
    clock,
    sqs,
    ddb,
    sfn,
    startedBatches,
    dispatchNow,
    ddbCalls,
    tableName,
    batchesTableName,
    queueUrl,
    deadLetterQueueUrl,
    settings,
    janitorSettings,
    started,
    logs,
    wakes,
    failStartsWith(name: string | undefined) {
      failStarts = name;
    },
    /** The next StartExecution creates its execution and still answers with this error. */
    createThenFailNextStart(name: string) {
      createThenFail = name;
    },
    /** Something else happens just before the function's next DynamoDB call of this command. */
    beforeNext(commandName: string, run: () => Promise<unknown>) {
      before = { commandName, run };
    },
    /** Calls to DynamoDB, SQS and Step Functions made so far by the functions (and by anything run inside them). */
    get calls() {
      return calls;
    },
    /** Something else happens just before the functions' `n`-th call from now (0: the next), whatever it is. */
    beforeCall(n: number, run: () => Promise<unknown>) {
      beforeCallAt = { at: calls + n, run };
    },
    /** The function dies right after its next DynamoDB call of this command (e.g. 'TransactWriteCommand'). */
    crashAfterNext(commandName: string) {
      crashAfter = commandName;
    },
    /** Lets `ms` of virtual time pass (timers due meanwhile fire). */
    async advance(ms: number) {
      const until = clock.seconds() * 1000 + ms;
      clock.setTimeout(() => undefined, ms); // the clock only moves towards a timer
      await clock.run({ untilMs: until });
    },
    /** Runs the dispatcher once, letting virtual time pass as it sleeps. */
    dispatch(overrides: Partial<DispatcherSettings> = {}, wake?: Wake) {
      return untilDone(
        runDispatcher({
          sqs: sqsClient,
          sfn: sfnClient,
          ddb,
          clock,
          settings: { ...settings, ...overrides },
          started: startedBatches,
          log: (e) => logs.push(e),
          wake,
        }),
      );
    },
    /** Runs the janitor once (an execution-ended event for `ended`, or a sweep). */
    janitor(overrides: Partial<JanitorSettings> = {}, event?: unknown) {
      const lambda = standIn({ send: async (command: { input: unknown }) => wakes.push(command.input) });
      return untilDone(
        runJanitor({ ddb, sqs: sqsClient, sfn: sfnClient, lambda, clock, settings: { ...janitorSettings, ...overrides }, log: (e) => logs.push(e) }, event),
      );
    },
  };
}
