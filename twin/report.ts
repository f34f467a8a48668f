import type { TwinEvent } from './engines/recorder';
import { PRICES } from './prices';

/**
 * Every figure of the report, computed from the events alone (a pure function): events.jsonl is enough to
 * recompute report.json.
 */
export interface Report {
  design: string;
  stage: string;
  seed: number;
  objects: number;
  succeeded: number;
  failed: number;
  /** Arrived but never finished (no jobDone, not dead-lettered) when the run stopped. */
  lost: number;
  dlq: number;
  /** Jobs whose work completed successfully more than once (duplicate processing). */
  jobsRunMoreThanOnce: number;
  /** Jobs that needed more than one task (retries after Spot interruptions or transient exits). */
  jobsWithRetries: number;
  failureReasons: Record<string, number>;
  makespanSeconds: number;
  lowerBoundSeconds: number;
  lowerBoundFormula: string;
  makespanRatio: number;
  budgetVcpu: number;
  accountVcpuQuota: number;
  peakVcpu: number;
  runTaskCalls: number;
  tasksStarted: number;
  throttles: { total: number; bySource: Record<string, number>; startExecution: number };
  vcpuLimitErrors: number;
  capacityErrors: number;
  executions: number;
  stateTransitions: number;
  stateTransitionsPerObject: number;
  lambdaInvocations: number;
  lambdaGbSeconds: number;
  lambdaThrottles: number;
  dynamodbRequests: { reads: number; writes: number };
  /** What on-demand DynamoDB bills: a write unit per KB written, a read unit per 4 KB read strongly (half eventually). */
  dynamodbCapacityUnits: { read: number; write: number };
  sqsRequests: number;
  costPer1000Objects: { stepFunctions: number; lambda: number; dynamodb: number; sqs: number; orchestration: number; fargate: number; formula: string };
  /** A lease freed while jobs waited → the next task started (seconds). */
  admissionLatencySeconds: { median: number | null; p99: number | null; samples: number };
  virtualSeconds: number;
  stoppedBy: string;
}

