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
  /** Jobs whose work ran twice: more than one task exited 0, or two of its tasks overlapped in time. */
  jobsRunTwice: number;
  failureReasons: Record<string, number>;
  makespanSeconds: number;
  lowerBoundSeconds: number;
  lowerBoundFormula: string;
  /** The bound as it was before the account was shared: Σ task-seconds × vCPU / budget (not the free quota). */
  lowerBoundOnBudgetSeconds: number;
  makespanRatio: number;
  budgetVcpu: number;
  /** The budget the limiter applied over time (`budget` events), time-weighted; the configured one if none. */
  effectiveBudget: { min: number; median: number };
  accountVcpuQuota: number;
  peakVcpu: number;
  /** The account's peak vCPU in use per Fargate class: this stage's tasks and the other workloads' together. */
  peakAccountVcpu: { onDemand: number; spot: number };
  runTaskCalls: number;
  tasksStarted: number;
  throttles: { total: number; bySource: Record<string, number>; startExecution: number };
  vcpuLimitErrors: number;
  /** Share of RunTask calls refused for the account's vCPU limit. */
  vcpuLimitShareOfRunTaskCalls: number;
  /** RunTask calls refused with ECS.InvalidParameterException (EC2 throttled behind ECS). */
  invalidParameterErrors: number;
  capacityErrors: number;
  /** Longest time a batch's leases were held with nothing running for them (`leakStart`/`leakEnd`, `leak`); 0 if none. */
  maxLeakSeconds: number;
  leaks: number;
  /** Faults the scenario injected (crash, injectedFault events). */
  injectedFaults: { dispatcherCrashes: number; janitorCrashes: number; startExecutionErrors: number; dynamodbThrottles: number };
  executions: number;
  stateTransitions: number;
  stateTransitionsPerObject: number;
  lambdaInvocations: number;
  lambdaGbSeconds: number;
  lambdaThrottles: number;
  dynamodbRequests: { reads: number; writes: number };
  /** What on-demand DynamoDB bills: a write unit per KB written, a read unit per 4 KB read strongly (half eventually). */
  dynamodbCapacityUnits: { read: number; write: number };
  writeUnitsPerObject: number;
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
  const launchBurst = Number(start.launchBurst ?? 0);
  const account = accountOf(events);
  const endT = end?.t ?? events.reduce((t, e) => Math.max(t, e.t), 0);

  const arrived = new Set<string>();
  const finalStatus = new Map<string, { status: string; error?: string }>();
  const dlq = new Set<string>();
  const successes = new Map<string, number>();
  const tasks = new Map<string, number>();
  const tasksOfJob = new Map<string, Array<{ start: number; stop: number }>>();
  const running = new Map<string, { t: number; vcpu: number; class: UsageClass; task: { start: number; stop: number } }>();
  const throttles: Record<string, number> = {};
  // The account per class: this stage's tasks, and what the other workloads hold.
  const own: Record<UsageClass, number> = { onDemand: 0, spot: 0 };
  const others: Record<UsageClass, number> = { onDemand: 0, spot: 0 };
  const peakAccount: Record<UsageClass, number> = { onDemand: 0, spot: 0 };
  let invalidParameter = 0;
  const openLeaks = new Map<string, number>();
  const leakSeconds: number[] = [];
  const injected = { dispatcherCrashes: 0, janitorCrashes: 0, startExecutionErrors: 0, dynamodbThrottles: 0 };
  let vcpu = 0;
  let peak = 0;
  let taskVcpuSeconds = 0;
  let shortestTaskSeconds = Infinity;
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
      case 'invalidParameter':
        invalidParameter++;
        break;
      case 'taskStart': {
        vcpu += Number(e.vcpu);
        peak = Math.max(peak, vcpu);
        const cls = classOfProvider(e.provider);
        own[cls] += Number(e.vcpu);
        // Until it stops, a task runs to the end of the run.
        const task = { start: e.t, stop: Infinity };
        if (!tasksOfJob.has(e.jobId!)) tasksOfJob.set(e.jobId!, []);
        tasksOfJob.get(e.jobId!)!.push(task);
        running.set(String(e.taskArn), { t: e.t, vcpu: Number(e.vcpu), class: cls, task });
        tasks.set(e.jobId!, (tasks.get(e.jobId!) ?? 0) + 1);
        taskStarts.push(e.t);
        break;
      }
      case 'taskStop': {
        vcpu -= Number(e.vcpu);
        const started = running.get(String(e.taskArn));
        if (started) {
          taskVcpuSeconds += (e.t - started.t) * started.vcpu;
          shortestTaskSeconds = Math.min(shortestTaskSeconds, e.t - started.t);
          own[started.class] -= started.vcpu;
          started.task.stop = e.t;
        }
        running.delete(String(e.taskArn));
        if (e.exitCode === 0) successes.set(e.jobId!, (successes.get(e.jobId!) ?? 0) + 1);
        break;
      }
      case 'background':
        others[classOf(e.class)] = Number(e.vcpu);
        break;
      case 'leak':
        leakSeconds.push(secondsBetween(e.since, e.releasedAt));
        break;
      case 'leakStart':
        if (!openLeaks.has(String(e.batch))) openLeaks.set(String(e.batch), e.t);
        break;
      case 'leakEnd': {
        const since = openLeaks.get(String(e.batch));
        if (since !== undefined) leakSeconds.push(e.t - since);
        openLeaks.delete(String(e.batch));
        break;
      }
      case 'crash':
        if (e.function === 'dispatcher') injected.dispatcherCrashes++;
        else if (e.function === 'janitor') injected.janitorCrashes++;
        break;
      case 'injectedFault':
        if (e.fault === 'startExecutionError') injected.startExecutionErrors++;
        else if (e.fault === 'dynamodbThrottle') injected.dynamodbThrottles++;
        break;
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
    for (const cls of CLASSES) peakAccount[cls] = Math.max(peakAccount[cls], own[cls] + others[cls]);
  }
  // A leak still open when the run stopped lasted at least until then.
  for (const since of openLeaks.values()) leakSeconds.push(endT - since);

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
  // The bound on the FREE quota: the stage can run at most min(budget, Σ over its classes of quota − others) vCPU
  // at each moment, others at what the scenario says they run (the `background` steps). The work done must fit
  // under that curve, so the makespan is at least the T with ∫₀ᵀ min(budget, free(t)) dt = Σ task-seconds × vCPU —
  // work / min(budget, quota − others) weighted by how long each background level lasts. Alone in the account
  // (free ≥ budget) it is work / budget, as before.
  const usable = usableVcpuOverTime(events, account, budget);
  const byCapacity = budget > 0 ? timeToServe(taskVcpuSeconds, origin, usable, byBudget) : 0;
  // The token bucket starts full: the last of N launches can go no sooner than (N − burst) / rate, and runs its task.
  const afterLastLaunch = Number.isFinite(shortestTaskSeconds) ? shortestTaskSeconds : 0;
  const byRate = launchRate > 0 ? Math.max(0, ranJobs - launchBurst) / launchRate + afterLastLaunch : 0;
  const byArrival = lastArrive - origin;
  const lowerBound = Math.max(byCapacity, byRate, byArrival);
  // The usable vCPU in effect while the bound's work was served: [origin, origin + bound].
  const usableValues = usable.filter((p, i) => p.t <= origin + byCapacity && (i + 1 === usable.length || usable[i + 1].t > origin)).map((p) => p.vcpu);
  const usableMin = Math.min(...usableValues);
  const usableMax = Math.max(...usableValues);
  const capacityTerm =
    usableMin === usableMax
      ? `Σ task-seconds × vCPU / min(budget, free quota) = ${round(taskVcpuSeconds)} / ${round(usableMin)} = ${round(byCapacity)} s`
      : `Σ task-seconds × vCPU = ${round(taskVcpuSeconds)} served under min(budget ${budget}, free quota) = ${round(usableMin)}–${round(usableMax)} vCPU over time → ${round(byCapacity)} s`;

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
  const effective = timeWeighted(budgetOverTime(events, budget), endT);

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
    jobsRunTwice: [...tasksOfJob.entries()].filter(([jobId, list]) => (successes.get(jobId) ?? 0) > 1 || overlaps(list)).length,
    failureReasons,
    makespanSeconds: round(makespan),
    lowerBoundSeconds: round(lowerBound),
    lowerBoundFormula: `max(${capacityTerm}, (N − burst) / launch rate + shortest task = (${ranJobs} − ${launchBurst}) / ${launchRate} + ${round(afterLastLaunch)} = ${round(byRate)} s, last arrival = ${round(byArrival)} s)`,
    lowerBoundOnBudgetSeconds: round(Math.max(byBudget, byRate, byArrival)),
    makespanRatio: lowerBound > 0 ? round(makespan / lowerBound, 4) : 0,
    budgetVcpu: budget,
    effectiveBudget: { min: round(effective.min), median: round(effective.median) },
    accountVcpuQuota: Number(start.accountVcpuQuota ?? 0),
    peakVcpu: round(peak),
    peakAccountVcpu: { onDemand: round(peakAccount.onDemand), spot: round(peakAccount.spot) },
    runTaskCalls,
    tasksStarted: taskStarts.length,
    throttles: { total: throttleTotal, bySource: throttles, startExecution: meters.startExecutionThrottles ?? 0 },
    vcpuLimitErrors: vcpuLimit,
    vcpuLimitShareOfRunTaskCalls: runTaskCalls > 0 ? round(vcpuLimit / runTaskCalls, 4) : 0,
    invalidParameterErrors: invalidParameter,
    capacityErrors,
    maxLeakSeconds: round(Math.max(0, ...leakSeconds)),
    leaks: leakSeconds.length,
    injectedFaults: injected,
    executions,
    stateTransitions: transitions,
    stateTransitionsPerObject: arrived.size > 0 ? round(transitions / arrived.size, 2) : 0,
    lambdaInvocations,
    lambdaGbSeconds: round(gbSeconds),
    lambdaThrottles: meters.lambdaThrottles ?? 0,
    dynamodbRequests: { reads, writes },
    dynamodbCapacityUnits: { read: round(readUnits, 1), write: writeUnits },
    writeUnitsPerObject: arrived.size > 0 ? round(writeUnits / arrived.size, 2) : 0,
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

