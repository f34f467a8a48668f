/**
 * Every counterexample the explorer found, replayed: the schedule (outside events and choices) that once broke an
 * invariant must now run to its end with every invariant holding.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LibraryBinding } from '../../explorer/engines';
import { ReplayChooser, runSchedule, type Context, type Counterexample } from '../../explorer/search';
import { explorerStage, shapeOf } from '../../explorer/stage';

const DIR = join(__dirname, '..', '..', 'explorer', 'counterexamples');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));

/** The stage a counterexample was found on: plain, with routes, or packed. */
const contexts = new Map<string, Context>();
function contextFor(found: Counterexample): Context {
  const key = found.routes ? 'routes' : found.packed ? 'packed' : 'plain';
  if (!contexts.has(key)) {
    const es = explorerStage(shapeOf(found));
    const binding = new LibraryBinding();
    contexts.set(key, { es, binding, machine: binding.machine(es.stage.stateMachine.definition) });
  }
  return contexts.get(key)!;
}

test('there are counterexamples to replay, on both stages', () => {
  expect(files.length).toBeGreaterThan(0);
  expect(files.some((f) => (JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Counterexample).routes)).toBe(true);
});

test.each(files)('%s holds now', async (file) => {
  const found = JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Counterexample;
  const result = await runSchedule(contextFor(found), found.script, found.seed, new ReplayChooser(found.choices));
  expect(result.violation).toBeUndefined();
  expect(result.settled).toBe(true);
});
