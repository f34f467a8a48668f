import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** The README's "Follow one upload" rows: step, files, and the functions or states named in them. */
function traceRows(): Array<{ step: string; files: string[]; names: string[] }> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split('### Follow one upload')[1]?.split('\n## ')[0] ?? '';
  return section
    .split('\n')
    .filter((line) => /^\| \d\. /.test(line))
    .map((line) => {
      const [step, files, names] = line.split(' | ').map((cell) => cell.replace(/^\| |\s\|$/g, ''));
      const codes = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
      return { step, files: codes(files), names: codes(names) };
    });
}

test('the README traces one upload in at most six hops', () => {
  const rows = traceRows();
  expect(rows.length).toBeGreaterThan(0);
  expect(rows.length).toBeLessThanOrEqual(6);
});

test.each(traceRows().map((row) => [row.step, row] as const))('%s: its files exist and define what it names', (_step, row) => {
  for (const file of row.files) expect(existsSync(join(ROOT, file))).toBe(true);
  const sources = row.files.map((file) => readFileSync(join(ROOT, file), 'utf8')).join('\n');
  const missing = row.names.filter((name) => !new RegExp(`(function|class|const) ${name}\\b|'${name}'|${name}: '`).test(sources));
  expect(missing).toEqual([]);
});
