import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { runDispatcher } from '../../functions/dispatcher';
import type { DispatcherSettings } from '../../functions/environment';
import { executionArnOf } from '../../functions/jobs';
import type { Job } from '../../functions/jobs';
import { configureCommand } from '../../functions/pool';
import { VirtualClock } from '../../twin/engines/clock';
import { AwsError } from '../../twin/engines/errors';
import { Recorder } from '../../twin/engines/recorder';
import { SqsEmulator } from '../../twin/engines/sqs';
import type { LocalDynamo } from './dynalite';

export const BUCKET = 'sluice-test-bucket';

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
  readonly jobs: Array<Job & { vcpu: number }>;
}

/**
 * The dispatcher's surroundings: SQS (the twin's emulator, on a virtual clock), DynamoDB (dynalite) and a
 * Step Functions front that records StartExecution calls and can be told to fail.
 */
export async function intakeWorld(dynamo: LocalDynamo, pool: { budgetVcpu: number; ratePerSecond: number; burst: number }, maxReceiveCount = 3) {
  const clock = new VirtualClock();
  const recorder = new Recorder(clock);
  const sqs = new SqsEmulator(clock, recorder);
  const deadLetterQueueUrl = sqs.createQueue({ name: 'intake-dlq' });
  const queueUrl = sqs.createQueue({ name: 'intake', visibilityTimeoutSeconds: 120, redrive: { deadLetterQueueName: 'intake-dlq', maxReceiveCount } });
  const tableName = await dynamo.createTable();
  await dynamo.ddb.send(new UpdateCommand(configureCommand(tableName, pool, clock.now())));
  const ddb = { send: (command: unknown) => clock.track(() => dynamo.ddb.send(command as never)) };

  const started: StartedExecution[] = [];
  let failStarts: string | undefined;
  const stateMachineArn = 'arn:aws:states:eu-west-1:111111111111:stateMachine:sluice-test-jobs';
  const sfn = {
    async send(command: { constructor: { name: string }; input: any }) {
      if (command.constructor.name !== 'StartExecutionCommand') throw new Error(`unexpected ${command.constructor.name}`);
      if (failStarts) throw new AwsError(failStarts, 'StartExecution failed');
      const { name, input } = command.input;
      if (started.some((s) => s.name === name)) throw new AwsError('ExecutionAlreadyExists', `Execution Already Exists: '${name}'`, false);
      started.push({ name, jobs: JSON.parse(input).jobs });
      return { executionArn: executionArnOf(stateMachineArn, name), startDate: new Date(clock.now()) };
    },
  };
  const settings: DispatcherSettings = {
    queueUrl,
    deadLetterQueueUrl,
    tableName,
    stateMachineArn,
    bucketName: BUCKET,
    inputPrefix: 'incoming/',
    taskVcpu: 1,
    jobsPerExecution: 10,
    leaseSeconds: 3600,
    maxRunMs: 30_000,
  };
  const logs: Array<Record<string, unknown>> = [];

  return {
    clock,
    sqs,
    ddb,
    tableName,
    queueUrl,
    deadLetterQueueUrl,
    settings,
    started,
    logs,
    failStartsWith(name: string | undefined) {
      failStarts = name;
    },
    /** Lets `ms` of virtual time pass (timers due meanwhile fire). */
    async advance(ms: number) {
      const until = clock.seconds() * 1000 + ms;
      clock.setTimeout(() => undefined, ms); // the clock only moves towards a timer
      await clock.run({ untilMs: until });
    },
    /** Runs the dispatcher once, letting virtual time pass as it sleeps and polls. */
    async dispatch(overrides: Partial<DispatcherSettings> = {}) {
      const run = runDispatcher({ sqs, sfn, ddb, clock, settings: { ...settings, ...overrides }, log: (e) => logs.push(e) });
      let summary: Awaited<typeof run> | undefined;
      void run.then((s) => {
        summary = s;
        clock.stop();
      });
      await clock.run();
      return summary ?? (await run);
    },
  };
}
