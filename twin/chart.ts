import type { TwinEvent } from './engines/recorder';
import { accountOf, budgetOverTime, fmt, freeQuotaOverTime, type Report } from './report';

/**
 * A standalone SVG: this stage's vCPU in use (blue step line, both classes) against the effective budget over time
 * (dashed red: what the limiter applied, from `budget` events; the configured budget without them) and the quota
 * the stage can actually use (dotted grey: quota − other workloads, summed over the classes its tasks go to), the
 * backlog (jobs arrived and not finished nor running, grey area, right axis), and throttles / vCPU-limit /
 * InvalidParameter rejections / capacity errors as red ticks along the bottom. Computed from the events only.
 * Each pixel column shows the highest vCPU in use and the lowest limit within it: a short dip is not lost.
 */
export function renderChart(events: readonly TwinEvent[], report: Report): string {
  const W = 1000;
  const H = 460;
  const m = { l: 60, r: 70, t: 50, b: 60 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const tEnd = Math.max(1, report.virtualSeconds, ...events.slice(-1).map((e) => e.t));
  const buckets = pw;
  const vcpuMax = new Array<number>(buckets).fill(0);
  const backlogMax = new Array<number>(buckets).fill(0);
  const marks = new Array<number>(buckets).fill(0);
  const x = (t: number) => Math.min(buckets - 1, Math.max(0, Math.floor((t / tEnd) * buckets)));
  const budgetMin = stepMinima(budgetOverTime(events, report.budgetVcpu), buckets, x);
  const freeMin = stepMinima(freeQuotaOverTime(events, accountOf(events)), buckets, x);

  let vcpu = 0;
  let arrived = 0;
  let finished = 0;
  const seen = new Set<string>();
  const done = new Set<string>();
  let runningTasks = 0;
  let lastBucket = 0;
  const carry = (upTo: number) => {
    for (let b = lastBucket + 1; b <= upTo; b++) {
      vcpuMax[b] = Math.max(vcpuMax[b], vcpu);
      backlogMax[b] = Math.max(backlogMax[b], Math.max(0, arrived - finished - runningTasks));
    }
    lastBucket = Math.max(lastBucket, upTo);
  };
  for (const e of events) {
    const b = x(e.t);
    carry(b);
    switch (e.type) {
      case 'arrive':
        if (!seen.has(e.jobId!)) {
          seen.add(e.jobId!);
          arrived++;
        }
        break;
      case 'taskStart':
        vcpu += Number(e.vcpu);
        runningTasks++;
        break;
      case 'taskStop':
        vcpu -= Number(e.vcpu);
        runningTasks--;
        break;
      case 'jobDone':
      case 'dlq':
        if (!done.has(e.jobId!)) {
          done.add(e.jobId!);
          finished++;
        }
        break;
      case 'throttle':
      case 'vcpuLimit':
      case 'invalidParameter':
      case 'capacityError':
        marks[b]++;
        break;
    }
    vcpuMax[b] = Math.max(vcpuMax[b], vcpu);
    backlogMax[b] = Math.max(backlogMax[b], Math.max(0, arrived - finished - runningTasks));
  }
  carry(buckets - 1);

  const yTop = Math.max(report.budgetVcpu, report.peakVcpu, ...budgetMin, ...freeMin, 1) * 1.1;
  const bTop = Math.max(1, ...backlogMax) * 1.1;
  const yv = (v: number) => m.t + ph - (v / yTop) * ph;
  const yb = (v: number) => m.t + ph - (v / bTop) * ph;
  const px = (b: number) => m.l + b;

  const path = (values: number[]) => values.map((v, b) => `${b === 0 ? 'M' : 'L'}${px(b)},${yv(v).toFixed(1)}`).join('');
  const vPath = path(vcpuMax);
  const bArea = `M${px(0)},${yb(0)}` + backlogMax.map((v, b) => `L${px(b)},${yb(v).toFixed(1)}`).join('') + `L${px(buckets - 1)},${yb(0)}Z`;
  const maxMarks = Math.max(1, ...marks);
  const ticks = marks
    .map((n, b) =>
      n > 0 ? `<line x1="${px(b)}" x2="${px(b)}" y1="${m.t + ph + 4}" y2="${(m.t + ph + 4 + 4 + (12 * n) / maxMarks).toFixed(1)}" stroke="#d62728"/>` : '',
    )
    .join('');

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
  // A limit as a step line, labelled where it starts.
  const limit = (values: number[], color: string, dash: string, label: string) =>
    `<path d="${path(values)}" fill="none" stroke="${color}" stroke-dasharray="${dash}" stroke-width="1.5"/><text x="${m.l + 6}" y="${yv(values[0]) - 5}" fill="${color}">${label}</text>`;
  const same = (values: number[]) => values.every((v) => v === values[0]);
  const budgetLabel = same(budgetMin) ? `budget ${budgetMin[0]} vCPU` : `effective budget (${report.budgetVcpu} configured)`;
  const freeLabel = same(freeMin) ? `usable quota ${freeMin[0]}` : 'usable quota (quota − others)';
  const title = `${report.design}: ${report.objects} objects · ${report.succeeded} ok, ${report.failed} failed, ${report.dlq} DLQ, ${report.lost} lost · makespan ${fmt(report.makespanSeconds)} (${report.makespanRatio}× bound) · peak ${report.peakVcpu}/${report.budgetVcpu} vCPU · ${report.throttles.total + report.vcpuLimitErrors + report.invalidParameterErrors + report.capacityErrors} RunTask rejections`;

  // A long title is squeezed to the chart's width instead of running off it (~7 px a character at 13 px).
  const fitTitle = title.length * 7 > W - m.l - 10 ? ` textLength="${W - m.l - 10}" lengthAdjust="spacingAndGlyphs"` : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${m.l}" y="22" font-size="13" font-weight="600"${fitTitle}>${escape(title)}</text>
<text x="${m.l}" y="40" fill="#555">blue: vCPU in use · red dashed: effective budget · grey dotted: quota − others (the classes used) · grey area: backlog (right axis) · red ticks: RunTask rejections</text>
${xLabels}${yLabels}${bLabels}
<path d="${bArea}" fill="#bbb" fill-opacity="0.35"/>
${limit(freeMin, '#888', '2,3', freeLabel)}
${limit(budgetMin, '#d62728', '6,4', budgetLabel)}
<path d="${vPath}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>
${ticks}
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