export function computeReport(events: readonly TwinEvent[]): Report {
  const start = events.find((e) => e.type === 'start') ?? ({} as TwinEvent);
  const end = events.find((e) => e.type === 'end');
  const budget = Number(start.budgetVcpu ?? 0);
  const launchRate = Number(start.launchRatePerSecond ?? 0);

  const arrived = new Set<string>();
  const finalStatus = new Map<string, { status: string; error?: string }>();
  const dlq = new Set<string>();
  const successes = new Map<string, number>();
  const tasks = new Map<string, number>();
  const running = new Map<string, { t: number; vcpu: number }>();
  const throttles: Record<string, number> = {};
  let vcpu = 0;
  let peak = 0;
  let taskVcpuSeconds = 0;
  let lastSettle = 0;
  let firstArrive = Infinity;
  let lastArrive = 0;
  let runTaskCalls = 0;
  let vcpuLimit = 0;
  let capacityErrors = 0;
  let executions = 0;
  let transitions = 0;
  let lambdaInvocations = 0;
  let gbSeconds = 0;
  const meters: Record<string, number> = {};
  const releases: number[] = [];
  const taskStarts: number[] = [];
  // For admission latency: was anything waiting when the lease was freed?
  let admittedOrDone = 0;
  const waitingAt: number[] = [];

  for (const e of events) {
    switch (e.type) {
      case 'arrive':
        if (!arrived.has(e.jobId!)) {
          arrived.add(e.jobId!);
          firstArrive = Math.min(firstArrive, e.t);
          lastArrive = Math.max(lastArrive, e.t);
        }
        break;
      case 'admit':
        admittedOrDone++;
        break;
      case 'runTask':
        runTaskCalls++;
        break;
      case 'throttle':
        throttles[String(e.source)] = (throttles[String(e.source)] ?? 0) + 1;
        break;
      case 'vcpuLimit':
        vcpuLimit++;
        break;
      case 'capacityError':
        capacityErrors++;
        break;
      case 'taskStart':
        vcpu += Number(e.vcpu);
        peak = Math.max(peak, vcpu);
        running.set(String(e.taskArn), { t: e.t, vcpu: Number(e.vcpu) });
        tasks.set(e.jobId!, (tasks.get(e.jobId!) ?? 0) + 1);
        taskStarts.push(e.t);
        break;
      case 'taskStop': {
        vcpu -= Number(e.vcpu);
        const started = running.get(String(e.taskArn));
        if (started) taskVcpuSeconds += (e.t - started.t) * started.vcpu;
        running.delete(String(e.taskArn));
        if (e.exitCode === 0) successes.set(e.jobId!, (successes.get(e.jobId!) ?? 0) + 1);
        break;
      }
      case 'release':
        releases.push(e.t);
        waitingAt.push(arrived.size - admittedOrDone);
        break;
      case 'jobDone':
        finalStatus.set(e.jobId!, { status: String(e.status), error: e.error ? String(e.error) : undefined });
        lastSettle = Math.max(lastSettle, e.t);
        break;
      case 'dlq':
        dlq.add(e.jobId!);
        lastSettle = Math.max(lastSettle, e.t);
        break;
      case 'execStart':
        executions++;
        break;
      case 'execEnd':
        transitions += Number(e.transitions ?? 0);
        break;
      case 'lambda':
        lambdaInvocations++;
        gbSeconds += (Number(e.billedMs) / 1000) * (Number(e.memoryMB) / 1024);
        break;
      case 'meter':
        for (const [k, v] of Object.entries(e)) if (typeof v === 'number' && k !== 't') meters[k] = (meters[k] ?? 0) + v;
        break;
    }
  }

  let succeeded = 0;
  let failed = 0;
  const failureReasons: Record<string, number> = {};
  for (const jobId of arrived) {
    const status = finalStatus.get(jobId);
    if (dlq.has(jobId) && status?.status !== 'succeeded') continue;
    if (status?.status === 'succeeded') succeeded++;
    else if (status) {
      failed++;
      // Group by kind: execution names and job ids vary per job.
      const reason = (status.error ?? 'unknown').replace(/\b(batch\d+-[0-9a-f]+|job-[0-9a-f]+-a\d+|[0-9a-f]{32})\b/g, '<id>');
      failureReasons[reason] = (failureReasons[reason] ?? 0) + 1;
    }
  }
  const dlqCount = [...dlq].filter((j) => arrived.has(j) && finalStatus.get(j)?.status !== 'succeeded').length;
  const lost = arrived.size - succeeded - failed - dlqCount;

  const ranJobs = tasks.size;
  const origin = Number.isFinite(firstArrive) ? firstArrive : 0;
  const makespan = lastSettle - origin;
  const byBudget = budget > 0 ? taskVcpuSeconds / budget : 0;
  const byRate = launchRate > 0 ? ranJobs / launchRate : 0;
  const byArrival = lastArrive - origin;
  const lowerBound = Math.max(byBudget, byRate, byArrival);

  // Admission latency: each release while jobs waited is matched with the first later task start.
  const latencies: number[] = [];
  let s = 0;
  releases.forEach((r, i) => {
    if (waitingAt[i] <= 0) return;
    while (s < taskStarts.length && taskStarts[s] < r) s++;
    if (s < taskStarts.length) latencies.push(taskStarts[s++] - r);
  });
  latencies.sort((a, b) => a - b);
  const quantile = (q: number) => (latencies.length === 0 ? null : round(latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]));

  const reads = meters.ddbReads ?? 0;
  const writes = meters.ddbWrites ?? 0;
  const readUnits = meters.ddbReadUnits ?? 0;
  const writeUnits = meters.ddbWriteUnits ?? 0;
  const sqsRequests = meters.sqsRequests ?? 0;
  const per1000 = arrived.size > 0 ? 1000 / arrived.size : 0;
  const cost = {
    stepFunctions: transitions * PRICES.stepFunctionsPerTransition * per1000,
    lambda: (lambdaInvocations * PRICES.lambdaPerRequest + gbSeconds * PRICES.lambdaPerGbSecond) * per1000,
    dynamodb: (readUnits * PRICES.dynamodbPerReadUnit + writeUnits * PRICES.dynamodbPerWriteUnit) * per1000,
    sqs: sqsRequests * PRICES.sqsPerRequest * per1000,
    fargate: (taskVcpuSeconds / 3600) * PRICES.fargatePerVcpuHour * per1000,
  };
  const orchestration = cost.stepFunctions + cost.lambda + cost.dynamodb + cost.sqs;
  const throttleTotal = Object.values(throttles).reduce((a, b) => a + b, 0);

  return {
    design: String(start.design ?? 'unknown'),
    stage: String(start.stage ?? 'unknown'),
    seed: Number(start.seed ?? 0),
    objects: arrived.size,
    succeeded,
    failed,
    lost,
    dlq: dlqCount,
    jobsRunMoreThanOnce: [...successes.values()].filter((n) => n > 1).length,
    jobsWithRetries: [...tasks.values()].filter((n) => n > 1).length,
    failureReasons,
    makespanSeconds: round(makespan),
    lowerBoundSeconds: round(lowerBound),
    lowerBoundFormula:
      `max(Σ task-seconds × vCPU / budget = ${round(taskVcpuSeconds)} / ${budget} = ${round(byBudget)} s, ` +
      `N / launch rate = ${ranJobs} / ${launchRate} = ${round(byRate)} s, last arrival = ${round(byArrival)} s)`,
    makespanRatio: lowerBound > 0 ? round(makespan / lowerBound, 4) : 0,
    budgetVcpu: budget,
    accountVcpuQuota: Number(start.accountVcpuQuota ?? 0),
    peakVcpu: round(peak),
    runTaskCalls,
    tasksStarted: taskStarts.length,
    throttles: { total: throttleTotal, bySource: throttles, startExecution: meters.startExecutionThrottles ?? 0 },
    vcpuLimitErrors: vcpuLimit,
    capacityErrors,
    executions,
    stateTransitions: transitions,
    stateTransitionsPerObject: arrived.size > 0 ? round(transitions / arrived.size, 2) : 0,
    lambdaInvocations,
    lambdaGbSeconds: round(gbSeconds),
    lambdaThrottles: meters.lambdaThrottles ?? 0,
    dynamodbRequests: { reads, writes },
    dynamodbCapacityUnits: { read: round(readUnits, 1), write: writeUnits },
    sqsRequests,
    costPer1000Objects: {
      stepFunctions: round(cost.stepFunctions, 4),
      lambda: round(cost.lambda, 4),
      dynamodb: round(cost.dynamodb, 4),
      sqs: round(cost.sqs, 4),
      orchestration: round(orchestration, 4),
      fargate: round(cost.fargate, 4),
      formula: `USD per 1,000 objects, ${PRICES.region} list prices (${PRICES.asOf}, twin/prices.ts): transitions × $0.025/1k + Lambda requests × $0.20/M + GB-s × $0.0000166667 + DynamoDB write units × $0.625/M + read units × $0.125/M + SQS requests × $0.40/M; fargate = task vCPU-hours × $${PRICES.fargatePerVcpuHour} (On-Demand, memory excluded)`,
    },
    admissionLatencySeconds: { median: quantile(0.5), p99: quantile(0.99), samples: latencies.length },
    virtualSeconds: round(end?.t ?? lastSettle),
    stoppedBy: String(end?.stoppedBy ?? 'unknown'),
  };
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A few lines for a person at a terminal. */
export function summarize(report: Report, wallSeconds?: number): string {
  const ok = (b: boolean) => (b ? 'ok' : 'NO');
  const lines = [
    `${report.design} on ${report.stage}: ${report.objects} objects → ${report.succeeded} succeeded, ${report.failed} failed, ${report.dlq} in the DLQ, ${report.lost} lost` +
      (report.jobsRunMoreThanOnce ? `, ${report.jobsRunMoreThanOnce} run more than once` : ''),
    `makespan ${fmt(report.makespanSeconds)} vs lower bound ${fmt(report.lowerBoundSeconds)} → ratio ${report.makespanRatio}`,
    `peak ${report.peakVcpu} vCPU vs budget ${report.budgetVcpu} (${ok(report.peakVcpu <= report.budgetVcpu)}), quota ${report.accountVcpuQuota}`,
    `RunTask ${report.runTaskCalls} calls, ${report.throttles.total} throttled, ${report.vcpuLimitErrors} over the vCPU limit, ${report.capacityErrors} capacity errors; StartExecution throttled ${report.throttles.startExecution}`,
    `${report.stateTransitions} state transitions (${report.stateTransitionsPerObject}/object), ${report.lambdaInvocations} Lambda invocations, DynamoDB ${report.dynamodbRequests.writes} writes + ${report.dynamodbRequests.reads} reads (${report.dynamodbCapacityUnits.write} + ${report.dynamodbCapacityUnits.read} capacity units), SQS ${report.sqsRequests} requests`,
    `orchestration ≈ $${report.costPer1000Objects.orchestration.toFixed(4)} per 1,000 objects (Fargate compute ≈ $${report.costPer1000Objects.fargate.toFixed(2)})`,
    `admission latency: median ${report.admissionLatencySeconds.median ?? '–'} s, p99 ${report.admissionLatencySeconds.p99 ?? '–'} s (${report.admissionLatencySeconds.samples} samples)`,
  ];
  if (Object.keys(report.failureReasons).length > 0) {
    lines.push(`failures: ${Object.entries(report.failureReasons).map(([k, v]) => `${v} × ${k}`).join('; ')}`);
  }
  if (wallSeconds !== undefined) lines.push(`virtual ${fmt(report.virtualSeconds)} in ${wallSeconds.toFixed(1)} s of wall time (stopped: ${report.stoppedBy})`);
  return lines.join('\n');
}

export function fmt(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(2)} h`;
}
