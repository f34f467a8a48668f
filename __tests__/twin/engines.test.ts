import { VirtualClock } from '../../twin/engines/clock';
import { EcsEmulator, INVALID_PARAMETER_MESSAGE, VCPU_LIMIT_MESSAGE, type EcsOptions } from '../../twin/engines/ecs';
import { LambdaEmulator } from '../../twin/engines/lambda';
import { mulberry32 } from '../../twin/engines/random';
import { Recorder } from '../../twin/engines/recorder';
import { SqsEmulator } from '../../twin/engines/sqs';
import { TokenBucket } from '../../twin/engines/token-bucket';

const setup = () => {
  const clock = new VirtualClock();
  return { clock, recorder: new Recorder(clock), rng: mulberry32(7) };
};

const ecsOptions = (overrides: Partial<EcsOptions> = {}): EcsOptions => ({
  vcpuQuota: { FARGATE: 1000, FARGATE_SPOT: 1000 },
  apiBucket: { burst: 100, refillPerSecond: 40 },
  fargateRunTaskPerSecond: 1000,
  launchBucket: { burst: 1000, refillPerSecond: 1000 },
  capacityErrorRate: 0,
  spotInterruptionRate: 0,
  startupSeconds: () => 0,
  defaultMemoryMiB: 2048,
  sigtermExitSeconds: 1,
  defaultVcpu: 1,
  behaviour: () => ({ durationSeconds: 300, exitCode: 0 }),
  ...overrides,
});

const runTask = (jobId: string, extra: Record<string, unknown> = {}) => ({
  Cluster: 'c',
  TaskDefinition: 'td',
  Overrides: { ContainerOverrides: [{ Name: 'worker', Environment: [{ Name: 'JOB_ID', Value: jobId }] }] },
  ...extra,
});

