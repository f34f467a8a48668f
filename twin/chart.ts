import type { TwinEvent } from './engines/recorder';
import { fmt, type Report } from './report';

/**
 * A standalone SVG: vCPU in use (blue step line) against the budget (dashed red) and the account quota (dotted
 * grey), the backlog (jobs arrived and not finished nor running, grey area, right axis), and throttles / vCPU-limit
 * rejections / capacity errors as red ticks along the bottom. Computed from the events only.
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
      case 'capacityError':
        marks[b]++;
        break;
    }
    vcpuMax[b] = Math.max(vcpuMax[b], vcpu);
    backlogMax[b] = Math.max(backlogMax[b], Math.max(0, arrived - finished - runningTasks));
  }
  carry(buckets - 1);

  const yTop = Math.max(report.budgetVcpu, report.peakVcpu, report.accountVcpuQuota, 1) * 1.1;
  const bTop = Math.max(1, ...backlogMax) * 1.1;
  const yv = (v: number) => m.t + ph - (v / yTop) * ph;
  const yb = (v: number) => m.t + ph - (v / bTop) * ph;
  const px = (b: number) => m.l + b;

  const vPath = vcpuMax.map((v, b) => `${b === 0 ? 'M' : 'L'}${px(b)},${yv(v).toFixed(1)}`).join('');
  const bArea = `M${px(0)},${yb(0)}` + backlogMax.map((v, b) => `L${px(b)},${yb(v).toFixed(1)}`).join('') + `L${px(buckets - 1)},${yb(0)}Z`;
  const maxMarks = Math.max(1, ...marks);
  const ticks = marks
    .map((n, b) => (n > 0 ? `<line x1="${px(b)}" x2="${px(b)}" y1="${m.t + ph + 4}" y2="${(m.t + ph + 4 + 4 + (12 * n) / maxMarks).toFixed(1)}" stroke="#d62728"/>` : ''))
    .join('');

  const axisTicks = (n: number) => Array.from({ length: n + 1 }, (_, i) => i / n);
  const xLabels = axisTicks(6)
    .map((f) => `<text x="${m.l + f * pw}" y="${H - 18}" text-anchor="middle">${fmt(f * tEnd)}</text><line x1="${m.l + f * pw}" x2="${m.l + f * pw}" y1="${m.t}" y2="${m.t + ph}" stroke="#eee"/>`)
    .join('');
  const yLabels = axisTicks(5)
    .map((f) => `<text x="${m.l - 8}" y="${yv(f * yTop) + 4}" text-anchor="end">${Math.round(f * yTop)}</text><line x1="${m.l}" x2="${m.l + pw}" y1="${yv(f * yTop)}" y2="${yv(f * yTop)}" stroke="#eee"/>`)
    .join('');
  const bLabels = axisTicks(5)
    .map((f) => `<text x="${m.l + pw + 8}" y="${yb(f * bTop) + 4}" fill="#888">${Math.round(f * bTop)}</text>`)
    .join('');
  const hline = (v: number, color: string, dash: string, label: string) =>
    `<line x1="${m.l}" x2="${m.l + pw}" y1="${yv(v)}" y2="${yv(v)}" stroke="${color}" stroke-dasharray="${dash}" stroke-width="1.5"/><text x="${m.l + 6}" y="${yv(v) - 5}" fill="${color}">${label}</text>`;
  const title = `${report.design}: ${report.objects} objects · ${report.succeeded} ok, ${report.failed} failed, ${report.dlq} DLQ, ${report.lost} lost · makespan ${fmt(report.makespanSeconds)} (${report.makespanRatio}× bound) · peak ${report.peakVcpu}/${report.budgetVcpu} vCPU · ${report.throttles.total + report.vcpuLimitErrors + report.capacityErrors} RunTask rejections`;

  // A long title is squeezed to the chart's width instead of running off it (~7 px a character at 13 px).
  const fitTitle = title.length * 7 > W - m.l - 10 ? ` textLength="${W - m.l - 10}" lengthAdjust="spacingAndGlyphs"` : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${m.l}" y="22" font-size="13" font-weight="600"${fitTitle}>${escape(title)}</text>
<text x="${m.l}" y="40" fill="#555">blue: vCPU in use · red dashed: budget · grey dotted: account quota · grey area: backlog (right axis) · red ticks: throttles, vCPU-limit and capacity errors</text>
${xLabels}${yLabels}${bLabels}
<path d="${bArea}" fill="#bbb" fill-opacity="0.35"/>
${hline(report.accountVcpuQuota, '#888', '2,3', `quota ${report.accountVcpuQuota}`)}
${hline(report.budgetVcpu, '#d62728', '6,4', `budget ${report.budgetVcpu} vCPU`)}
<path d="${vPath}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>
${ticks}
<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>
<text x="16" y="${m.t + ph / 2}" transform="rotate(-90 16 ${m.t + ph / 2})" text-anchor="middle">vCPU in use</text>
<text x="${W - 14}" y="${m.t + ph / 2}" transform="rotate(90 ${W - 14} ${m.t + ph / 2})" text-anchor="middle" fill="#888">backlog (jobs)</text>
</svg>
`;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
