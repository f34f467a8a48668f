import { importGraph, type Imports } from '../support/import-graph';

/**
 * Every import points down. From the bottom: functions/ (the Lambda code) and task-image/src/ (the worker);
 * environments/ (the stage configs, names and settings: pure data and functions); modules/ (the constructs);
 * synth/ (reading, running and tearing down synthesized stacks); then what uses them: cli/, twin/, explorer/, and the
 * entry points scripts/ and verify/. functions/ imports only functions/: what a Lambda bundle holds is its own code and
 * its packages, and environments/ may import functions/ (its checks use the functions' limits), not the reverse.
 *
 * A rule covers the files under `files` (`*`: every file outside the rule's forbidden folders) and forbids project
 * folders (`modules/`) and packages (`npm:cdktf`): anything one of its files imports, or (`transitively`) loads
 * through files outside its folder. `onlyWithin` forbids every project file outside the listed folders.
 */
interface Rule {
  readonly files: string;
  readonly forbidden: readonly string[];
  readonly onlyWithin?: readonly string[];
  readonly transitively: boolean;
  readonly why: string;
}

/** What synthesizing loads: the CDKTF packages and the bundler behind the functions' assets. */
const CONSTRUCT_PACKAGES = ['npm:cdktf', 'npm:constructs', 'npm:@cdktf/', 'npm:esbuild'];
const TOOLS = ['synth/', 'cli/', 'twin/', 'explorer/', 'scripts/', 'verify/', 'task-image/testing/', 'task-image/scripts/', '__tests__/'];

const RULES: readonly Rule[] = [
  {
    files: 'functions/',
    forbidden: CONSTRUCT_PACKAGES,
    onlyWithin: ['functions/'],
    transitively: false,
    why: 'the Lambda bundles hold only functions/ and their packages',
  },
  {
    files: 'task-image/src/',
    forbidden: CONSTRUCT_PACKAGES,
    onlyWithin: ['task-image/src/'],
    transitively: false,
    why: 'the image build copies only task-image/src/',
  },
  {
    files: 'environments/',
    forbidden: ['modules/', ...TOOLS, ...CONSTRUCT_PACKAGES, 'npm:@aws-sdk/'],
    transitively: true,
    why: 'the stage config is data: everything else reads it, and loading it loads no constructs and no AWS SDK',
  },
  {
    files: 'modules/',
    forbidden: TOOLS,
    transitively: true,
    why: 'the constructs sit under the tools that synthesize, run or test them',
  },
  {
    files: 'synth/',
    forbidden: TOOLS.filter((folder) => folder !== 'synth/'),
    transitively: true,
    why: 'synth/ is the library scripts/, verify/ and the twin share; it depends on none of them',
  },
  {
    files: 'cli/',
    forbidden: ['modules/', 'synth/', 'twin/', 'explorer/', 'scripts/', 'verify/', '__tests__/', ...CONSTRUCT_PACKAGES],
    transitively: true,
    why: 'the sluice command works from the stage config and the functions alone: it loads no constructs (its bundle stays small)',
  },
  {
    files: 'twin/',
    forbidden: ['cli/', 'explorer/', 'scripts/', 'verify/', '__tests__/'],
    transitively: true,
    why: 'the twin is a library of its own, not an entry point',
  },
  {
    files: 'explorer/',
    forbidden: ['scripts/', 'verify/', '__tests__/'],
    transitively: true,
    why: 'the explorer builds on the twin and runs the operator commands (cli/) as actors, never the entry points',
  },
  { files: 'scripts/', forbidden: ['verify/', '__tests__/'], transitively: true, why: 'scripts/ and verify/ are entry points: what they share is in synth/' },
  { files: 'verify/', forbidden: ['scripts/', '__tests__/'], transitively: true, why: 'scripts/ and verify/ are entry points: what they share is in synth/' },
  { files: '*', forbidden: ['__tests__/'], transitively: false, why: 'tests depend on the code, never the reverse' },
];

function matches(target: string, entry: string): boolean {
  return target === entry || target.startsWith(entry.endsWith('/') ? entry : `${entry}/`);
}

function breaks(rule: Rule, target: string): boolean {
  if (rule.forbidden.some((entry) => matches(target, entry))) return true;
  return rule.onlyWithin !== undefined && !target.startsWith('npm:') && !rule.onlyWithin.some((folder) => matches(target, folder));
}

function inScope(rule: Rule, file: string): boolean {
  return rule.files === '*' ? !rule.forbidden.some((entry) => matches(file, entry)) : matches(file, rule.files);
}

function targetsOf(imports: Imports): string[] {
  return [...imports.files, ...imports.packages.map((p) => `npm:${p}`)];
}

