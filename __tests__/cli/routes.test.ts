/** What the commands know of a stage with routes: which queue a key goes back to, which prefixes a backfill may take. */
import { checkPrefix } from '../../cli/backfill';
import { canaryObject } from '../../cli/smoke';
import { intakeOf } from '../../cli/stage';
import { stageConfig } from '../../cli/stage';
import { routedDevConfig } from '../support/routed-stage';

const routed = routedDevConfig();

test("a key goes to its route's queue: the default route keeps the stage's own, another has its own", () => {
  expect(intakeOf(routed, 'incoming/a.json')).toEqual({ queueName: 'sluice-dev-intake', inputPrefix: 'incoming/', route: 'default' });
  expect(intakeOf(routed, 'bulk/2026/b.csv')).toEqual({ queueName: 'sluice-dev-intake-bulk', inputPrefix: 'bulk/', inputSuffix: '.csv', route: 'bulk' });
  expect(intakeOf(routed, 'elsewhere/c.csv')).toBeUndefined();
});

test('a stage without routes has one intake: its queue, prefix and suffix', () => {
  const dev = stageConfig('dev');
  expect(intakeOf(dev, 'incoming/a.csv')).toEqual({ queueName: 'sluice-dev-intake', inputPrefix: 'incoming/' });
  expect(intakeOf(dev, 'results/a.csv')).toBeUndefined();
});

test("a backfill takes a prefix inside one route's; outside every route it is refused with the stage's prefixes", () => {
  expect(checkPrefix(undefined, routed)).toBe('incoming/');
  expect(checkPrefix('bulk/2025/', routed)).toBe('bulk/2025/');
  expect(() => checkPrefix('elsewhere/', routed)).toThrow(
    "--prefix elsewhere/ is outside the stage's input prefixes (incoming/, bulk/): only objects there are jobs",
  );
});

test("the smoke test's canary lands under the stage's prefix with its route's suffix", () => {
  const withSuffix = { ...routed, routes: routed.routes!.map((r) => (r.name === 'default' ? { ...r, inputSuffix: '.csv' } : r)) };
  expect(canaryObject(withSuffix, 'stamp').key).toBe('incoming/_sluice-smoke/stamp.csv');
});
