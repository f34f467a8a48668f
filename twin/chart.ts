import type { TwinEvent } from './engines/recorder';
import { accountOf, budgetOverTime, fmt, freeQuotaOverTime, type Report } from './report';

/** The SVG's size and the plot's margins inside it (px). */
const W = 1000;
const H = 460;
const m = { l: 60, r: 70, t: 50, b: 60 };
const pw = W - m.l - m.r;
const ph = H - m.t - m.b;
/** One column of values per pixel of the plot's width. */
const COLUMNS = pw;
const px = (b: number) => m.l + b;

/**
 * A standalone SVG: this stage's vCPU in use (blue step line, both classes) against the effective budget over time
 * (dashed red: what the limiter applied, from `budget` events; the configured budget without them) and the quota
 * the stage can actually use (dotted grey: quota − other workloads, summed over the classes its tasks go to), the
 * backlog (jobs arrived and not finished nor running, grey area, right axis), and throttles / vCPU-limit /
 * InvalidParameter rejections / capacity errors as red ticks along the bottom. Computed from the events only.
 * Each pixel column shows the highest vCPU in use and the lowest limit within it: a short dip is not lost. With
 * routes, each route's vCPU is a line of its own colour, named at its right end.
 */
export function renderChart(events: readonly TwinEvent[], report: Report): string {
  const tEnd = Math.max(1, report.virtualSeconds, ...events.slice(-1).map((e) => e.t));
  const x = (t: number) => Math.min(COLUMNS - 1, Math.max(0, Math.floor((t / tEnd) * COLUMNS)));
  const budgetMin = stepMinima(budgetOverTime(events, report.budgetVcpu), COLUMNS, x);
  const freeMin = stepMinima(freeQuotaOverTime(events, accountOf(events)), COLUMNS, x);
  const columns = columnsOf(events, x);
  const scales = scalesOf(tEnd, Math.max(report.budgetVcpu, report.peakVcpu, ...budgetMin, ...freeMin, 1) * 1.1, Math.max(1, ...columns.backlogMax) * 1.1);
  const same = (values: number[]) => values.every((v) => v === values[0]);
  const budgetLabel = same(budgetMin) ? `budget ${budgetMin[0]} vCPU` : `effective budget (${report.budgetVcpu} configured)`;
  const freeLabel = same(freeMin) ? `usable quota ${freeMin[0]}` : 'usable quota (quota − others)';
  return svgOf(titleOf(report), {
    grid: gridAndLabels(scales),
    backlog: backlogArea(columns.backlogMax, scales),
    freeQuota: limitLine(freeMin, '#888', '2,3', freeLabel, scales),
    budget: limitLine(budgetMin, '#d62728', '6,4', budgetLabel, scales),
    vcpu: stepPath(columns.vcpuMax, scales),
    routes: routeLines(columns.vcpuByRoute, scales),
    rejections: rejectionTicks(columns.marks),
  });
}

