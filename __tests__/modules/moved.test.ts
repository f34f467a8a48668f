import { MOVED_RESOURCES } from '../../modules/moved';
import { STAGES, synthStage } from '../support/synth';

test('each address a resource moves from is named once: two blocks from one address are ambiguous to Terraform', () => {
  const from = [...MOVED_RESOURCES.values()];
  expect(new Set(from).size).toBe(from.length);
  expect(from).toHaveLength(32);
});

describe.each(STAGES)('stage %s: resources that moved keep their state', (stage) => {
  const { json } = synthStage(stage);
  const moved = json.moved ?? [];
  const addresses = new Set(Object.entries(json.resource ?? {}).flatMap(([type, byName]) => Object.keys(byName).map((name) => `${type}.${name}`)));

  test('every moved resource is still where the table says (a construct renamed again would lose its state), from an address nothing declares', () => {
    expect(moved.map((m) => m.from).sort()).toEqual([...MOVED_RESOURCES.values()].sort());
    for (const { from, to } of moved) {
      expect(addresses.has(to)).toBe(true);
      expect(addresses.has(from)).toBe(false);
      expect(from.split('.')[0]).toBe(to.split('.')[0]);
    }
    expect(moved).toContainEqual({
      from: 'aws_lambda_function.dispatch_dispatcher_function_F61E753E',
      to: expect.stringMatching(/^aws_lambda_function\.admission_dispatcher_function_/),
    });
  });
});
