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
}

main().catch((error) => {
  console.error(`simulate: ${(error as Error).message}`);
  console.error(USAGE);
  process.exitCode = 1;
});
