import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fmt, routeLines, routeShares, type Report } from './report';
import { loadScenario } from './scenario';
import { progressBar } from './progress';
import { simulate } from './simulate';
import { BAD_INPUT_FAILURE, type DesignName } from './world';

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
  ['sluice', 'others-on-demand'],
  ['sluice', 'spot-short'],
  ['sluice', 'scale'],
  ['sluice', 'scale-6k'],
  ['sluice', 'ec2-throttling'],
  ['sluice', 'faults'],
  ['sluice', 'routes-faults'],
  ['sluice', 'routes-shares'],
  ['sluice', 'routes-trickle'],
  ['sluice', 'routes-trickle-reserved'],
  ['sluice', 'routes-trickle-fifo'],
  ['sluice', 'routes-priority'],
  ['sluice', 'routes-priority-reserved'],
  ['sluice', 'routes-cap'],
  ['sluice', 'routes-mixed'],
  ['sluice', 'short-tasks'],
  ['sluice', 'short-tasks-packed'],
  ['sluice', 'faults-packed'],
];

const DEFAULT_STAGE = 'prod';

function parsePlan(plan: string | undefined, stage: string): Array<{ design: DesignName; scenario: string; stage: string }> {
  if (!plan) return DEFAULT_PLAN.map(([design, scenario]) => ({ design, scenario, stage }));
  return plan.split(',').map((item) => {
    const [design, scenario, rowStage] = item.split(':');
    return { design: design as DesignName, scenario, stage: rowStage || stage };
  });
}

/**
 * Scenarios that inject faults into the pipeline's own parts or ECS's answers: run on many seeds, since one seed
 * proves one seed. The table shows the worst seed's run; a line per scenario sums up every seed.
 */
const FAULT_SCENARIOS = new Set(['faults', 'ec2-throttling', 'routes-faults', 'faults-packed']);
const DEFAULT_FAULT_SEEDS = 20;

type Row = { design: string; scenario: string; report: Report & { wallSeconds: number } };

/** What a run broke of DESIGN.md's promises, worst first; empty when it held them all. */
export function broken(report: Report): string[] {
  return [
    ...(report.stoppedBy !== 'settled' ? [`did not settle (${report.stoppedBy})`] : []),
    ...(report.lost > 0 ? [`${report.lost} lost`] : []),
    // An object of the scenario's bad input fails, and must (its own exit 65): no other failure is allowed.
    ...(report.failed - badInputFailures(report) > 0 ? [`${report.failed - badInputFailures(report)} failed`] : []),
    ...(report.jobsRunTwice > 0 ? [`${report.jobsRunTwice} run twice`] : []),
    ...(report.peakVcpu > report.budgetVcpu ? [`peak ${report.peakVcpu} vCPU over the budget of ${report.budgetVcpu}`] : []),
    ...Object.entries(report.routes).flatMap(([name, r]) =>
      r.maxVcpu !== undefined && r.peakVcpu > r.maxVcpu ? [`route ${name} peaked at ${r.peakVcpu} vCPU over its cap of ${r.maxVcpu}`] : [],
    ),
  ];
}

/** Failures for the scenario's own bad input: each object drawn bad exits 65, alone or in a packed task. */
function badInputFailures(report: Report): number {
  return report.failureReasons[BAD_INPUT_FAILURE] ?? 0;
}

/** The worse of two runs: more promises broken, then the longer makespan against its bound. */
function worse(a: Row, b: Row): Row {
  const [x, y] = [broken(a.report).length, broken(b.report).length];
  if (x !== y) return x > y ? a : b;
  return a.report.makespanRatio >= b.report.makespanRatio ? a : b;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      stage: { type: 'string', default: DEFAULT_STAGE },
      plan: { type: 'string' },
      out: { type: 'string', default: 'sim-out/bench' },
      seeds: { type: 'string', default: String(DEFAULT_FAULT_SEEDS) },
    },
  });
  const seeds = Number(values.seeds);
  if (!Number.isInteger(seeds) || seeds < 1) throw new Error(`--seeds takes how many seeds each fault scenario runs on (got '${values.seeds}')`);
  const rows: Row[] = [];
  const summaries: string[] = [];
  for (const { design, scenario: scenarioName, stage } of parsePlan(values.plan, values.stage!)) {
    const scenario = loadScenario(join(__dirname, 'scenarios', `${scenarioName}.json`));
    const runs = FAULT_SCENARIOS.has(scenarioName) ? Array.from({ length: seeds }, (_, i) => i + 1) : [scenario.seed];
    const seen: Array<Row & { seed: number }> = [];
    for (const seed of runs) {
      const bar = progressBar(`${design}/${scenarioName}${runs.length > 1 ? ` seed ${seed}` : ''}`);
      const outDir = join(values.out!, `${design}-${scenarioName}${runs.length > 1 ? `-seed${seed}` : ''}`);
      const { report } = await simulate({ stage, scenario: { ...scenario, seed }, design, outDir, onProgress: (p) => bar.update(p) });
      bar.finish();
      seen.push({ design, scenario: scenarioName, report, seed });
    }
    const worst = seen.reduce((a, b) => (worse(a, b) === a ? a : b));
    rows.push(runs.length > 1 ? { ...worst, scenario: `${scenarioName}, worst of seeds 1–${seeds}: ${worst.seed}` } : worst);
    if (runs.length > 1) summaries.push(summary(`${design} (${scenarioName})`, seen));
  }
  console.log(table(rows));
  for (const line of summaries) console.log(line);
  for (const row of rows.filter((r) => Object.keys(r.report.routes).length > 0)) {
    console.log(
      `${row.design} (${row.scenario}):\n${routeLines(row.report)
        .map((line) => `  ${line}`)
        .join('\n')}`,
    );
  }
  if (rows.some((r) => r.design === 'sluice' && broken(r.report).length > 0)) process.exitCode = 1;
}

