import { TerraformResource } from 'cdktf';
import { previousPath } from '../../modules/moved';
import { STAGES, resourcesOf, synthStage } from '../support/synth';

test('a construct that moved maps to the path it had, with everything under it; others did not move', () => {
  expect(previousPath(['admission', 'dispatcher', 'function'])).toEqual(['dispatch', 'dispatcher', 'function']);
  expect(previousPath(['janitor', 'janitor-every-5-minutes-rule'])).toEqual(['dispatch', 'janitor-every-5-minutes-rule']);
  expect(previousPath(['intake', 'dispatch-on-upload-target'])).toEqual(['dispatch', 'dispatch-on-upload-target']);
  expect(previousPath(['intake', 'to-queue'])).toBeUndefined();
  expect(previousPath(['admission-extra'])).toBeUndefined();
});

describe.each(STAGES)('stage %s: resources that moved keep their state', (stage) => {
  const { stack, json } = synthStage(stage);
  const moved = json.moved ?? [];
  const addresses = new Set(Object.entries(json.resource ?? {}).flatMap(([type, byName]) => Object.keys(byName).map((name) => `${type}.${name}`)));

  test('every resource of the split constructs has a moved block from its address under Dispatch, to itself', () => {
    const uploadWakeUp = ['dispatch-on-upload-target', 'dispatch-on-upload-permission'].map((id) => stack.intake.node.findChild(id));
    const underMovedConstructs = [...stack.admission.node.findAll(), ...stack.janitor.node.findAll(), ...uploadWakeUp]
      .filter(TerraformResource.isTerraformResource)
      .map((r) => `${r.terraformResourceType}.${r.friendlyUniqueId}`);
    expect(underMovedConstructs.length).toBeGreaterThan(0);
    expect(moved.map((m) => m.to).sort()).toEqual(underMovedConstructs.sort());
    for (const { from, to } of moved) {
      expect(addresses.has(to)).toBe(true);
      expect(addresses.has(from)).toBe(false);
      expect(from.split('.')[0]).toBe(to.split('.')[0]);
      expect(from.split('.')[1]).toMatch(/^dispatch_/);
    }
    // cdktf's naming of the old path gives the address the stage was applied with before the split.
    expect(moved).toContainEqual({
      from: 'aws_lambda_function.dispatch_dispatcher_function_F61E753E',
      to: expect.stringMatching(/^aws_lambda_function\.admission_dispatcher_function_/),
    });
  });

  test("the functions' code keeps its folder, so the move changes no function", () => {
    const filenames = resourcesOf(json, 'aws_lambda_function').map(([, f]) => String(f.filename));
    expect(filenames).toHaveLength(4);
    for (const filename of filenames) expect(filename).toMatch(/^assets\/dispatch_(dispatcher|janitor|configure-pool|capacity)_code_[0-9A-F]{8}\//);
  });
});
