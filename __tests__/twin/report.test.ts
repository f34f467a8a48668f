import { computeReport } from '../../twin/report';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadScenario, parseScenario } from '../../twin/scenario';
import { stageWithOverrides } from '../../twin/world';
import type { TwinEvent } from '../../twin/engines/recorder';

const e = (t: number, type: string, fields: Record<string, unknown> = {}): TwinEvent => ({ t, type, ...fields });

describe('report from events', () => {
  const events: TwinEvent[] = [
    e(0, 'start', { design: 'x', stage: 'dev', seed: 1, budgetVcpu: 2, launchRatePerSecond: 1, accountVcpuQuota: 6 }),
    e(0, 'arrive', { jobId: 'a' }),
    e(0, 'arrive', { jobId: 'b' }),
    e(0, 'arrive', { jobId: 'c' }),
    e(0, 'arrive', { jobId: 'p' }),
    e(0, 'admit', { jobId: 'a' }),
    e(0, 'runTask', { jobId: 'a' }),
    e(0, 'taskStart', { jobId: 'a', taskArn: 't1', vcpu: 1 }),
    e(0, 'runTask', { jobId: 'b' }),
    e(0, 'throttle', { jobId: 'b', source: 'ecsApi' }),
    e(1, 'runTask', { jobId: 'b' }),
    e(1, 'taskStart', { jobId: 'b', taskArn: 't2', vcpu: 1 }),
    e(1, 'dlq', { jobId: 'p', reason: 'poison' }),
    e(100, 'taskStop', { jobId: 'a', taskArn: 't1', vcpu: 1, exitCode: 0 }),
    e(100, 'release', { jobId: 'a' }),
    e(100, 'jobDone', { jobId: 'a', status: 'succeeded', error: null }),
    e(101.5, 'taskStart', { jobId: 'c', taskArn: 't3', vcpu: 1 }),
    e(101, 'taskStop', { jobId: 'b', taskArn: 't2', vcpu: 1, exitCode: 65 }),
    e(101, 'jobDone', { jobId: 'b', status: 'failed', error: 'States.TaskFailed (exit 65)' }),
    e(102, 'execEnd', { transitions: 7 }),
    e(102, 'lambda', { billedMs: 2000, memoryMB: 512 }),
    e(102, 'meter', { ddbWrites: 3, ddbReads: 1, ddbWriteUnits: 17, ddbReadUnits: 4, sqsRequests: 5 }),
  ];
  const report = computeReport(events);

  it('accounts for every object: succeeded, failed, DLQ and lost (arrived, never finished)', () => {
    expect(report).toMatchObject({ objects: 4, succeeded: 1, failed: 1, dlq: 1, lost: 1, failureReasons: { 'States.TaskFailed (exit 65)': 1 } });
  });

  it('computes peak vCPU, the lower bound with its formula, and the makespan ratio', () => {
    expect(report.peakVcpu).toBe(2);
    // Σ task vCPU-seconds = 100 + 100 (t3 never stopped, not counted) → /2 = 100 s; 3 tasks ran / 1 per s = 3 s.
    expect(report.lowerBoundSeconds).toBe(100);
    expect(report.lowerBoundFormula).toContain('200 / 2 = 100 s');
    expect(report.makespanSeconds).toBe(101);
    expect(report.makespanRatio).toBe(1.01);
  });

  it('counts throttles, transitions, Lambda GB-seconds, requests, and the admission latency', () => {
    expect(report.throttles).toMatchObject({ total: 1, bySource: { ecsApi: 1 } });
    expect(report.runTaskCalls).toBe(3);
    expect(report.stateTransitions).toBe(7);
    expect(report.lambdaGbSeconds).toBe(1);
    expect(report.dynamodbRequests).toEqual({ reads: 1, writes: 3 });
    // DynamoDB is billed by capacity units, not requests: 17 write units × $0.625/M + 4 read units × $0.125/M, per 4 objects.
    expect(report.dynamodbCapacityUnits).toEqual({ read: 4, write: 17 });
    expect(report.costPer1000Objects.dynamodb).toBeCloseTo(((17 * 0.625 + 4 * 0.125) / 1e6) * 250, 4);
    expect(report.admissionLatencySeconds).toEqual({ median: 1.5, p99: 1.5, samples: 1 });
  });
});

describe('scenario validation', () => {
  it('rejects unknown fields and bad values with their path', () => {
    expect(() => parseScenario({ objects: { burst: 10 }, rates: { failure: 2 }, colour: 'red' })).toThrow(/rates\.failure: must be a probability from 0 to 1[\s\S]*Unrecognized key.*colour|colour[\s\S]*rates\.failure/);
    expect(() => parseScenario({ objects: { burst: 0 } })).toThrow(/objects: must bring at least one object/);
  });

  it.each(readdirSync(join(__dirname, '../../twin/scenarios')))('the shipped scenario %s is valid for every stage', (file) => {
    const scenario = loadScenario(join(__dirname, '../../twin/scenarios', file));
    for (const stage of ['dev', 'stg', 'prod']) expect(stageWithOverrides(stage, scenario).stage).toBe(stage);
  });

  it('overrides go through the stage schema: a pool the limiter item cannot hold is refused', () => {
    const huge = parseScenario({ objects: { burst: 1 }, task: { vcpu: 0.25 }, quotas: { fargateVcpu: 2000 }, overrides: { vcpuBudget: 1000 } });
    expect(() => stageWithOverrides('dev', huge)).toThrow(/capacity\.vcpuBudget: 4000 leases .* over DynamoDB's 400 KB item limit/);
  });

  it('fills defaults: AWS quotas and buckets', () => {
    const s = parseScenario({ objects: { burst: 1 } });
    expect(s.quotas).toMatchObject({ ecsApi: { burst: 100, refillPerSecond: 40 }, fargateRunTaskPerSecond: 20, fargateLaunch: { burst: 100, refillPerSecond: 20 }, startExecution: { burst: 1300, refillPerSecond: 300 } });
  });
});
