import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
mkdirSync('dist', { recursive: true });
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';

/** Measures the wall time of synthesizing every stage in a fresh process, as `npm run synth` does. */
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function timeRuns(label: string, command: string, args: string[], beforeEach: () => void = () => undefined): void {
  const outdir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const times: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      beforeEach();
      const started = process.hrtime.bigint();
      const result = spawnSync(command, args, { env: { ...process.env, CDKTF_OUTDIR: outdir }, stdio: 'inherit' });
      if (result.status !== 0) throw new Error(`${label} failed with exit ${result.status}`);
      times.push(Number(process.hrtime.bigint() - started) / 1e9);
    }
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(
    `${label.padEnd(38)} median ${median.toFixed(2)} s   min ${times[0].toFixed(2)} s   max ${times[times.length - 1].toFixed(2)} s   (${RUNS} runs)`,
  );
}

// Inside the project, so the bundle resolves esbuild (kept external) from node_modules.
const bundleDir = mkdtempSync(join('dist', 'bench-'));
const bundle = join(bundleDir, 'main.js');
buildSync({ entryPoints: ['main.ts'], bundle: true, platform: 'node', target: 'node20', outfile: bundle, logLevel: 'error', external: ['esbuild'] });
console.log(`synth of every stage, fresh process each run, on ${cpus().length} cores:`);
timeRuns('tsx main.ts (what npm run synth runs)', 'npx', ['tsx', 'main.ts']);
// After a change to the Lambda code the handlers are bundled again (otherwise the cached zips are reused).
timeRuns('tsx main.ts, handlers re-bundled', 'npx', ['tsx', 'main.ts'], () => rmSync(join('dist', 'functions', 'inputs.json'), { force: true }));
timeRuns('node <esbuild bundle of main.ts>', process.execPath, [bundle]);
rmSync(bundleDir, { recursive: true, force: true });
