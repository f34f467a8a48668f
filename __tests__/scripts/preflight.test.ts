import { assessFargateQuota, assessLambdaConcurrency, reservedConcurrency } from '../../scripts/preflight';
import { stageConfig, synthStage } from '../support/synth';

describe('preflight: Lambda keeps 100 concurrent executions unreserved', () => {
  const { json } = synthStage('dev');
  const functions = reservedConcurrency(json).map((fn) => ({ ...fn, alreadyReserved: 0 }));

  test('reads what the stage reserves from its synthesized functions', () => {
    expect(reservedConcurrency(json)).toEqual([
      { functionName: 'sluice-dev-dispatcher', reserved: 1 },
      { functionName: 'sluice-dev-janitor', reserved: 1 },
    ]);
  });

  test("a new account's limit of 10 fails, and says which quota to raise and to what", () => {
    const finding = assessLambdaConcurrency({ concurrentExecutions: 10, unreservedConcurrentExecutions: 10 }, functions, 'eu-west-1');
    expect(finding.ok).toBe(false);
    expect(finding.detail).toContain('leaving 8');
    expect(finding.fix).toMatch(
      /to at least 102: aws service-quotas request-service-quota-increase --region eu-west-1 --service-code lambda --quota-code L-B99A9384 --desired-value 1000/,
    );
  });

  test('the default 1,000 passes; exactly 100 left passes; 99 left fails', () => {
    expect(assessLambdaConcurrency({ concurrentExecutions: 1000, unreservedConcurrentExecutions: 1000 }, functions, 'eu-west-1').ok).toBe(true);
    expect(assessLambdaConcurrency({ concurrentExecutions: 1000, unreservedConcurrentExecutions: 102 }, functions, 'eu-west-1').ok).toBe(true);
    expect(assessLambdaConcurrency({ concurrentExecutions: 1000, unreservedConcurrentExecutions: 101 }, functions, 'eu-west-1').ok).toBe(false);
  });

  test('a re-apply reserves nothing new: reservations already in place are not counted twice', () => {
    const existing = functions.map((fn) => ({ ...fn, alreadyReserved: fn.reserved }));
    expect(assessLambdaConcurrency({ concurrentExecutions: 102, unreservedConcurrentExecutions: 100 }, existing, 'eu-west-1').ok).toBe(true);
  });
});

describe('preflight: the Fargate quota the stage assumes', () => {
  const prod = stageConfig('prod');

  test('passes when the account has at least what the stage assumes', () => {
    expect(assessFargateQuota(prod, 'FARGATE', 400).ok).toBe(true);
  });

  test('a quota below the budget fails: lower the budget or raise the quota', () => {
    const finding = assessFargateQuota(prod, 'FARGATE', 6);
    expect(finding).toMatchObject({ ok: false, detail: expect.stringContaining('L-3032A538 is 6 vCPU') });
    expect(finding.fix).toMatch(/lower capacity.vcpuBudget to at most 6, or raise the quota: .*--quota-code L-3032A538/);
  });

  test('a quota above the budget but below what the config assumes asks to correct the config', () => {
    expect(assessFargateQuota(prod, 'FARGATE_SPOT', 200).fix).toMatch(/set capacity.accountVcpuQuota to 200 in environments\/prod.ts/);
  });
});
