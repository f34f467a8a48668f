import { drainBeforeTeardown } from '../../scripts/teardown';
import { stageConfig } from '../support/synth';

describe('teardown: the stage is drained first, and nothing is destroyed while it runs', () => {
  const dev = stageConfig('dev');
  test('sluice drain runs for the stage with the timeout; drained, the teardown goes on', () => {
    const calls: string[][] = [];
    expect(drainBeforeTeardown(dev, '70m', (_command, args) => (calls.push([...args]), 0))).toBeUndefined();
    expect(calls).toEqual([[expect.stringMatching(/bin\/sluice\.cjs$/), 'drain', '--stage', 'dev', '--timeout', '70m']]);
  });

  test('still running after the timeout (drain exits 4): refused, with how to see what runs', () => {
    expect(drainBeforeTeardown(dev, '70m', () => 4)).toMatch(
      /stage dev still runs after 70m of draining: wait for its tasks \(npx sluice status --stage dev\)/,
    );
  });

  test('a drain that fails otherwise (the table is gone, say): refused, naming --skip-drain', () => {
    expect(drainBeforeTeardown(dev, '70m', () => 1)).toMatch(/could not drain stage dev \(sluice drain exited 1\); .* --skip-drain/);
  });
});
