/**
 * Every counterexample the explorer found, replayed: the schedule (outside events and choices) that once broke an
 * invariant must now run to its end with every invariant holding.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LibraryBinding } from '../../explorer/engines';
import { ReplayChooser, runSchedule, type Context, type Counterexample } from '../../explorer/search';
import { explorerStage } from '../../explorer/stage';

const DIR = join(__dirname, '..', '..', 'explorer', 'counterexamples');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));

let ctx: Context;
beforeAll(() => {
  const es = explorerStage();
  const binding = new LibraryBinding();
  ctx = { es, binding, machine: binding.machine(es.stage.stateMachine.definition) };
});

test('there are counterexamples to replay', () => {
  expect(files.length).toBeGreaterThan(0);
});

test.each(files)('%s holds now', async (file) => {
  const found = JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Counterexample;
  const result = await runSchedule(ctx, found.script, found.seed, new ReplayChooser(found.choices));
  expect(result.violation).toBeUndefined();
  expect(result.settled).toBe(true);
});
