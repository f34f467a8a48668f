import { importGraph } from '../support/import-graph';

test('no module imports itself through others: each depends one way (a run-time cycle also leaves one side undefined while loading)', () => {
  const graph = importGraph();
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
      return;
    }
    state.set(file, 'open');
    for (const next of graph.get(file)?.files ?? []) visit(next, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  expect(cycles).toEqual([]);
});

test('every relative import names a file the graph can follow: an import it cannot see would pass the cycle and layering checks unseen', () => {
  const unresolved = [...importGraph()].flatMap(([file, imports]) => imports.unresolved.map((specifier) => `${file}: ${specifier}`));
  expect(unresolved).toEqual([]);
});