export type UsageClass = 'onDemand' | 'spot';
const CLASSES: UsageClass[] = ['onDemand', 'spot'];

function classOf(value: unknown): UsageClass {
  return value === 'spot' ? 'spot' : 'onDemand';
}

/** taskStart's provider → its AWS/Usage class (a task with none was On-Demand: RunTask's default launch type). */
function classOfProvider(provider: unknown): UsageClass {
  return provider === 'FARGATE_SPOT' ? 'spot' : 'onDemand';
}

/** The account as the start event describes it: quotas per class, and the classes the stage's tasks go to. */
export function accountOf(events: readonly TwinEvent[]): { quotas: Record<UsageClass, number>; classes: UsageClass[] } {
  const start = events.find((e) => e.type === 'start') ?? ({} as TwinEvent);
  const quota = Number(start.accountVcpuQuota ?? 0);
  const perClass = (start.accountVcpuQuotas ?? {}) as Partial<Record<UsageClass, number>>;
  const weights = (start.classWeights ?? {}) as Partial<Record<UsageClass, number>>;
  let classes = CLASSES.filter((c) => (weights[c] ?? 0) > 0);
  // Older runs say nothing of weights: the classes their tasks ran in.
  if (classes.length === 0) classes = CLASSES.filter((c) => events.some((e) => e.type === 'taskStart' && classOfProvider(e.provider) === c));
  if (classes.length === 0) classes = ['onDemand'];
  return { quotas: { onDemand: Number(perClass.onDemand ?? quota), spot: Number(perClass.spot ?? quota) }, classes };
}