describe('virtual clock', () => {
  it('fires timers in time order and jumps without waiting in real time', async () => {
    const { clock } = setup();
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => fired.push(['b', clock.seconds()]), 3_600_000);
    clock.setTimeout(() => fired.push(['a', clock.seconds()]), 1000);
    const cancelled = clock.setTimeout(() => fired.push(['never', clock.seconds()]), 2000);
    clock.clearTimeout(cancelled);
    const started = Date.now();
    await clock.run();
    expect(fired).toEqual([
      ['a', 1],
      ['b', 3600],
    ]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('stands still while a tracked real-time operation is in flight', async () => {
    const { clock } = setup();
    let seenAt = -1;
    clock.setTimeout(() => undefined, 10_000);
    clock.setTimeout(() => {
      void clock.track(() => new Promise((resolve) => setTimeout(resolve, 50))).then(() => (seenAt = clock.seconds()));
    }, 1000);
    await clock.run();
    expect(seenAt).toBe(1);
  });

  it('gives library code a Date on virtual time', async () => {
    const { clock } = setup();
    const VDate = clock.dateClass();
    clock.setTimeout(() => undefined, 5000);
    await clock.run();
    expect(VDate.now() - clock.epochMs).toBe(5000);
    expect(new VDate().getTime()).toBe(clock.now());
  });
});

describe('token bucket', () => {
  it('allows the burst, then refills at the rate', async () => {
    const { clock } = setup();
    const bucket = new TokenBucket(clock, 100, 40);
    let taken = 0;
    while (bucket.tryTake()) taken++;
    expect(taken).toBe(100);
    clock.setTimeout(() => undefined, 500);
    await clock.run();
    let refilled = 0;
    while (bucket.tryTake()) refilled++;
    expect(refilled).toBe(20);
    expect(bucket.secondsUntil(4)).toBeCloseTo(0.1);
  });

  it('never holds more than its capacity', async () => {
    const { clock } = setup();
    const bucket = new TokenBucket(clock, 5, 20);
    clock.setTimeout(() => undefined, 60_000);
    await clock.run();
    expect(bucket.available()).toBe(5);
  });
});

describe('ECS/Fargate twin', () => {
  it('rejects RunTask over the vCPU quota with the AWS message', async () => {
    const { clock, recorder, rng } = setup();
    const ecs = new EcsEmulator(clock, rng, recorder, ecsOptions({ vcpuQuota: { FARGATE: 2, FARGATE_SPOT: 2 } }));
    const first = ecs.runTaskSync(runTask('a'));
    const second = ecs.runTaskSync(runTask('b'));
    await expect(ecs.runTaskSync(runTask('c'))).rejects.toMatchObject({ name: 'ECS.AmazonECSException', message: VCPU_LIMIT_MESSAGE });
    expect(ecs.vcpuInUse()).toBe(2);
    await clock.run();
    await expect(first).resolves.toMatchObject({ LastStatus: 'STOPPED', Containers: [{ ExitCode: 0 }] });
    await second;
    expect(ecs.vcpuInUse()).toBe(0);
    expect(recorder.events.filter((e) => e.type === 'taskStop').map((e) => e.t)).toEqual([300, 300]);
  });

  it('places each one-task RunTask on its own: a base sends every task to its provider', async () => {
    const { clock, recorder, rng } = setup();
    const ecs = new EcsEmulator(clock, rng, recorder, ecsOptions());
    const strategy = [
      { CapacityProvider: 'FARGATE', Weight: 1, Base: 2 },
      { CapacityProvider: 'FARGATE_SPOT', Weight: 1, Base: 0 },
    ];
    const tasks = Array.from({ length: 6 }, (_, i) => ecs.runTaskSync(runTask(`j${i}`, { CapacityProviderStrategy: strategy })));
    await clock.run();
    const stopped = await Promise.all(tasks);
    expect(stopped.map((t) => t.CapacityProviderName)).toEqual(Array(6).fill('FARGATE'));
  });

  it('throttles RunTask beyond the API bucket (burst 100, refill 40/s)', async () => {
    const { clock, recorder, rng } = setup();
    const ecs = new EcsEmulator(clock, rng, recorder, ecsOptions());
    const results = await Promise.allSettled(
      Array.from({ length: 120 }, (_, i) => Promise.race([ecs.runTaskSync(runTask(`j${i}`)), Promise.resolve('accepted')])),
    );
    const throttled = results.filter((r) => r.status === 'rejected');
    expect(throttled).toHaveLength(20);
    expect((throttled[0] as PromiseRejectedResult).reason).toMatchObject({ name: 'ECS.AmazonECSException', message: 'Rate exceeded' });
    await clock.run({ untilMs: 1000 });
    const after = await Promise.allSettled(
      Array.from({ length: 45 }, (_, i) => Promise.race([ecs.runTaskSync(runTask(`k${i}`)), Promise.resolve('accepted')])),
    );
    expect(after.filter((r) => r.status === 'rejected')).toHaveLength(5);
  });

  it("caps Fargate RunTask at 20 calls/s and launches at Fargate's bucket", async () => {
    const { clock, recorder, rng } = setup();
    const ecs = new EcsEmulator(clock, rng, recorder, ecsOptions({ fargateRunTaskPerSecond: 20, launchBucket: { burst: 100, refillPerSecond: 20 } }));
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => Promise.race([ecs.runTaskSync(runTask(`j${i}`)), Promise.resolve('accepted')])),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(10);
    expect(recorder.events.filter((e) => e.type === 'throttle' && e.source === 'fargateRunTask')).toHaveLength(10);
  });

  it('reports capacity shortfalls as failures[] (AmazonECS.Unknown)', async () => {
    const { clock, recorder, rng } = setup();
    const ecs = new EcsEmulator(clock, rng, recorder, ecsOptions({ capacityErrorRate: 1 }));
    await expect(ecs.runTaskSync(runTask('a'))).rejects.toMatchObject({ name: 'AmazonECS.Unknown' });
    expect(recorder.events.map((e) => e.type)).toEqual(['runTask', 'capacityError']);
    expect(ecs.vcpuInUse()).toBe(0);
  });

  it('fails .sync with States.TaskFailed and the stopped task as Cause on a non-zero exit', async () => {
    const { clock, recorder, rng } = setup();
    const ecs = new EcsEmulator(clock, rng, recorder, ecsOptions({ behaviour: () => ({ durationSeconds: 10, exitCode: 65 }) }));
    const task = ecs.runTaskSync(runTask('bad'));
    const settled = task.catch((e) => e);
    await clock.run();
    const error = await settled;
    expect(error.name).toBe('States.TaskFailed');
    expect(JSON.parse(error.message)).toMatchObject({ Containers: [{ ExitCode: 65, Name: 'worker' }], StopCode: 'EssentialContainerExited' });
  });

  it('holds the vCPU from RunTask through start-up, draws a start-up per task, and records the task size and pull start', async () => {
    const { clock, recorder, rng } = setup();
    const startups = [40, 10];
    const ecs = new EcsEmulator(
      clock,
      rng,
      recorder,
      ecsOptions({ startupSeconds: () => startups.shift()!, behaviour: () => ({ durationSeconds: 60, exitCode: 0 }) }),
    );
    const tasks = [ecs.runTaskSync(runTask('a')), ecs.runTaskSync(runTask('b', { Overrides: { Memory: '4096', ContainerOverrides: [] } }))];
    await clock.run({ untilMs: 5000 });
    // Both still starting up: their vCPU is already held.
    expect(ecs.vcpuInUse()).toBe(2);
    await clock.run();
    await Promise.all(tasks);
    expect(recorder.events.filter((e) => e.type === 'taskStop').map((e) => e.t)).toEqual([70, 100]);
    expect(recorder.events.filter((e) => e.type === 'taskStart')).toMatchObject([
      { startupSeconds: 40, pullStartSeconds: expect.closeTo(0.24 * 40, 6), memoryGb: 2 },
      { startupSeconds: 10, pullStartSeconds: expect.closeTo(0.24 * 10, 6), memoryGb: 4 },
    ]);
  });

  it('interrupts Spot tasks: exit 75, StopCode SpotInterruption, before the task would end', async () => {
    const { clock, recorder, rng } = setup();
    const ecs = new EcsEmulator(clock, rng, recorder, ecsOptions({ spotInterruptionRate: 1 }));
    const settled = ecs.runTaskSync(runTask('s', { CapacityProviderStrategy: [{ CapacityProvider: 'FARGATE_SPOT', Weight: 1 }] })).catch((e) => e);
    await clock.run();
    const error = await settled;
    expect(JSON.parse(error.message)).toMatchObject({ StopCode: 'SpotInterruption', Containers: [{ ExitCode: 75 }] });
    expect(clock.seconds()).toBeLessThan(302);
  });
});

describe('ECS/Fargate twin: a shared account', () => {
  const accepted = (ecs: EcsEmulator, jobId: string, extra: Record<string, unknown> = {}) =>
    // A refusal is synchronous (the promise is already rejected when the race looks); an accepted task is still running.
    Promise.race([ecs.runTaskSync(runTask(jobId, extra)), Promise.resolve('accepted')]).catch((error: Error) => error.message);
  const spot = { CapacityProviderStrategy: [{ CapacityProvider: 'FARGATE_SPOT', Weight: 1 }] };

  it("counts other workloads' vCPU against the quota of their class, from each step on", async () => {
    const { clock, recorder, rng } = setup();
    const ecs = new EcsEmulator(
      clock,
      rng,
      recorder,
      ecsOptions({
        vcpuQuota: { FARGATE: 4, FARGATE_SPOT: 4 },
        behaviour: () => ({ durationSeconds: 1000, exitCode: 0 }),
        background: {
          FARGATE: [
            { atSeconds: 0, vcpu: 3 },
            { atSeconds: 60, vcpu: 1 },
          ],
          FARGATE_SPOT: [{ atSeconds: 30, vcpu: 4 }],
        },
      }),
    );
    await clock.run({ untilMs: 0 });
    expect(await accepted(ecs, 'a')).toBe('accepted');
    // 3 others + 1 of ours = the quota of 4.
    expect(await accepted(ecs, 'b')).toBe(VCPU_LIMIT_MESSAGE);
    // Spot is its own quota: free until its others arrive at 30 s.
    expect(await accepted(ecs, 's1', spot)).toBe('accepted');
    await clock.run({ untilMs: 30_000 });
    expect(ecs.accountVcpuInUse('FARGATE_SPOT')).toBe(4);
    expect(await accepted(ecs, 's2', spot)).toBe(VCPU_LIMIT_MESSAGE);
    await clock.run({ untilMs: 60_000 });
    expect(await accepted(ecs, 'c')).toBe('accepted');
    expect(await accepted(ecs, 'd')).toBe('accepted');
    expect(await accepted(ecs, 'e')).toBe(VCPU_LIMIT_MESSAGE);
    expect(ecs.vcpuInUse()).toBe(4);
    const background = recorder.events.filter((e) => e.type === 'background').map(({ t, class: c, vcpu, wantedVcpu }) => ({ t, c, vcpu, wantedVcpu }));
    // At 30 s Spot's others want 4 but our task holds 1 of the 4: they hold 3 until it stops.
    expect(background).toEqual([
      { t: 0, c: 'onDemand', vcpu: 3, wantedVcpu: undefined },
      { t: 30, c: 'spot', vcpu: 3, wantedVcpu: 4 },
      { t: 60, c: 'onDemand', vcpu: 1, wantedVcpu: undefined },
    ]);
    await clock.run({ untilMs: 1000_000 });
    expect(
      recorder.events
        .filter((e) => e.type === 'background')
        .slice(3)
        .map(({ t, class: c, vcpu }) => ({ t, c, vcpu })),
    ).toEqual([{ t: 1000, c: 'spot', vcpu: 4 }]);
  });

  it('keeps the account’s vCPU per class over time: the Maximum of any minute', async () => {
    const { clock, recorder, rng } = setup();
    const ecs = new EcsEmulator(
      clock,
      rng,
      recorder,
      ecsOptions({ behaviour: () => ({ durationSeconds: 30, exitCode: 0 }), background: { FARGATE: [{ atSeconds: 90, vcpu: 5 }] } }),
    );
    const t0 = clock.now();
    clock.setTimeout(() => void ecs.runTaskSync(runTask('a')), 70_000);
    clock.setTimeout(() => void ecs.runTaskSync(runTask('b')), 75_000);
    clock.setTimeout(() => void ecs.runTaskSync(runTask('s', spot)), 200_000);
    await clock.run();
    const minute = (m: number, provider: 'FARGATE' | 'FARGATE_SPOT' = 'FARGATE') => ecs.maxAccountVcpu(provider, t0 + m * 60_000, t0 + (m + 1) * 60_000);
    // Minute 1: a and b (2), then others' 5 at 90 s with both still running (7); minute 2: others only; Spot apart.
    expect([minute(0), minute(1), minute(2), minute(3)]).toEqual([0, 7, 5, 5]);
    expect([minute(2, 'FARGATE_SPOT'), minute(3, 'FARGATE_SPOT'), minute(4, 'FARGATE_SPOT')]).toEqual([0, 1, 0]);
    // Before the run the account stood as the run found it: others start at 90 s here, so nothing ran.
    expect(ecs.maxAccountVcpu('FARGATE', t0 - 60_000, t0)).toBe(0);
  });

  it('before the run, the others were at their level of second 0 (a reading at the start sees them)', () => {
    const { clock, recorder, rng } = setup();
    const ecs = new EcsEmulator(
      clock,
      rng,
      recorder,
      ecsOptions({
        background: {
          FARGATE_SPOT: [
            { atSeconds: 0, vcpu: 50 },
            { atSeconds: 600, vcpu: 80 },
          ],
        },
      }),
    );
    const t0 = clock.now();
    expect(ecs.maxAccountVcpu('FARGATE_SPOT', t0 - 60_000, t0)).toBe(50);
    expect(ecs.maxAccountVcpu('FARGATE', t0 - 60_000, t0)).toBe(0);
  });

  it('fails RunTask with InvalidParameterException (EC2 throttled behind ECS) at its rate', async () => {
    const { clock, recorder, rng } = setup();
    const always = new EcsEmulator(clock, rng, recorder, ecsOptions({ invalidParameterRate: 1 }));
    await expect(always.runTaskSync(runTask('a'))).rejects.toMatchObject({ name: 'ECS.InvalidParameterException', message: INVALID_PARAMETER_MESSAGE });
    expect(INVALID_PARAMETER_MESSAGE).toBe('Error retrieving security group information for [sg-0123456789abcdef0]: Request limit exceeded.');
    expect(recorder.events.map((e) => [e.type, e.jobId])).toEqual([
      ['runTask', 'a'],
      ['invalidParameter', 'a'],
    ]);
    expect(always.vcpuInUse()).toBe(0);

    const fifth = setup();
    const some = new EcsEmulator(
      fifth.clock,
      fifth.rng,
      fifth.recorder,
      ecsOptions({ invalidParameterRate: 0.2, apiBucket: { burst: 1000, refillPerSecond: 40 } }),
    );
    const outcomes = await Promise.all(Array.from({ length: 500 }, (_, i) => accepted(some, `j${i}`)));
    const refused = outcomes.filter((o) => o === INVALID_PARAMETER_MESSAGE).length;
    expect(refused).toBeGreaterThan(70);
    expect(refused).toBeLessThan(130);
    expect(fifth.recorder.events.filter((e) => e.type === 'invalidParameter')).toHaveLength(refused);
  });
});

describe('SQS twin', () => {
  const receive = (QueueUrl: string, extra: Record<string, unknown> = {}) =>
    ({
      constructor: { name: 'ReceiveMessageCommand' },
      input: { QueueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['ApproximateReceiveCount'], ...extra },
    }) as const;

  it('hides a received message for the visibility timeout and counts receives', async () => {
    const { clock, recorder } = setup();
    const sqs = new SqsEmulator(clock, recorder);
    const url = sqs.createQueue({ name: 'q', visibilityTimeoutSeconds: 30 });
    sqs.sendMessage(url, 'hello');
    const first = await sqs.send(receive(url));
    expect(first.Messages[0]).toMatchObject({ Body: 'hello', Attributes: { ApproximateReceiveCount: '1' } });
    expect(await sqs.send(receive(url))).toEqual({});
    const attributes = await sqs.send({ constructor: { name: 'GetQueueAttributesCommand' }, input: { QueueUrl: url } });
    expect(attributes.Attributes).toMatchObject({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '1' });
    await clock.run({ untilMs: 29_999 });
    expect(await sqs.send(receive(url))).toEqual({});
    await clock.run({ untilMs: 30_000 });
    const again = await sqs.send(receive(url));
    expect(again.Messages[0].Attributes.ApproximateReceiveCount).toBe('2');
    expect(again.Messages[0].ReceiptHandle).not.toBe(first.Messages[0].ReceiptHandle);
    const deleted = await sqs.send({
      constructor: { name: 'DeleteMessageBatchCommand' },
      input: {
        QueueUrl: url,
        Entries: [
          { Id: '1', ReceiptHandle: again.Messages[0].ReceiptHandle },
          { Id: '2', ReceiptHandle: 'stale' },
        ],
      },
    });
    expect(deleted).toMatchObject({ Successful: [{ Id: '1' }], Failed: [{ Id: '2', Code: 'ReceiptHandleIsInvalid' }] });
    expect(sqs.counts(url).total).toBe(0);
  });

  it('delays a message by DelaySeconds', async () => {
    const { clock, recorder } = setup();
    const sqs = new SqsEmulator(clock, recorder);
    const url = sqs.createQueue({ name: 'q' });
    await sqs.send({ constructor: { name: 'SendMessageCommand' }, input: { QueueUrl: url, MessageBody: 'later', DelaySeconds: 60 } });
    expect(await sqs.send(receive(url))).toEqual({});
    await clock.run({ untilMs: 60_000 });
    expect((await sqs.send(receive(url))).Messages).toHaveLength(1);
  });

  it('moves a message to the DLQ after maxReceiveCount receives', async () => {
    const { clock, recorder } = setup();
    const sqs = new SqsEmulator(clock, recorder);
    const dlq = sqs.createQueue({ name: 'dlq' });
    const url = sqs.createQueue({ name: 'q', visibilityTimeoutSeconds: 10, redrive: { deadLetterQueueName: 'dlq', maxReceiveCount: 3 } });
    sqs.sendMessage(url, 'poison');
    for (let receiveCount = 1; receiveCount <= 3; receiveCount++) {
      const got = await sqs.send(receive(url));
      expect(got.Messages[0].Attributes.ApproximateReceiveCount).toBe(String(receiveCount));
      await clock.run({ untilMs: receiveCount * 10_000 });
    }
    expect(await sqs.send(receive(url))).toEqual({});
    expect(sqs.bodies(dlq)).toEqual(['poison']);
  });

  it('ChangeMessageVisibility extends the timeout of an in-flight message', async () => {
    const { clock, recorder } = setup();
    const sqs = new SqsEmulator(clock, recorder);
    const url = sqs.createQueue({ name: 'q', visibilityTimeoutSeconds: 10 });
    sqs.sendMessage(url, 'm');
    const got = await sqs.send(receive(url));
    await sqs.send({
      constructor: { name: 'ChangeMessageVisibilityBatchCommand' },
      input: { QueueUrl: url, Entries: [{ Id: 'a', ReceiptHandle: got.Messages[0].ReceiptHandle, VisibilityTimeout: 100 }] },
    });
    await clock.run({ untilMs: 50_000 });
    expect(await sqs.send(receive(url))).toEqual({});
    await clock.run({ untilMs: 100_000 });
    expect((await sqs.send(receive(url))).Messages).toHaveLength(1);
  });
});

describe('Lambda twin', () => {
  it('throttles async invocations over reserved concurrency and retries them from the queue', async () => {
    const { clock, recorder } = setup();
    const lambda = new LambdaEmulator(clock, recorder);
    const starts: number[] = [];
    lambda.register({
      name: 'dispatcher',
      memoryMB: 512,
      reservedConcurrency: 1,
      startLatencySeconds: 0,
      handler: async () => {
        starts.push(clock.seconds());
        await clock.sleep(2500);
      },
    });
    await lambda.send({ constructor: { name: 'InvokeCommand' }, input: { FunctionName: 'dispatcher', InvocationType: 'Event', Payload: '{}' } });
    lambda.invokeAsync('dispatcher', {});
    await clock.run();
    // The second event is throttled at 0 s, retried at 1 s (still busy), then at 1 + 2 = 3 s.
    expect(starts).toEqual([0, 3]);
    const billed = recorder.events.filter((e) => e.type === 'lambda');
    expect(billed.map((e) => e.billedMs)).toEqual([2500, 2500]);
    expect(lambda.invocations).toBe(2);
  });
});
