import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fmt, type Report } from './report';
import { loadScenario } from './scenario';
import { progressBar } from './progress';
import { simulate } from './simulate';
import type { DesignName } from './world';

/**
 * Runs the three designs on the same scenarios, one after the other (one heavy run at a time), and prints one
 * table side by side. The semaphore design runs on burst-1k-60s: on burst-10k its Wait loop alone would be tens of
 * millions of DynamoDB requests and state transitions (see twin/README.md).
 */
const DEFAULT_PLAN: Array<[DesignName, string]> = [
  ['sluice', 'burst-10k'],
  ['naive', 'burst-10k'],
  ['sluice', 'burst-1k-60s'],
  ['semaphore', 'burst-1k-60s'],
];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { stage: { type: 'string', default: 'dev' }, plan: { type: 'string' }, out: { type: 'string', default: 'sim-out/bench' } } });
  const plan: Array<[DesignName, string]> = values.plan
    ? values.plan.split(',').map((item) => item.split(':') as [DesignName, string])
    : DEFAULT_PLAN;
  const rows: Array<{ design: string; scenario: string; report: Report & { wallSeconds: number } }> = [];
  for (const [design, scenarioName] of plan) {
    const scenario = loadScenario(join(__dirname, 'scenarios', `${scenarioName}.json`));
    const bar = progressBar(`${design}/${scenarioName}`);
    const { report } = await simulate({ stage: values.stage!, scenario, design, outDir: join(values.out!, `${design}-${scenarioName}`), onProgress: (p) => bar.update(p) });
    bar.finish();
    rows.push({ design, scenario: scenarioName, report });
  }
  console.log(table(rows));
}

export function table(rows: Array<{ design: string; scenario: string; report: Report & { wallSeconds: number } }>): string {
  const lines: Array<[string, (r: Report & { wallSeconds: number }) => string]> = [
    ['objects', (r) => String(r.objects)],
    ['succeeded / failed / lost / DLQ', (r) => `${r.succeeded} / ${r.failed} / ${r.lost} / ${r.dlq}`],
    ['jobs run more than once', (r) => String(r.jobsRunMoreThanOnce)],
    ['makespan', (r) => fmt(r.makespanSeconds)],
    ['lower bound', (r) => fmt(r.lowerBoundSeconds)],
    // A makespan that ended in failures is not the time the work took: say so next to it.
    ['makespan / lower bound', (r) => r.makespanRatio.toFixed(3) + (r.failed > 0 ? ` (${r.failed} failed)` : '')],
    // The naive design has no limiter: the stage's budget is not its.
    ['peak vCPU (budget / quota)', (r) => `${r.peakVcpu} (${r.design === 'naive' ? 'none' : r.budgetVcpu} / ${r.accountVcpuQuota})`],
    ['RunTask calls', (r) => String(r.runTaskCalls)],
    ['throttles (+ StartExecution)', (r) => `${r.throttles.total} (+${r.throttles.startExecution})`],
    ['over vCPU limit / capacity errors', (r) => `${r.vcpuLimitErrors} / ${r.capacityErrors}`],
    ['state transitions (per object)', (r) => `${r.stateTransitions} (${r.stateTransitionsPerObject})`],
    ['Lambda invocations', (r) => String(r.lambdaInvocations)],
    ['DynamoDB writes / reads', (r) => `${r.dynamodbRequests.writes} / ${r.dynamodbRequests.reads}`],
    ['DynamoDB write / read units', (r) => `${r.dynamodbCapacityUnits.write} / ${r.dynamodbCapacityUnits.read}`],
    ['SQS requests', (r) => String(r.sqsRequests)],
    ['orchestration $ / 1k objects', (r) => r.costPer1000Objects.orchestration.toFixed(4)],
    ['admission latency median / p99', (r) => `${r.admissionLatencySeconds.median ?? '–'} s / ${r.admissionLatencySeconds.p99 ?? '–'} s`],
    ['wall time', (r) => `${r.wallSeconds.toFixed(1)} s`],
  ];
  const header = ['', ...rows.map((r) => `${r.design} (${r.scenario})`)];
  const body = lines.map(([label, f]) => [label, ...rows.map((r) => f(r.report))]);
  const all = [header, ...body];
  const widths = header.map((_, c) => Math.max(...all.map((row) => row[c].length)));
  const render = (row: string[]) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  return [render(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(render)].join('\n');
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`bench: ${(error as Error).message}`);
    process.exitCode = 1;
  });
}
