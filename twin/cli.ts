import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { summarize } from './report';
import { loadScenario } from './scenario';
import { progressBar } from './progress';
import { simulate } from './simulate';
import { DESIGNS, type DesignName } from './world';

const USAGE = `usage: npm run simulate -- [--stage dev] [--scenario twin/scenarios/demo.json] [--design sluice|naive|semaphore] [--out sim-out/<design>]`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      stage: { type: 'string', default: 'dev' },
      scenario: { type: 'string', default: join(__dirname, 'scenarios', 'demo.json') },
      design: { type: 'string', default: 'sluice' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!DESIGNS.includes(values.design as DesignName)) throw new Error(`--design must be one of ${DESIGNS.join(', ')} (got '${values.design}')`);
  if (!existsSync(values.scenario!)) throw new Error(`--scenario ${values.scenario}: no such file`);
  const design = values.design as DesignName;
  const scenario = loadScenario(values.scenario!);
  const outDir = values.out ?? join('sim-out', design);
  const bar = progressBar(design);
  const { report } = await simulate({ stage: values.stage!, scenario, design, outDir, onProgress: (p) => bar.update(p) });
  bar.finish();
  console.log(summarize(report, report.wallSeconds));
  console.log(`wrote ${join(outDir, 'events.jsonl')}, ${join(outDir, 'report.json')}, ${join(outDir, 'chart.svg')}`);
  if (report.stoppedBy !== 'settled') {
    const open = report.objects - report.succeeded - report.failed - report.dlq;
    console.error(
      `simulate: the run stopped (${report.stoppedBy}) before it settled: ${open} object(s) had not ended` +
        (report.stoppedBy === 'maxVirtualSeconds' ? ` within the scenario's maxVirtualSeconds (${scenario.maxVirtualSeconds} s)` : ''),
    );
    process.exitCode = 1;
  }
}

let finished = false;
// Node exits when nothing is left to run: a run whose promise waits on something that will never come (a sleep on
// the virtual clock outside its run, say) would end here, silently, with code 0. It must say so and fail.
process.on('beforeExit', () => {
  if (finished) return;
  finished = true;
  console.error('simulate: the run stopped before it settled or failed: nothing was left to run, yet it had not finished (a bug of the twin)');
  process.exitCode = 1;
});
process.on('unhandledRejection', (error) => {
  console.error(`simulate: an unhandled error ended the run: ${(error as Error)?.stack ?? error}`);
  process.exit(1);
});

main().then(
  () => (finished = true),
  (error) => {
    finished = true;
    console.error(`simulate: ${(error as Error).stack ?? error}`);
    process.exitCode = 1;
  },
);
