/**
 * The state machine of a stage that packs, as synthesized, run on aws-local-stepfunctions (as the other state-machine
 * tests run theirs): RunTask answers as each test says, and a stand-in for the finisher records what each task's end
 * hands it, read back with the finisher's own parser (functions/finish-task.ts). The finisher's own work on the table is
 * its tests' (__tests__/functions/packing.test.ts).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { parseFinishEvent, type FinishEvent } from '../../functions/finish-task';
import { ADMITTED_FOR_ANOTHER_STATE_MACHINE, jobIdOf, type JobInput } from '../../functions/jobs';
import { releasedShardKey } from '../../functions/limiter';
import { STATES } from '../../modules/run-jobs/definition';
import { EXIT_CODES } from '../../task-image/src/exit-codes';
import { loadLocalStepFunctions } from '../../twin/engines/local-sfn';
import { ecsError, localHandlers, synthesizedDefinition, taskFailed, type LocalHandler } from '../support/local-sfn';
import { packedDevConfig, packedRoutedDevConfig } from '../support/packed-stage';

const { StateMachine } = loadLocalStepFunctions();

const EXECUTION = 'batch-0001-packed';
const FINISHER = 'sluice-dev-finish-task';
const DISPATCHER = 'sluice-dev-dispatcher';

/** Two tasks of a batch of 4-object tasks: each the lead job of its task, with its task's index and size. */
function leads(count = 2): JobInput[] {
  return Array.from({ length: count }, (_, task) => {
    const key = `incoming/lead-${task}.csv`;
    const jobId = jobIdOf('bucket', key, `v${task}`, '');
    return {
      jobId,
      bucket: 'bucket',
      key,
      versionId: `v${task}`,
      sequencer: '',
      round: 0,
      failedRuns: 0,
      vcpu: 1,
      releaseShard: releasedShardKey(jobId).pk,
      capacityProvider: 'FARGATE_SPOT',
      pack: { task, objects: 4 },
    };
  });
}

/** A finisher that answers as `answer` says, recording each call it gets. */
function finisherStandIn(answer: (event: FinishEvent) => Promise<unknown> = async () => ({ objects: 4 })) {
  const calls: Array<{ state: string; event: FinishEvent }> = [];
  return { calls, answer };
}

/** Runs one execution of the packed dev state machine on these items; the finisher and RunTask as given. */
async function runPacked(options: {
  jobs: readonly object[];
  runTask: LocalHandler;
  finisher?: ReturnType<typeof finisherStandIn>;
  config?: ReturnType<typeof packedDevConfig>;
}) {
  const definition = synthesizedDefinition('dev', options.config ?? packedDevConfig());
  const finisher = options.finisher ?? finisherStandIn();
  const wakeUps: unknown[] = [];
  const runTasks: any[] = [];
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  const instant = Object.fromEntries(Object.values(STATES).map((s) => [s, 0]));
  const execution = machine.run({ jobs: options.jobs } as never, {
    overrides: {
      taskResourceLocalHandlers: localHandlers(definition, {
        // A packed graph writes no table and sends no message itself: the finisher does.
        dynamodb: undefined as unknown as DynamoDBClient,
        sendMessage: async () => {
          throw new Error('a packed graph sends no message itself');
        },
        runTask: async (input) => {
          runTasks.push(input);
          return options.runTask(input);
        },
        invokeLambda: async (input) => {
          const name = String(input.FunctionName).split(':').pop();
          if (name === DISPATCHER) {
            wakeUps.push(input.Payload);
            return { StatusCode: 202 };
          }
          expect(name).toBe(FINISHER);
          expect(input.InvocationType).toBe('RequestResponse');
          const event = parseFinishEvent(input.Payload);
          finisher.calls.push({ state: stateOf(event), event });
          return { StatusCode: 200, Payload: await finisher.answer(event) };
        },
      }),
      retryIntervalOverrides: instant,
      waitTimeOverrides: { [STATES.waitBeforeRetry]: 0 },
    },
    context: { Execution: { Name: EXECUTION, Id: `arn:aws:states:eu-west-1:111111111111:execution:sluice-dev-jobs:${EXECUTION}` } },
  });
  const states: string[] = [];
  const entered = (async () => {
    for await (const event of execution.eventLogs as AsyncIterable<{ type: string; state?: { name: string } }>)
      if (event.type === 'StateEntered' && event.state) states.push(event.state.name);
  })();
  const result = await execution.result;
  await entered;
  return { result, calls: finisher.calls, wakeUps, runTasks, states };
}