/** One line for a fault scenario over its seeds: what held on every seed, and the spread of the makespan ratio. */
function summary(label: string, runs: ReadonlyArray<Row & { seed: number }>): string {
  const failing = runs.filter((r) => broken(r.report).length > 0);
  const ratios = runs.map((r) => r.report.makespanRatio).sort((a, b) => a - b);
  const median = ratios[Math.floor((ratios.length - 1) / 2)];
  const held =
    failing.length === 0
      ? `every seed settled, 0 lost, 0 failed (but the scenario's bad input), 0 run twice, peak ≤ budget${Object.keys(runs[0]?.report.routes ?? {}).length > 0 ? ', each route ≤ its cap' : ''}`
      : `${failing.length} seed(s) broke a promise: ${failing.map((r) => `seed ${r.seed}: ${broken(r.report).join(', ')}`).join('; ')}`;
  return `${label} on seeds 1–${runs.length}: ${held}; makespan / lower bound median ${median.toFixed(3)}, worst ${ratios[ratios.length - 1].toFixed(3)}`;
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
    ['launches / s while jobs waited', (r) => (r.launchesPerSecond === null ? '–' : r.launchesPerSecond.toFixed(2))],
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
      'injected crashes / StartExecution 5xx (+ after it started) / DynamoDB throttles',
      (r) =>
        `${r.injectedFaults.dispatcherCrashes + r.injectedFaults.janitorCrashes} / ${r.injectedFaults.startExecutionErrors} ` +
        `(+${r.injectedFaults.startExecutionLostAnswers}) / ${r.injectedFaults.dynamodbThrottles}`,
    ],
    ['leaked batches (longest)', (r) => `${r.leaks} (${r.maxLeakSeconds} s)`],
    ['state transitions (per object)', (r) => `${r.stateTransitions} (${r.stateTransitionsPerObject})`],
    ['Lambda invocations', (r) => String(r.lambdaInvocations)],
    ['DynamoDB writes / reads', (r) => `${r.dynamodbRequests.writes} / ${r.dynamodbRequests.reads}`],
    ['DynamoDB write / read units', (r) => `${r.dynamodbCapacityUnits.write} / ${r.dynamodbCapacityUnits.read}`],
    ['DynamoDB write units per object', (r) => String(r.writeUnitsPerObject)],
    ['SQS requests', (r) => String(r.sqsRequests)],
    ['start-up p50 / p99 (RunTask → RUNNING)', (r) => `${r.startup.p50 ?? '–'} s / ${r.startup.p99 ?? '–'} s`],
    [
      'Fargate $ / 1k objects (On-Demand + Spot)',
      (r) => `${r.fargateCostPer1k.total.toFixed(4)} (${r.fargateCostPer1k.onDemand.toFixed(4)} + ${r.fargateCostPer1k.spot.toFixed(4)})`,
    ],
    ['orchestration $ / 1k objects', (r) => r.orchestrationCostPer1k.total.toFixed(4)],
    ['admission latency median / p99', (r) => `${r.admissionLatencySeconds.median ?? '–'} s / ${r.admissionLatencySeconds.p99 ?? '–'} s`],
    ['per route: wait median / p99', (r) => perRoute(r, (f) => `${f.waitSeconds.median ?? '–'} / ${f.waitSeconds.p99 ?? '–'} s`)],
    ['per route: peak vCPU', (r) => perRoute(r, (f) => String(f.peakVcpu))],
    ['per route: makespan / bound on what the others left', (r) => perRoute(r, (f) => f.makespanRatio.toFixed(3))],
    [
      'per route: share while all had backlog (min–max)',
      (r) => perRoute(r, (_, name) => (routeShares(r)[name] ? `${pct(routeShares(r)[name].min)}–${pct(routeShares(r)[name].max)}` : '–')),
    ],
    ['wall time', (r) => `${r.wallSeconds.toFixed(1)} s`],
  ];
  const header = ['', ...rows.map((r) => `${r.design} (${r.scenario})`)];
  const body = lines.map(([label, f]) => [label, ...rows.map((r) => f(r.report))]);
  const all = [header, ...body];
  const widths = header.map((_, c) => Math.max(...all.map((row) => row[c].length)));
  const render = (row: string[]) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  return [render(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(render)].join('\n');
}

/** One figure per route, `name: figure` side by side; '–' for a run without routes. */
function perRoute(report: Report, figure: (route: Report['routes'][string], name: string) => string): string {
  const names = Object.keys(report.routes);
  return names.length === 0 ? '–' : names.map((name) => `${name}: ${figure(report.routes[name], name)}`).join('; ');
}

function pct(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`bench: ${(error as Error).stack ?? error}`);
    process.exitCode = 1;
  });
}