/**
 * The vCPU the stage can use over time: min(budget, free quota), the free quota being Σ over the classes the stage's
 * tasks go to of max(0, quota − others), with others at what the scenario says they run (`wantedVcpu` when the ECS
 * twin held them below it because this stage's tasks had the room). A step function: one point per change, from 0.
 */
export function usableVcpuOverTime(events: readonly TwinEvent[], account: ReturnType<typeof accountOf>, budget: number): Array<{ t: number; vcpu: number }> {
  const free = freeQuotaOverTime(events, account);
  return free.map((p) => ({ t: p.t, vcpu: Math.min(budget, p.vcpu) }));
}

/** Σ over the stage's classes of max(0, quota − others), as a step function from t = 0. */
export function freeQuotaOverTime(events: readonly TwinEvent[], account: ReturnType<typeof accountOf>): Array<{ t: number; vcpu: number }> {
  const others: Record<UsageClass, number> = { onDemand: 0, spot: 0 };
  const freeNow = () => account.classes.reduce((sum, c) => sum + Math.max(0, account.quotas[c] - others[c]), 0);
  const points = [{ t: 0, vcpu: freeNow() }];
  for (const e of events) {
    if (e.type !== 'background') continue;
    others[classOf(e.class)] = Number(e.wantedVcpu ?? e.vcpu);
    const vcpu = freeNow();
    const last = points[points.length - 1];
    if (last.t === e.t) last.vcpu = vcpu;
    else if (last.vcpu !== vcpu) points.push({ t: e.t, vcpu });
  }
  return points;
}

