import { accountView, usageMetric } from '../../functions/capacity';
import { capacitySettingsFromEnv } from '../../functions/environment';

describe('what the account leaves the stage (the capacity reader’s arithmetic)', () => {
  test('quota minus what others use, others being the account’s use minus this stage’s own', () => {
    // 120 vCPU quota; the account runs 80, of which this stage's 30: others use 50, the stage may hold 70.
    const view = accountView({ FARGATE: { quotaVcpu: 120, usedVcpu: 80 } }, { FARGATE: 1 }, 30, 1_000);
    expect(view).toEqual({ freeVcpu: 70, readAt: 1_000, classes: { FARGATE: { quotaVcpu: 120, usedVcpu: 80, othersVcpu: 50 } } });
  });

  test('split over two classes, the tightest decides: its share of the stage’s tasks must fit what others leave there', () => {
    // Three quarters of the tasks go to Spot. On-Demand leaves 100 (one quarter: room for 400); Spot leaves 30
    // (three quarters: room for 40). The stage may hold 40.
    const view = accountView(
      { FARGATE: { quotaVcpu: 100, usedVcpu: 0 }, FARGATE_SPOT: { quotaVcpu: 100, usedVcpu: 70 } },
      { FARGATE: 1, FARGATE_SPOT: 3 },
      0,
      1,
    );
    expect(view.freeVcpu).toBe(40);
  });

  test('no datapoint yet (nothing ran in the last minutes) counts as no use', () => {
    expect(accountView({ FARGATE_SPOT: { quotaVcpu: 6, usedVcpu: undefined } }, { FARGATE_SPOT: 1 }, 0, 1).freeVcpu).toBe(6);
  });

  test('the stage’s own use never makes others negative, whatever the metric’s lag', () => {
    const view = accountView({ FARGATE: { quotaVcpu: 10, usedVcpu: 2 } }, { FARGATE: 1 }, 8, 1);
    expect(view).toMatchObject({ freeVcpu: 10, classes: { FARGATE: { othersVcpu: 0 } } });
  });

  test('the metric asked for is AWS/Usage ResourceCount of Fargate vCPU, per class', () => {
    expect(usageMetric('FARGATE_SPOT')).toEqual({
      Namespace: 'AWS/Usage',
      MetricName: 'ResourceCount',
      Dimensions: [
        { Name: 'Service', Value: 'Fargate' },
        { Name: 'Type', Value: 'Resource' },
        { Name: 'Resource', Value: 'vCPU' },
        { Name: 'Class', Value: 'Standard/Spot' },
      ],
    });
  });

  test('the function’s settings: weights per provider, one or both', () => {
    expect(capacitySettingsFromEnv({ TABLE_NAME: 't', CAPACITY_WEIGHTS: '{"FARGATE_SPOT":1}' })).toEqual({ tableName: 't', weights: { FARGATE_SPOT: 1 } });
    expect(() => capacitySettingsFromEnv({ TABLE_NAME: 't', CAPACITY_WEIGHTS: '{"EC2":1}' })).toThrow(/CAPACITY_WEIGHTS: must be JSON like/);
  });
});
