/** What the commands know of a stage with routes: which queue a key goes back to, which prefixes a backfill may take. */
import { checkPrefix } from '../../cli/backfill';
import { canaryObject } from '../../cli/smoke';
import { intakeOfKey, intakeUnder } from '../../cli/stage';
import { EXIT, stageConfig, type StageClients } from '../../cli/stage';
import { resize } from '../../cli/pool';
import { configurePoolSettingsOf } from '../../environments/function-settings';
import { routedDevConfig } from '../support/routed-stage';

const routed = routedDevConfig();

test("a key goes to its route's queue: the default route keeps the stage's own, another has its own", () => {
  expect(intakeOfKey(routed, 'incoming/a.json')).toEqual({ queueName: 'sluice-dev-intake', inputPrefix: 'incoming/', route: 'default' });
  expect(intakeOfKey(routed, 'bulk/2026/b.csv')).toEqual({ queueName: 'sluice-dev-intake-bulk', inputPrefix: 'bulk/', inputSuffix: '.csv', route: 'bulk' });
  expect(intakeOfKey(routed, 'elsewhere/c.csv')).toBeUndefined();
  // A key under a route's prefix without its suffix is no upload of that route (its rule never matched it).
  expect(intakeOfKey(routed, 'bulk/2026/b.json')).toBeUndefined();
  // A prefix (a backfill's) lies under the route whatever the suffix.
  expect(intakeUnder(routed, 'bulk/2026/')).toMatchObject({ route: 'bulk', inputSuffix: '.csv' });
});

test('a stage without routes has one intake: its queue, prefix and suffix', () => {
  const dev = stageConfig('dev');
  expect(intakeOfKey(dev, 'incoming/a.csv')).toEqual({ queueName: 'sluice-dev-intake', inputPrefix: 'incoming/' });
  expect(intakeOfKey(dev, 'results/a.csv')).toBeUndefined();
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

test("resize refuses a budget that leaves a route no room for its task beside the others' reserves, before any AWS call; a pause is always allowed", async () => {
  const stg = stageConfig('stg');
  const reserving = { ...stg, routes: stg.routes!.map((r) => (r.name === 'default' ? { ...r, reservedVcpu: 2 } : r)) };
  const noClients = {} as StageClients;
  await expect(resize(noClients, reserving, { vcpu: 2 }, 0)).rejects.toMatchObject({
    message: expect.stringMatching(
      /^invalid pool settings: route 'urgent' could never run its task \(0.5 vCPU\): the other routes reserve 2 of --vcpu's 2 vCPU; route 'small' could never run its task \(1 vCPU\): the other routes reserve 2 of --vcpu's 2 vCPU$/,
    ),
    exitCode: EXIT.usage,
  });
  // Budget 0 pauses: no route runs anything, and none is meant to. It gets as far as reading the pool.
  await expect(resize(noClients, reserving, { vcpu: 0 }, 0)).rejects.not.toMatchObject({ exitCode: EXIT.usage });
});

test("the pool's sweep bound counts the smallest task any route runs", () => {
  expect(configurePoolSettingsOf(stageConfig('stg'), 't').taskVcpu).toBe(0.5);
  expect(configurePoolSettingsOf(stageConfig('dev'), 't').taskVcpu).toBe(1);
});