/** The effective budget as a step function from t = 0: the configured one until the first `budget` event. */
export function budgetOverTime(events: readonly TwinEvent[], configured: number): Array<{ t: number; vcpu: number }> {
  const points = [{ t: 0, vcpu: configured }];
  for (const e of events) {
    if (e.type !== 'budget' || typeof e.effectiveVcpu !== 'number') continue;
    const last = points[points.length - 1];
    if (last.t === e.t) last.vcpu = e.effectiveVcpu;
    else points.push({ t: e.t, vcpu: e.effectiveVcpu });
  }
  return points;
}

/**
 * The lower bound on the time to serve `work` vCPU-seconds from `origin` when at most `usable(t)` vCPU can run:
 * the smallest T with ∫ from origin to origin + T of usable = work. With nothing else in the account this is
 * work / budget, the bound before accounts were shared; with other workloads it is the time-weighted version of
 * work / min(budget, quota − others). If the usable vCPU falls to 0 for good first, `fallback`.
 */
export function timeToServe(work: number, origin: number, usable: ReadonlyArray<{ t: number; vcpu: number }>, fallback: number): number {
  if (work <= 0) return 0;
  let left = work;
  for (let i = 0; i < usable.length; i++) {
    const from = Math.max(origin, usable[i].t);
    const to = i + 1 < usable.length ? Math.max(origin, usable[i + 1].t) : Infinity;
    const rate = usable[i].vcpu;
    if (to <= from || rate <= 0) continue;
    if (rate * (to - from) >= left) return from + left / rate - origin;
    left -= rate * (to - from);
  }
  return fallback;
}

/** Time-weighted min and median of a step function over [0, end] (its last value when it spans no time). */
export function timeWeighted(points: ReadonlyArray<{ t: number; vcpu: number }>, end: number): { min: number; median: number } {
  const spans = points
    .map((p, i) => ({ vcpu: p.vcpu, seconds: Math.max(0, Math.min(end, i + 1 < points.length ? points[i + 1].t : end) - p.t) }))
    .filter((s) => s.seconds > 0);
  if (spans.length === 0) {
    const last = points[points.length - 1]?.vcpu ?? 0;
    return { min: last, median: last };
  }
  const total = spans.reduce((sum, s) => sum + s.seconds, 0);
  const sorted = [...spans].sort((a, b) => a.vcpu - b.vcpu);
  let seen = 0;
  let median = sorted[sorted.length - 1].vcpu;
  for (const s of sorted) {
    seen += s.seconds;
    if (seen >= total / 2) {
      median = s.vcpu;
      break;
    }
  }
  return { min: sorted[0].vcpu, median };
}

