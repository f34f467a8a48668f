import { accountView, usageMetric } from '../../functions/capacity';
import { capacitySettingsFromEnv } from '../../functions/environment';

describe('what the account leaves the stage (the capacity reader’s arithmetic)', () => {
  test('quota minus what others use, others being the account’s use minus this stage’s own', () => {
    // 120 vCPU quota; the account runs 80, of which this stage's 30: others use 50, the stage may hold 70.
    const view = accountView({ FARGATE: { quotaVcpu: 120, usedVcpu: 80 } }, { FARGATE: 1 }, { FARGATE: 30 }, 1_000);
    expect(view).toEqual({ freeVcpu: 70, readAt: 1_000, classes: { FARGATE: { quotaVcpu: 120, usedVcpu: 80, othersVcpu: 50 } } });
  });

  test('two classes add up: each batch goes where there is room, so a full class does not shrink the other', () => {
    // On-Demand leaves 100, Spot 30, whatever the weights: the stage may hold 130 (a fixed 1:3 split would hold 40).
    const view = accountView(
      { FARGATE: { quotaVcpu: 100, usedVcpu: 0 }, FARGATE_SPOT: { quotaVcpu: 100, usedVcpu: 70 } },
      { FARGATE: 1, FARGATE_SPOT: 3 },
      {},
      1,
    );
    expect(view.freeVcpu).toBe(130);
  });

  test('others per class are the class’s use minus the stage’s own there, not a weighted guess', () => {
    // The stage runs 40 in Spot and none On-Demand: Spot's 70 in use leave others 30 there, On-Demand's 20 are all others'.
    const view = accountView(
      { FARGATE: { quotaVcpu: 100, usedVcpu: 20 }, FARGATE_SPOT: { quotaVcpu: 100, usedVcpu: 70 } },
      { FARGATE: 1, FARGATE_SPOT: 1 },
      { FARGATE_SPOT: 40 },
      1,
    );
    expect(view.classes).toEqual({
      FARGATE: { quotaVcpu: 100, usedVcpu: 20, othersVcpu: 20 },
      FARGATE_SPOT: { quotaVcpu: 100, usedVcpu: 70, othersVcpu: 30 },
    });
    expect(view.freeVcpu).toBe(80 + 70);
  });

  test('a class with weight 0 is not placed in, and does not count', () => {
    const view = accountView(
      { FARGATE: { quotaVcpu: 100, usedVcpu: 0 }, FARGATE_SPOT: { quotaVcpu: 100, usedVcpu: 0 } },
      { FARGATE: 0, FARGATE_SPOT: 1 },
      {},
      1,
    );
    expect(view).toMatchObject({ freeVcpu: 100, classes: { FARGATE_SPOT: { quotaVcpu: 100 } } });
    expect(view.classes.FARGATE).toBeUndefined();
  });

  test('no datapoint yet (nothing ran in the last minutes) counts as no use', () => {
    expect(accountView({ FARGATE_SPOT: { quotaVcpu: 6, usedVcpu: undefined } }, { FARGATE_SPOT: 1 }, {}, 1).freeVcpu).toBe(6);
  });

  test('the stage’s own use never makes others negative, whatever the metric’s lag', () => {
    const view = accountView({ FARGATE: { quotaVcpu: 10, usedVcpu: 2 } }, { FARGATE: 1 }, { FARGATE: 8 }, 1);
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
    expect(() => capacitySettingsFromEnv({ TABLE_NAME: 't', CAPACITY_WEIGHTS: '{"FARGATE":0}' })).toThrow(/with a weight above 0/);
  });
});