/** A colour per route, in the order of their names (then again from the first). */
const ROUTE_COLOURS = ['#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

/** Each route's vCPU in use as a line of its colour, labelled with its name at the right end. */
function routeLines(vcpuByRoute: ReadonlyMap<string, number[]>, scales: Scales): string {
  return [...vcpuByRoute.keys()]
    .sort()
    .map((route, i) => {
      const values = vcpuByRoute.get(route)!;
      const colour = ROUTE_COLOURS[i % ROUTE_COLOURS.length];
      const label = `<text x="${px(COLUMNS - 1) - 4}" y="${scales.yv(values[COLUMNS - 1]) - 4 - 12 * i}" text-anchor="end" fill="${colour}">${escape(route)}</text>`;
      return `<path d="${stepPath(values, scales)}" fill="none" stroke="${colour}" stroke-width="1.2"/>${label}`;
    })
    .join('');
}

/** Per pixel column: the highest vCPU in use, the highest backlog, and how many RunTask rejections. */
interface Columns {
  vcpuMax: number[];
  /** The highest vCPU each route's tasks held (empty without routes). */
  vcpuByRoute: Map<string, number[]>;
  backlogMax: number[];
  marks: number[];
}

/** Folds the events into pixel columns; a column no event falls in holds the values carried from the one before. */
function columnsOf(events: readonly TwinEvent[], x: (t: number) => number): Columns {
  const vcpuMax = new Array<number>(COLUMNS).fill(0);
  const backlogMax = new Array<number>(COLUMNS).fill(0);
  const marks = new Array<number>(COLUMNS).fill(0);
  const vcpuByRoute = new Map<string, number[]>();
  const counts: Counts = { vcpu: 0, byRoute: new Map(), arrived: 0, finished: 0, runningTasks: 0, seen: new Set(), done: new Set() };
  const note = (b: number) => {
    vcpuMax[b] = Math.max(vcpuMax[b], counts.vcpu);
    for (const [route, vcpu] of counts.byRoute) {
      if (!vcpuByRoute.has(route)) vcpuByRoute.set(route, new Array<number>(COLUMNS).fill(0));
      vcpuByRoute.get(route)![b] = Math.max(vcpuByRoute.get(route)![b], vcpu);
    }
    backlogMax[b] = Math.max(backlogMax[b], Math.max(0, counts.arrived - counts.finished - counts.runningTasks));
  };
  let lastBucket = 0;
  const carry = (upTo: number) => {
    for (let b = lastBucket + 1; b <= upTo; b++) note(b);
    lastBucket = Math.max(lastBucket, upTo);
  };
  for (const e of events) {
    const b = x(e.t);
    carry(b);
    if (countEvent(counts, e)) marks[b]++;
    note(b);
  }
  carry(COLUMNS - 1);
  return { vcpuMax, vcpuByRoute, backlogMax, marks };
}

/** What the chart follows as the events go by; a job counts once however often it arrives or ends. */
interface Counts {
  vcpu: number;
  /** vCPU per route, for the tasks whose events name one. */
  byRoute: Map<string, number>;
  arrived: number;
  finished: number;
  runningTasks: number;
  seen: Set<string>;
  done: Set<string>;
}

/** Applies one event to the counts; true when it is a RunTask rejection (a red tick). */
function countEvent(counts: Counts, e: TwinEvent): boolean {
  switch (e.type) {
    case 'arrive':
      if (!counts.seen.has(e.jobId!)) {
        counts.seen.add(e.jobId!);
        counts.arrived++;
      }
      return false;
    case 'taskStart':
    case 'taskStop': {
      const sign = e.type === 'taskStart' ? 1 : -1;
      counts.vcpu += sign * Number(e.vcpu);
      counts.runningTasks += sign;
      if (typeof e.route === 'string') counts.byRoute.set(e.route, (counts.byRoute.get(e.route) ?? 0) + sign * Number(e.vcpu));
      return false;
    }
    case 'jobDone':
    case 'dlq':
      if (!counts.done.has(e.jobId!)) {
        counts.done.add(e.jobId!);
        counts.finished++;
      }
      return false;
    case 'throttle':
    case 'vcpuLimit':
    case 'invalidParameter':
    case 'capacityError':
      return true;
  }
  return false;
}

/** The time axis's end and the two value axes' tops, with the value → y mappings they give. */
interface Scales {
  tEnd: number;
  yTop: number;
  bTop: number;
  /** vCPU → y (left axis). */
  yv: (v: number) => number;
  /** Backlog → y (right axis). */
  yb: (v: number) => number;
}

function scalesOf(tEnd: number, yTop: number, bTop: number): Scales {
  return { tEnd, yTop, bTop, yv: (v) => m.t + ph - (v / yTop) * ph, yb: (v) => m.t + ph - (v / bTop) * ph };
}

/** Grid lines with the time labels along the bottom, vCPU on the left and backlog on the right. */
function gridAndLabels({ tEnd, yTop, bTop, yv, yb }: Scales): string {
  const axisTicks = (n: number) => Array.from({ length: n + 1 }, (_, i) => i / n);
  const xLabels = axisTicks(6)
    .map(
      (f) =>
        `<text x="${m.l + f * pw}" y="${H - 18}" text-anchor="middle">${fmt(f * tEnd)}</text><line x1="${m.l + f * pw}" x2="${m.l + f * pw}" y1="${m.t}" y2="${m.t + ph}" stroke="#eee"/>`,
    )
    .join('');
  const yLabels = axisTicks(5)
    .map(
      (f) =>
        `<text x="${m.l - 8}" y="${yv(f * yTop) + 4}" text-anchor="end">${Math.round(f * yTop)}</text><line x1="${m.l}" x2="${m.l + pw}" y1="${yv(f * yTop)}" y2="${yv(f * yTop)}" stroke="#eee"/>`,
    )
    .join('');
  const bLabels = axisTicks(5)
    .map((f) => `<text x="${m.l + pw + 8}" y="${yb(f * bTop) + 4}" fill="#888">${Math.round(f * bTop)}</text>`)
    .join('');
  return `${xLabels}${yLabels}${bLabels}`;
}

/** A vCPU series as a path through its columns (left axis). */
function stepPath(values: number[], { yv }: Scales): string {
  return values.map((v, b) => `${b === 0 ? 'M' : 'L'}${px(b)},${yv(v).toFixed(1)}`).join('');
}

/** A limit as a step line, labelled where it starts. */
function limitLine(values: number[], color: string, dash: string, label: string, scales: Scales): string {
  return `<path d="${stepPath(values, scales)}" fill="none" stroke="${color}" stroke-dasharray="${dash}" stroke-width="1.5"/><text x="${m.l + 6}" y="${scales.yv(values[0]) - 5}" fill="${color}">${label}</text>`;
}

/** The backlog as a closed area down to zero (right axis). */
function backlogArea(backlogMax: number[], { yb }: Scales): string {
  return `M${px(0)},${yb(0)}` + backlogMax.map((v, b) => `L${px(b)},${yb(v).toFixed(1)}`).join('') + `L${px(COLUMNS - 1)},${yb(0)}Z`;
}

/** A red tick under each column with rejections, longer for more (relative to the busiest column). */
function rejectionTicks(marks: number[]): string {
  const maxMarks = Math.max(1, ...marks);
  return marks
    .map((n, b) =>
      n > 0 ? `<line x1="${px(b)}" x2="${px(b)}" y1="${m.t + ph + 4}" y2="${(m.t + ph + 4 + 4 + (12 * n) / maxMarks).toFixed(1)}" stroke="#d62728"/>` : '',
    )
    .join('');
}

function titleOf(report: Report): string {
  return `${report.design}: ${report.objects} objects · ${report.succeeded} ok, ${report.failed} failed, ${report.dlq} DLQ, ${report.lost} lost · makespan ${fmt(report.makespanSeconds)} (${report.makespanRatio}× bound) · peak ${report.peakVcpu}/${report.budgetVcpu} vCPU · ${report.throttles.total + report.vcpuLimitErrors + report.invalidParameterErrors + report.capacityErrors} RunTask rejections`;
}

/** The drawn layers, back to front: backlog and vcpu as path data, the others as SVG elements. */
interface Layers {
  grid: string;
  backlog: string;
  freeQuota: string;
  budget: string;
  vcpu: string;
  /** Each route's vCPU line and label (SVG elements). */
  routes: string;
  rejections: string;
}

/** The document: title, legend, the layers in drawing order, the plot's frame and the axis titles. */
function svgOf(title: string, layers: Layers): string {
  // A long title is squeezed to the chart's width instead of running off it (~7 px a character at 13 px).
  const fitTitle = title.length * 7 > W - m.l - 10 ? ` textLength="${W - m.l - 10}" lengthAdjust="spacingAndGlyphs"` : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${m.l}" y="22" font-size="13" font-weight="600"${fitTitle}>${escape(title)}</text>
<text x="${m.l}" y="40" fill="#555">blue: vCPU in use${layers.routes ? ' (coloured: per route)' : ''} · red dashed: effective budget · grey dotted: quota − others (the classes used) · grey area: backlog (right axis) · red ticks: RunTask rejections</text>
${layers.grid}
<path d="${layers.backlog}" fill="#bbb" fill-opacity="0.35"/>
${layers.freeQuota}
${layers.budget}
<path d="${layers.vcpu}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>
${layers.routes}
${layers.rejections}
<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>
<text x="16" y="${m.t + ph / 2}" transform="rotate(-90 16 ${m.t + ph / 2})" text-anchor="middle">vCPU in use</text>
<text x="${W - 14}" y="${m.t + ph / 2}" transform="rotate(90 ${W - 14} ${m.t + ph / 2})" text-anchor="middle" fill="#888">backlog (jobs)</text>
</svg>
`;
}

/** The lowest value a step function (points from t = 0, in time order) takes within each pixel column. */
function stepMinima(points: ReadonlyArray<{ t: number; vcpu: number }>, buckets: number, x: (t: number) => number): number[] {
  const out = new Array<number>(buckets).fill(Infinity);
  points.forEach((p, i) => {
    const from = x(p.t);
    const to = i + 1 < points.length ? x(points[i + 1].t) : buckets - 1;
    for (let b = from; b <= to; b++) out[b] = Math.min(out[b], p.vcpu);
  });
  return out.map((v) => (Number.isFinite(v) ? v : 0));
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