/** Which ending called, as its outcome says (the kind, and for a return its why); the tests check that state was entered. */
function stateOf(event: FinishEvent): string {
  const { outcome } = event;
  if (outcome.kind === 'ran') return STATES.finishJob;
  if (outcome.kind === 'failed') return STATES.recordFailure;
  return { classShort: STATES.returnForCapacity, plain: STATES.returnWhileThrottled, hold: STATES.returnForVcpuLimit }[outcome.why];
}

const ranTask = (input: { Tags: Array<{ Value: string }> }) => ({
  TaskArn: `arn:aws:ecs:eu-west-1:111111111111:task/sluice-dev/${input.Tags[0].Value.slice(0, 8)}`,
  LastStatus: 'STOPPED',
  Containers: [{ ExitCode: 0 }],
});

test('a task that ran: FinishJob hands the finisher the execution, its lead job with its pack, and the task’s ARN; then the dispatcher is woken', async () => {
  const jobs = leads(2);
  const run = await runPacked({ jobs, runTask: async (input) => ranTask(input) });
  expect(run.calls.map((c) => c.state)).toEqual([STATES.finishJob, STATES.finishJob]);
  expect(run.states.filter((name) => name === STATES.finishJob)).toHaveLength(2);
  const byTask = new Map(run.calls.map(({ event }) => [event.job.pack.task, event]));
  for (const job of jobs) {
    expect(byTask.get(job.pack!.task)).toEqual({
      execution: EXECUTION,
      job: expect.objectContaining({ jobId: job.jobId, pack: job.pack, vcpu: 1, releaseShard: job.releaseShard }),
      outcome: { kind: 'ran', taskArn: `arn:aws:ecs:eu-west-1:111111111111:task/sluice-dev/${job.jobId.slice(0, 8)}` },
    });
  }
  expect(run.wakeUps).toHaveLength(2);
  expect(run.states).not.toContain(STATES.leaveToJanitor);
});

test('each task is told where its list is: the batch record (the execution) and its index, its lead for the logs; no object', async () => {
  const jobs = leads(2);
  const run = await runPacked({ jobs, runTask: async (input) => ranTask(input) });
  const environments = run.runTasks.map((input) =>
    Object.fromEntries(input.Overrides.ContainerOverrides[0].Environment.map((e: { Name: string; Value: string }) => [e.Name, e.Value])),
  );
  expect(environments.sort((a, b) => a.TASK_INDEX.localeCompare(b.TASK_INDEX))).toEqual(
    jobs.map((job) => ({ BATCH: EXECUTION, TASK_INDEX: String(job.pack!.task), JOB_ID: job.jobId, STATE_ENTERED_AT: expect.stringMatching(/^\d{4}-/) })),
  );
});

test('a task that exited with the bad-input code: RecordFailure hands the finisher kind failed, with the error and the whole failure', async () => {
  const [job] = leads(1);
  const run = await runPacked({
    jobs: [job],
    runTask: async () => {
      throw taskFailed(EXIT_CODES.badInput);
    },
  });
  expect(run.runTasks).toHaveLength(1);
  expect(run.calls).toHaveLength(1);
  const [{ state, event }] = run.calls;
  expect(state).toBe(STATES.recordFailure);
  expect(run.states).toContain(STATES.recordFailure);
  expect(event.outcome).toEqual({ kind: 'failed', error: 'States.TaskFailed', cause: expect.any(String) });
  // The whole failure as text. (aws-local-stepfunctions leaves the quotes of a nested string unescaped in
  // States.JsonToString's answer, so the text is matched here, not parsed.)
  expect((event.outcome as { cause: string }).cause).toMatch(new RegExp(`^\\{"Error":"States.TaskFailed","Cause":".*"ExitCode":${EXIT_CODES.badInput}`));
  expect(run.wakeUps).toHaveLength(1);
});

test('RunTask refused for the account’s vCPU limit: ReturnForVcpuLimit hands the finisher kind returned, why hold, with the reason', async () => {
  const [job] = leads(1);
  const run = await runPacked({
    jobs: [job],
    runTask: async () => {
      throw ecsError('ECS.AmazonECSException', "You've reached the limit on the number of vCPUs you can run concurrently");
    },
  });
  expect(run.calls.map((c) => c.state)).toEqual([STATES.returnForVcpuLimit]);
  expect(run.states).toContain(STATES.returnForVcpuLimit);
  const { outcome } = run.calls[0].event;
  expect(outcome).toEqual({ kind: 'returned', why: 'hold', reason: expect.any(String) });
  expect(JSON.parse((outcome as { reason: string }).reason)).toEqual({
    Error: 'ECS.AmazonECSException',
    Cause: "You've reached the limit on the number of vCPUs you can run concurrently",
  });
  expect(run.wakeUps).toHaveLength(1);
});