/** The first chain from `start` (outside the rule's folder) to something the rule forbids, through files outside its folder. */
function forbiddenChain(rule: Rule, graph: Map<string, Imports>, start: string): string[] | undefined {
  const previous = new Map<string, string | undefined>([[start, undefined]]);
  const queue = [start];
  const chainTo = (target: string) => {
    const chain = [target];
    for (let at = previous.get(target); at !== undefined; at = previous.get(at)) chain.unshift(at);
    return chain;
  };
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const target of targetsOf(graph.get(file) ?? { files: [], packages: [], unresolved: [] })) {
      if (previous.has(target)) continue;
      previous.set(target, file);
      if (breaks(rule, target)) return chainTo(target);
      if (!target.startsWith('npm:') && !inScope(rule, target)) queue.push(target);
    }
  }
  return undefined;
}

/** Every import that breaks a rule: the file, the import (and what it loads), the rule and why. */
function violations(graph: Map<string, Imports>, rules: readonly Rule[]): string[] {
  const found: string[] = [];
  for (const rule of rules) {
    const who = rule.files === '*' ? `every file outside ${rule.forbidden.join(', ')}` : rule.files;
    const says = `${who} must not load ${[...rule.forbidden, ...(rule.onlyWithin ? [`anything outside ${rule.onlyWithin.join(', ')}`] : [])].join(', ')}`;
    for (const [file, imports] of graph) {
      if (!inScope(rule, file)) continue;
      for (const target of targetsOf(imports)) {
        if (breaks(rule, target)) {
          found.push(`${file} imports ${target}: ${says} (${rule.why})`);
          continue;
        }
        if (!rule.transitively || target.startsWith('npm:') || inScope(rule, target)) continue;
        const chain = forbiddenChain(rule, graph, target);
        if (chain) found.push(`${file} imports ${target}, which loads ${chain.at(-1)} (${chain.join(' → ')}): ${says} (${rule.why})`);
      }
    }
  }
  return found;
}

const graph = importGraph();

test('every import points down: no file imports (or loads through others) what its layer must not', () => {
  expect(violations(graph, RULES)).toEqual([]);
});

test('each rule covers files that exist, and the graph sees package imports', () => {
  for (const rule of RULES.filter((r) => r.files !== '*')) expect([...graph.keys()].some((file) => matches(file, rule.files))).toBe(true);
  expect(graph.get('modules/stack.ts')?.packages).toContain('cdktf');
});

describe('the rules catch the imports they forbid', () => {
  const withImport = (file: string, target: string): Map<string, Imports> => {
    const copy = new Map(graph);
    const imports = copy.get(file)!;
    copy.set(
      file,
      target.startsWith('npm:') ? { ...imports, packages: [...imports.packages, target.slice(4)] } : { ...imports, files: [...imports.files, target] },
    );
    return copy;
  };

  test.each([
    ['environments/bootstrap-schema.ts', 'modules/bootstrap.ts', 'environments/ must not load modules/'],
    ['cli/pool.ts', 'modules/admission.ts', 'cli/ must not load modules/'],
    ['cli/stage.ts', 'npm:cdktf', 'cli/ must not load'],
    ['functions/jobs.ts', 'environments/index.ts', 'functions/ must not load'],
    ['twin/wiring.ts', 'scripts/stages.ts', 'twin/ must not load'],
    ['verify/run.ts', 'scripts/stages.ts', 'verify/ must not load'],
    ['scripts/check-cdk-terrain.ts', 'verify/moto.ts', 'scripts/ must not load'],
    ['task-image/scripts/bench-worker.ts', '__tests__/support/clocks.ts', 'every file outside __tests__/ must not load __tests__/'],
    ['modules/iam.ts', 'task-image/testing/s3-harness.ts', 'modules/ must not load'],
    ['twin/wiring.ts', 'cli/stage.ts', 'twin/ must not load'],
    ['explorer/world.ts', 'scripts/teardown.ts', 'explorer/ must not load'],
  ])('%s importing %s', (file, target, rule) => {
    const found = violations(withImport(file, target), RULES);
    expect(found).toContainEqual(expect.stringContaining(`${file} imports ${target}`));
    expect(found).toContainEqual(expect.stringContaining(rule));
  });

  test('through other files: a file outside cli/ that loads the constructs', () => {
    const found = violations(withImport('environments/names.ts', 'modules/iam.ts'), RULES);
    expect(found).toContainEqual(
      expect.stringContaining('cli/stage.ts imports environments/names.ts, which loads modules/iam.ts (environments/names.ts → modules/iam.ts): cli/'),
    );
  });
});
