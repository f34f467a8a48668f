import { GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { GetServiceQuotaCommand } from '@aws-sdk/client-service-quotas';
import { AccountEmulator } from '../../twin/engines/account';
import { VirtualClock } from '../../twin/engines/clock';
import { EcsEmulator, type EcsOptions } from '../../twin/engines/ecs';
import { mulberry32 } from '../../twin/engines/random';
import { Recorder } from '../../twin/engines/recorder';
import { FunctionCrashed } from '../../twin/engines/faults';
import { parseScenario } from '../../twin/scenario';
import { stageWithOverrides, World, type Design } from '../../twin/world';
import { standIn } from '../../functions/runtime';

/** The capacity reader's query (functions/capacity.ts usageMetric), for one class. */
const usage = (usageClass: string, extra: Partial<MetricDataQuery['MetricStat']> = {}): MetricDataQuery => ({
  Id: 'usage',
  MetricStat: {
    Metric: {
      Namespace: 'AWS/Usage',
      MetricName: 'ResourceCount',
      Dimensions: [
        { Name: 'Service', Value: 'Fargate' },
        { Name: 'Type', Value: 'Resource' },
        { Name: 'Resource', Value: 'vCPU' },
        { Name: 'Class', Value: usageClass },
      ],
    },
    Period: 60,
    Stat: 'Maximum',
    ...extra,
  },
});

function world(options: Partial<EcsOptions> = {}) {
  const clock = new VirtualClock();
  const recorder = new Recorder(clock);
  const ecs = new EcsEmulator(clock, mulberry32(1), recorder, {
    vcpuQuota: { FARGATE: 120, FARGATE_SPOT: 80 },
    apiBucket: { burst: 1000, refillPerSecond: 1000 },
    fargateRunTaskPerSecond: 1000,
    launchBucket: { burst: 1000, refillPerSecond: 1000 },
    capacityErrorRate: 0,
    spotInterruptionRate: 0,
    startupSeconds: () => 0,
    defaultMemoryMiB: 2048,
    sigtermExitSeconds: 1,
    defaultVcpu: 1,
    behaviour: () => ({ durationSeconds: 90, exitCode: 0 }),
    ...options,
  });
  const account = new AccountEmulator(clock, ecs, { FARGATE: 120, FARGATE_SPOT: 80 });
  const task = (jobId: string, provider = 'FARGATE') => ({
    Overrides: { ContainerOverrides: [{ Name: 'worker', Environment: [{ Name: 'JOB_ID', Value: jobId }] }] },
    CapacityProviderStrategy: [{ CapacityProvider: provider, Weight: 1 }],
  });
  return { clock, ecs, account, task };
}

describe('account twin: Service Quotas', () => {
  it('answers the Fargate vCPU quotas by code, as the scenario sets them', async () => {
    const { account } = world();
    const onDemand = await account.send(new GetServiceQuotaCommand({ ServiceCode: 'fargate', QuotaCode: 'L-3032A538' }));
    expect(onDemand.Quota).toMatchObject({ ServiceCode: 'fargate', QuotaCode: 'L-3032A538', QuotaName: 'Fargate On-Demand vCPU resource count', Value: 120 });
    const spot = await account.send(new GetServiceQuotaCommand({ ServiceCode: 'fargate', QuotaCode: 'L-36FBB829' }));
    expect(spot.Quota).toMatchObject({ QuotaCode: 'L-36FBB829', QuotaName: 'Fargate Spot vCPU resource count', Value: 80 });
    expect(spot.Quota.UsageMetric.MetricDimensions).toEqual({ Class: 'Standard/Spot', Resource: 'vCPU', Service: 'Fargate', Type: 'Resource' });
  });

  it('refuses a quota it does not have with NoSuchResourceException', async () => {
    const { account } = world();
    await expect(account.send(new GetServiceQuotaCommand({ ServiceCode: 'fargate', QuotaCode: 'L-00000000' }))).rejects.toMatchObject({
      name: 'NoSuchResourceException',
    });
    await expect(account.send(new GetServiceQuotaCommand({ ServiceCode: 'ec2', QuotaCode: 'L-3032A538' }))).rejects.toMatchObject({
      name: 'NoSuchResourceException',
    });
  });
});

describe('account twin: AWS/Usage vCPU', () => {
  it('publishes the Maximum of each complete minute only, newest first, this stage and the others together', async () => {
    const { clock, ecs, account, task } = world({
      background: {
        FARGATE: [
          { atSeconds: 30, vcpu: 10 },
          { atSeconds: 150, vcpu: 4 },
        ],
      },
    });
    const t0 = clock.now();
    clock.setTimeout(() => void ecs.runTaskSync(task('a')), 20_000); // 20 s → 110 s
    clock.setTimeout(() => void ecs.runTaskSync(task('b')), 100_000); // 100 s → 190 s
    await clock.run({ untilMs: 170_000 });
    const read = () =>
      account.send(
        new GetMetricDataCommand({
          StartTime: new Date(t0),
          EndTime: new Date(clock.now()),
          ScanBy: 'TimestampDescending',
          MetricDataQueries: [usage('Standard/OnDemand')],
        }),
      );
    const first = (await read()).MetricDataResults[0];
    // At 170 s minutes 0 and 1 have ended, minute 2 (120–180 s) has not.
    expect(first.Timestamps).toEqual([new Date(t0 + 60_000), new Date(t0 + 0)]);
    // Minute 0: a (1) + others (10) = 11; minute 1: a + b + others = 12.
    expect(first.Values).toEqual([12, 11]);
    expect(first).toMatchObject({ Id: 'usage', StatusCode: 'Complete' });
    await clock.run({ untilMs: 180_000 });
    const second = (await read()).MetricDataResults[0];
    // Minute 2: b and the others' 10 until 150 s.
    expect(second.Values).toEqual([11, 12, 11]);
  });

  it('rounds StartTime down to the minute, keeps the classes apart, and ascends on request', async () => {
    const { clock, ecs, account, task } = world();
    const t0 = clock.now();
    clock.setTimeout(() => void ecs.runTaskSync(task('s', 'FARGATE_SPOT')), 65_000);
    // Time moves only to timers: one at 4 minutes.
    clock.setTimeout(() => undefined, 240_000);
    await clock.run();
    const out = await account.send(
      new GetMetricDataCommand({
        StartTime: new Date(t0 + 61_000),
        EndTime: new Date(t0 + 240_000),
        ScanBy: 'TimestampAscending',
        MetricDataQueries: [usage('Standard/Spot'), { ...usage('Standard/OnDemand'), Id: 'od' }],
      }),
    );
    expect(out.MetricDataResults[0].Timestamps).toEqual([new Date(t0 + 60_000), new Date(t0 + 120_000), new Date(t0 + 180_000)]);
    expect(out.MetricDataResults[0].Values).toEqual([1, 1, 0]);
    expect(out.MetricDataResults[1]).toMatchObject({ Id: 'od', Values: [0, 0, 0] });
  });

  it('has no datapoints for other metrics, statistics or dimensions', async () => {
    const { clock, account } = world();
    clock.setTimeout(() => undefined, 600_000);
    await clock.run();
    const range = { StartTime: new Date(clock.epochMs), EndTime: new Date(clock.now()) };
    const other = [
      usage('Standard/OnDemand', { Stat: 'Average' }),
      { Id: 'cpu', MetricStat: { Metric: { Namespace: 'AWS/ECS', MetricName: 'CPUUtilization' }, Period: 60, Stat: 'Maximum' } },
      usage('Standard/Dedicated'),
    ];
    const out = await account.send(new GetMetricDataCommand({ ...range, MetricDataQueries: other }));
    expect(out.MetricDataResults.map((r: { Values: number[] }) => r.Values)).toEqual([[], [], []]);
    const mine = await account.send(new GetMetricDataCommand({ ...range, MetricDataQueries: [usage('Standard/OnDemand')] }));
    expect(mine.MetricDataResults[0].Values).toHaveLength(10);
  });
});

describe('the World builds what the scenario asks for', () => {
  const scenario = parseScenario({
    seed: 3,
    objects: { burst: 2 },
    quotas: { fargateVcpu: 120, fargateSpotVcpu: 60 },
    background: { onDemand: [{ atSeconds: 0, vcpu: 50 }] },
    faults: { dispatcherCrash: 1, dynamodbThrottle: 1 },
  });
  /** A design that runs nothing: each upload fails its job at once, so the run settles. */
  const idle: Design = { name: 'naive', jobIdOf: (o) => o.key, setup: async (world) => ({ upload: (o) => world.jobFailed(o.key, 'idle') }) };

  it('answers the account from the scenario, and names it in the start event with the stage’s classes', async () => {
    const world = new World(scenario, stageWithOverrides('prod', scenario));
    const spot = await world.account.send(new GetServiceQuotaCommand({ ServiceCode: 'fargate', QuotaCode: 'L-36FBB829' }));
    expect(spot.Quota.Value).toBe(60);
    const run = await world.run(idle);
    expect(run.events.find((e) => e.type === 'start')).toMatchObject({
      accountVcpuQuota: 120,
      accountVcpuQuotas: { onDemand: 120, spot: 60 },
      classWeights: { onDemand: 1, spot: 1 },
      stageAccountVcpuQuota: 400,
    });
    expect(run.events.filter((e) => e.type === 'background')).toEqual([{ t: 0, type: 'background', class: 'onDemand', vcpu: 50 }]);
  });

  it('wires DynamoDB throttling and hands out the crash and retry wrappers, each injected fault an event', async () => {
    const world = new World(scenario, stageWithOverrides('prod', scenario));
    expect(world.ddb.faults?.throttle()).toBe(true);
    const calls: string[] = [];
    const outcome = await world.faults.dispatcherCrash
      .run(
        { sqs: standIn({ send: async (_c: unknown) => calls.push('sqs') }), sfn: standIn({ send: async (_c: unknown) => calls.push('sfn') }) },
        async ({ sqs, sfn }) => {
          for (let i = 0; i < 5; i++) {
            await sqs.send({});
            await sfn.send({});
          }
          return 'done';
        },
      )
      .catch((error: unknown) => error);
    // p = 1: the first run dies before one of its first 10 calls (the estimate before any run completed).
    expect(outcome).toBeInstanceOf(FunctionCrashed);
    const crash = outcome as FunctionCrashed;
    expect(crash.of).toBe(10);
    expect(calls).toHaveLength(crash.call - 1);
    expect(world.recorder.events.map((e) => e.type)).toEqual(['injectedFault', 'crash']);
    expect(world.recorder.events[1]).toMatchObject({ function: 'dispatcher', call: crash.call, of: 10 });
    const passes = world.faults.startExecution(standIn({ send: async (_c: unknown) => 'started' }));
    await expect(passes.send(new (class StartExecutionCommand {})())).resolves.toBe('started');
  });
});
