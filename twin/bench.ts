import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fmt, type Report } from './report';
import { loadScenario } from './scenario';
import { progressBar } from './progress';
import { simulate } from './simulate';
import type { DesignName } from './world';

/**
 * Runs the designs on the scenarios, one after the other (one heavy run at a time), and prints one table side by
 * side. The semaphore design runs on burst-1k-60s and shared: on burst-10k its Wait loop alone would be tens of
 * millions of DynamoDB requests and state transitions (see twin/README.md). sluice runs on every scenario; the
 * baselines also on shared, where other workloads hold 50 vCPU of the account.
 *
 * Stage prod by default: the scenarios ask for budgets of 100 vCPU and more, and a stage's budget may not exceed
 * its own accountVcpuQuota (dev's is 6). `--stage` runs every row on another stage; `--plan design:scenario[:stage],…`
 * picks rows.
 */
const DEFAULT_PLAN: Array<[DesignName, string]> = [
  ['sluice', 'burst-10k'],
  ['naive', 'burst-10k'],
  ['sluice', 'burst-1k-60s'],
  ['semaphore', 'burst-1k-60s'],
  ['sluice', 'shared'],
  ['naive', 'shared'],
  ['semaphore', 'shared'],
  ['sluice', 'others-ramp'],
  ['sluice', 'scale'],
  ['sluice', 'ec2-throttling'],
  ['sluice', 'faults'],
];

const DEFAULT_STAGE = 'prod';

function parsePlan(plan: string | undefined, stage: string): Array<{ design: DesignName; scenario: string; stage: string }> {
  if (!plan) return DEFAULT_PLAN.map(([design, scenario]) => ({ design, scenario, stage }));
  return plan.split(',').map((item) => {
    const [design, scenario, rowStage] = item.split(':');
    return { design: design as DesignName, scenario, stage: rowStage || stage };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { stage: { type: 'string', default: DEFAULT_STAGE }, plan: { type: 'string' }, out: { type: 'string', default: 'sim-out/bench' } },
  });
  const rows: Array<{ design: string; scenario: string; report: Report & { wallSeconds: number } }> = [];
  for (const { design, scenario: scenarioName, stage } of parsePlan(values.plan, values.stage!)) {
    const scenario = loadScenario(join(__dirname, 'scenarios', `${scenarioName}.json`));
    const bar = progressBar(`${design}/${scenarioName}`);
    const { report } = await simulate({ stage, scenario, design, outDir: join(values.out!, `${design}-${scenarioName}`), onProgress: (p) => bar.update(p) });
    bar.finish();
    rows.push({ design, scenario: scenarioName, report });
  }
  console.log(table(rows));
}

function table(rows: Array<{ design: string; scenario: string; report: Report & { wallSeconds: number } }>): string {
  const lines: Array<[string, (r: Report & { wallSeconds: number }) => string]> = [
    ['stage', (r) => r.stage],
    ['objects', (r) => String(r.objects)],
    ['succeeded / failed / lost / DLQ', (r) => `${r.succeeded} / ${r.failed} / ${r.lost} / ${r.dlq}`],
    ['jobs run more than once', (r) => String(r.jobsRunMoreThanOnce)],
    ['jobs run twice (or overlapping)', (r) => String(r.jobsRunTwice)],
    ['makespan', (r) => fmt(r.makespanSeconds)],
    ['lower bound', (r) => fmt(r.lowerBoundSeconds)],
    // A makespan that ended in failures is not the time the work took: say so next to it.
    ['makespan / lower bound', (r) => r.makespanRatio.toFixed(3) + (r.failed > 0 ? ` (${r.failed} failed)` : '')],
    // The naive design has no limiter: the stage's budget is not its.
    ['peak vCPU (budget / quota)', (r) => `${r.peakVcpu} (${r.design === 'naive' ? 'none' : r.budgetVcpu} / ${r.accountVcpuQuota})`],
    ['effective budget min / median', (r) => (r.design === 'naive' ? '–' : `${r.effectiveBudget.min} / ${r.effectiveBudget.median}`)],
    ['account peak On-Demand / Spot (with others)', (r) => `${r.peakAccountVcpu.onDemand} / ${r.peakAccountVcpu.spot}`],
    ['RunTask calls', (r) => String(r.runTaskCalls)],
    ['throttles (+ StartExecution)', (r) => `${r.throttles.total} (+${r.throttles.startExecution})`],
    [
      'over vCPU limit (share of RunTask) / capacity errors',
      (r) => `${r.vcpuLimitErrors} (${(r.vcpuLimitShareOfRunTaskCalls * 100).toFixed(1)} %) / ${r.capacityErrors}`,
    ],
    ['RunTask InvalidParameter (EC2 throttled)', (r) => String(r.invalidParameterErrors)],
    [
      'injected crashes / StartExecution 5xx / DynamoDB throttles',
      (r) =>
        `${r.injectedFaults.dispatcherCrashes + r.injectedFaults.janitorCrashes} / ${r.injectedFaults.startExecutionErrors} / ${r.injectedFaults.dynamodbThrottles}`,
    ],
    ['leaked batches (longest)', (r) => `${r.leaks} (${r.maxLeakSeconds} s)`],
    ['state transitions (per object)', (r) => `${r.stateTransitions} (${r.stateTransitionsPerObject})`],
    ['Lambda invocations', (r) => String(r.lambdaInvocations)],
    ['DynamoDB writes / reads', (r) => `${r.dynamodbRequests.writes} / ${r.dynamodbRequests.reads}`],
    ['DynamoDB write / read units', (r) => `${r.dynamodbCapacityUnits.write} / ${r.dynamodbCapacityUnits.read}`],
    ['DynamoDB write units per object', (r) => String(r.writeUnitsPerObject)],
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