/** Two of the job's tasks ran at the same time (a start strictly before an earlier-started task's stop). */
function overlaps(tasks: ReadonlyArray<{ start: number; stop: number }>): boolean {
  const sorted = [...tasks].sort((a, b) => a.start - b.start);
  let runningUntil = -Infinity;
  for (const task of sorted) {
    if (task.start < runningUntil) return true;
    runningUntil = Math.max(runningUntil, task.stop);
  }
  return false;
}

/** A leak's length from its `since` and `releasedAt`: virtual seconds (like `t`) or ISO times. */
function secondsBetween(since: unknown, releasedAt: unknown): number {
  const at = (v: unknown) => (typeof v === 'number' ? v * 1000 : Date.parse(String(v)));
  const seconds = (at(releasedAt) - at(since)) / 1000;
  return Number.isFinite(seconds) ? Math.max(0, seconds) : 0;
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
      (report.jobsRunMoreThanOnce ? `, ${report.jobsRunMoreThanOnce} run more than once` : '') +
      (report.jobsRunTwice ? `, ${report.jobsRunTwice} run twice (or overlapping)` : ''),
    `makespan ${fmt(report.makespanSeconds)} vs lower bound ${fmt(report.lowerBoundSeconds)} → ratio ${report.makespanRatio}`,
    `peak ${report.peakVcpu} vCPU vs budget ${report.budgetVcpu} (${ok(report.peakVcpu <= report.budgetVcpu)}), effective budget min ${report.effectiveBudget.min} / median ${report.effectiveBudget.median}, quota ${report.accountVcpuQuota}`,
    `account peak (this stage + others): On-Demand ${report.peakAccountVcpu.onDemand}, Spot ${report.peakAccountVcpu.spot} vCPU`,
    `RunTask ${report.runTaskCalls} calls, ${report.throttles.total} throttled, ${report.vcpuLimitErrors} over the vCPU limit (${(report.vcpuLimitShareOfRunTaskCalls * 100).toFixed(1)} %), ${report.invalidParameterErrors} InvalidParameter, ${report.capacityErrors} capacity errors; StartExecution throttled ${report.throttles.startExecution}`,
    `${report.stateTransitions} state transitions (${report.stateTransitionsPerObject}/object), ${report.lambdaInvocations} Lambda invocations, DynamoDB ${report.dynamodbRequests.writes} writes + ${report.dynamodbRequests.reads} reads (${report.dynamodbCapacityUnits.write} + ${report.dynamodbCapacityUnits.read} capacity units, ${report.writeUnitsPerObject} write units/object), SQS ${report.sqsRequests} requests`,
    `orchestration ≈ $${report.costPer1000Objects.orchestration.toFixed(4)} per 1,000 objects (Fargate compute ≈ $${report.costPer1000Objects.fargate.toFixed(2)})`,
    `admission latency: median ${report.admissionLatencySeconds.median ?? '–'} s, p99 ${report.admissionLatencySeconds.p99 ?? '–'} s (${report.admissionLatencySeconds.samples} samples)`,
  ];
  const f = report.injectedFaults;
  if (f.dispatcherCrashes + f.janitorCrashes + f.startExecutionErrors + f.dynamodbThrottles > 0 || report.leaks > 0) {
    lines.push(
      `injected: ${f.dispatcherCrashes} dispatcher and ${f.janitorCrashes} janitor crashes, ${f.startExecutionErrors} StartExecution 5xx, ${f.dynamodbThrottles} DynamoDB throttles; ` +
        `${report.leaks} leaked batches, longest ${report.maxLeakSeconds} s`,
    );
  }
  if (Object.keys(report.failureReasons).length > 0) {
    lines.push(
      `failures: ${Object.entries(report.failureReasons)
        .map(([k, v]) => `${v} × ${k}`)
        .join('; ')}`,
    );
  }
  if (wallSeconds !== undefined) lines.push(`virtual ${fmt(report.virtualSeconds)} in ${wallSeconds.toFixed(1)} s of wall time (stopped: ${report.stoppedBy})`);
  return lines.join('\n');
}

export function fmt(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(2)} h`;
}