test('no Fargate capacity in the class, and RunTask throttled past its retries: returned, why classShort and plain', async () => {
  const [job] = leads(1);
  const noCapacity = await runPacked({
    jobs: [job],
    runTask: async () => {
      throw ecsError('AmazonECS.Unknown', JSON.stringify({ Failures: [{ Reason: 'Capacity is unavailable at this time' }] }));
    },
  });
  expect(noCapacity.calls.map((c) => [c.state, c.event.outcome.kind, (c.event.outcome as { why?: string }).why])).toEqual([
    [STATES.returnForCapacity, 'returned', 'classShort'],
  ]);
  const throttled = await runPacked({
    jobs: [job],
    runTask: async () => {
      throw ecsError('ECS.AmazonECSException', 'Rate exceeded');
    },
  });
  expect(throttled.calls.map((c) => [c.state, (c.event.outcome as { why?: string }).why])).toEqual([[STATES.returnWhileThrottled, 'plain']]);
  expect(throttled.runTasks.length).toBeGreaterThan(1);
});

test('a finisher that fails every time is retried, then the task is left to the janitor: its leases stay, the execution ends well', async () => {
  const [job] = leads(1);
  const failing = finisherStandIn(async () => {
    throw Object.assign(new Error('the table is unreachable'), { name: 'Error' });
  });
  const run = await runPacked({ jobs: [job], runTask: async (input) => ranTask(input), finisher: failing });
  // Once, then the retrier of any error (3 more).
  expect(run.calls.map((c) => c.state)).toEqual(Array(4).fill(STATES.finishJob));
  expect(run.states).toContain(STATES.leaveToJanitor);
  expect(run.wakeUps).toEqual([]);
  // The execution ends well (the Map keeps its input): an execution that failed would be the janitor's too, sooner.
  expect(run.result).toEqual({ jobs: [job] });

  const throttled = finisherStandIn(async () => {
    throw Object.assign(new Error('Rate exceeded'), { name: 'Lambda.TooManyRequestsException' });
  });
  const again = await runPacked({ jobs: [job], runTask: async (input) => ranTask(input), finisher: throttled });
  // Lambda's own throttling is retried longer (6 more), by its own retrier.
  expect(again.calls).toHaveLength(7);
  expect(again.states).toContain(STATES.leaveToJanitor);
});

test('a finisher that fails once is retried, and the task ends as it should', async () => {
  const [job] = leads(1);
  let failures = 0;
  const flaky = finisherStandIn(async () => {
    if (failures++ === 0) throw Object.assign(new Error('timed out'), { name: 'Lambda.Unknown' });
    return { objects: 4 };
  });
  const run = await runPacked({ jobs: [job], runTask: async (input) => ranTask(input), finisher: flaky });
  expect(run.calls.map((c) => c.state)).toEqual([STATES.finishJob, STATES.finishJob]);
  expect(run.states).not.toContain(STATES.leaveToJanitor);
  expect(run.wakeUps).toHaveLength(1);
});

test('a batch that names no packed task (a dispatcher of another version) fails at the gate before any task starts', async () => {
  const unpacked = leads(1).map(({ pack: _pack, ...job }) => job);
  const run = await runPacked({ jobs: unpacked, runTask: async (input) => ranTask(input) }).catch((error: Error) => ({ error }));
  expect(run).toMatchObject({ error: { cause: { name: ADMITTED_FOR_ANOTHER_STATE_MACHINE } } });
});

test('with routes: the task names its route, and the finisher gets the job’s route and queue to send objects back to', async () => {
  const config = packedRoutedDevConfig();
  const queueUrl = 'https://sqs.eu-west-1.amazonaws.com/111111111111/sluice-dev-intake-bulk';
  const [job] = leads(1).map((lead) => ({
    ...lead,
    vcpu: 0.5,
    route: 'bulk',
    intakeQueueUrl: queueUrl,
    taskDefinitionArn: 'arn:aws:ecs:eu-west-1:111111111111:task-definition/sluice-dev-worker-bulk:1',
  }));
  const run = await runPacked({
    config,
    jobs: [job],
    runTask: async () => {
      throw ecsError('ECS.AmazonECSException', "You've reached the limit on the number of vCPUs you can run concurrently");
    },
  });
  expect(run.runTasks[0].TaskDefinition).toBe(job.taskDefinitionArn);
  expect(run.runTasks[0].Overrides.ContainerOverrides[0].Environment).toContainEqual({ Name: 'ROUTE', Value: 'bulk' });
  expect(run.calls[0].event.job).toMatchObject({ route: 'bulk', intakeQueueUrl: queueUrl, pack: job.pack });
});
