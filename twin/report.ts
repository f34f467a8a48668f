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
  /**
   * Launches per second while jobs waited: the task starts from the first to the last one that left jobs waiting, the
   * launch bucket's burst not counted (as in the bound), over that window; null if there were no more than the burst.
   * A limiter launching at its rate from a full bucket scores exactly its rate.
   */
  launchesPerSecond: number | null;
  budgetVcpu: number;
  /** The budget the limiter applied over time (`budget` events), time-weighted; the configured one if none. */
  effectiveBudget: { min: number; median: number };
  accountVcpuQuota: number;
  peakVcpu: number;
  /** The account's peak vCPU in use per Fargate class: this stage's tasks and the other workloads' together. */
  peakAccountVcpu: { onDemand: number; spot: number };
  runTaskCalls: number;
  /** Tasks started: with packing, each runs up to `objectsPerTask` objects. */
  tasksStarted: number;
  /** Objects one task runs (1 unless the stage packs). */
  objectsPerTask: number;
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
  injectedFaults: {
    dispatcherCrashes: number;
    janitorCrashes: number;
    startExecutionErrors: number;
    startExecutionLostAnswers: number;
    dynamodbThrottles: number;
  };
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
  /** What orchestrating the jobs costs per 1,000 objects (USD, list prices): its parts, and their total. */
  orchestrationCostPer1k: { stepFunctions: number; lambda: number; dynamodb: number; sqs: number; total: number };
  /** What Fargate bills per 1,000 objects (USD, list prices): vcpu + memory = total, and onDemand + spot = total. */
  fargateCostPer1k: { vcpu: number; memory: number; onDemand: number; spot: number; total: number };
  /** Orchestration + Fargate per 1,000 objects (USD), and how each part is computed. */
  totalCostPer1k: number;
  costFormula: string;
  /** RunTask → RUNNING of the tasks started (seconds): provisioning, the image pull, the container's start. */
  startup: { p50: number | null; p99: number | null; samples: number };
  /** A lease freed while jobs waited → the next task started (seconds). */
  admissionLatencySeconds: { median: number | null; p99: number | null; samples: number };
  /** Per route, by the `route` its jobs' events carry (on a stage without routes, per named stream); empty without. */
  routes: Record<string, RouteFigures>;
  /**
   * The 10-minute windows from the first arrival in which every route had a backlog throughout, with the
   * vCPU-seconds each route's tasks held in it: how the routes shared the budget while all wanted more.
   */
  routeWindows: Array<{ from: number; to: number; vcpuSeconds: Record<string, number> }>;
  virtualSeconds: number;
  stoppedBy: string;
}

/** Everything the report counts, folded from the events in order. */
class Tally {
  readonly arrived = new Set<string>();
  readonly finalStatus = new Map<string, { status: string; error?: string }>();
  readonly dlq = new Set<string>();
  readonly successes = new Map<string, number>();
  readonly tasks = new Map<string, number>();
  readonly tasksOfJob = new Map<string, Array<{ start: number; stop: number }>>();
  readonly running = new Map<string, RunningTask>();
  readonly throttles: Record<string, number> = {};
  // The account per class: this stage's tasks, and what the other workloads hold.
  readonly own: Record<UsageClass, number> = { onDemand: 0, spot: 0 };
  readonly others: Record<UsageClass, number> = { onDemand: 0, spot: 0 };
  readonly peakAccount: Record<UsageClass, number> = { onDemand: 0, spot: 0 };
  invalidParameter = 0;
  readonly openLeaks = new Map<string, number>();
  readonly leakSeconds: number[] = [];
  readonly injected = { dispatcherCrashes: 0, janitorCrashes: 0, startExecutionErrors: 0, startExecutionLostAnswers: 0, dynamodbThrottles: 0 };
  vcpu = 0;
  peak = 0;
  taskVcpuSeconds = 0;
  /** What Fargate bills per class: vCPU-seconds and GB-seconds from each pull's start, at least a minute a task. */
  readonly billed: Record<UsageClass, { vcpuSeconds: number; gbSeconds: number }> = {
    onDemand: { vcpuSeconds: 0, gbSeconds: 0 },
    spot: { vcpuSeconds: 0, gbSeconds: 0 },
  };
  readonly startupSeconds: number[] = [];
  shortestTaskSeconds = Infinity;
  smallestTaskVcpu = Infinity;
  lastSettle = 0;
  firstArrive = Infinity;
  lastArrive = 0;
  runTaskCalls = 0;
  vcpuLimit = 0;
  capacityErrors = 0;
  executions = 0;
  transitions = 0;
  lambdaInvocations = 0;
  gbSeconds = 0;
  readonly meters: Record<string, number> = {};
  readonly releases: number[] = [];
  readonly taskStarts: number[] = [];
  /** Arrived jobs no task has started for yet (nor dead-lettered). */
  readonly waiting = new Set<string>();
  /** The task starts up to the last one that left jobs waiting, and its time. */
  startsWhileWaiting = 0;
  lastStartWhileWaiting = 0;
  // For admission latency: was anything waiting when the lease was freed?
  admittedOrDone = 0;
  readonly waitingAt: number[] = [];

  static of(events: readonly TwinEvent[], endT: number): Tally {
    const tally = new Tally();
    for (const e of events) {
      tally.on(e);
      for (const cls of CLASSES) tally.peakAccount[cls] = Math.max(tally.peakAccount[cls], tally.own[cls] + tally.others[cls]);
    }
    // A leak still open when the run stopped lasted at least until then.
    for (const since of tally.openLeaks.values()) tally.leakSeconds.push(endT - since);
    return tally;
  }

  private on(e: TwinEvent): void {
    if (e.type === 'taskStart') this.taskStarted(e);
    else if (e.type === 'taskStop') this.taskStopped(e);
    else if (!this.counted(e)) this.settled(e);
  }

  private taskStarted(e: TwinEvent): void {
    this.vcpu += Number(e.vcpu);
    this.smallestTaskVcpu = Math.min(this.smallestTaskVcpu, Number(e.vcpu));
    this.peak = Math.max(this.peak, this.vcpu);
    const cls = classOfProvider(e.provider);
    this.own[cls] += Number(e.vcpu);
    // Until it stops, a task runs to the end of the run.
    const task = { start: e.t, stop: Infinity };
    // A packed task runs several jobs (its objects).
    const jobIds = (e.jobIds as string[] | undefined) ?? [e.jobId!];
    for (const jobId of jobIds) {
      if (!this.tasksOfJob.has(jobId)) this.tasksOfJob.set(jobId, []);
      this.tasksOfJob.get(jobId)!.push(task);
      this.tasks.set(jobId, (this.tasks.get(jobId) ?? 0) + 1);
      this.waiting.delete(jobId);
    }
    // Runs recorded before start-up was modelled carry neither: an instant start, memory unknown.
    const billedFrom = e.t + Number(e.pullStartSeconds ?? 0);
    this.running.set(String(e.taskArn), { t: e.t, vcpu: Number(e.vcpu), memoryGb: Number(e.memoryGb ?? 0), billedFrom, class: cls, task });
    this.taskStarts.push(e.t);
    this.startupSeconds.push(Number(e.startupSeconds ?? 0));
    if (this.waiting.size > 0) {
      this.startsWhileWaiting = this.taskStarts.length;
      this.lastStartWhileWaiting = e.t;
    }
  }

  private taskStopped(e: TwinEvent): void {
    this.vcpu -= Number(e.vcpu);
    const started = this.running.get(String(e.taskArn));
    if (started) {
      this.taskVcpuSeconds += (e.t - started.t) * started.vcpu;
      this.shortestTaskSeconds = Math.min(this.shortestTaskSeconds, e.t - started.t);
      this.own[started.class] -= started.vcpu;
      started.task.stop = e.t;
      const seconds = billedSeconds(e.t - started.billedFrom);
      this.billed[started.class].vcpuSeconds += seconds * started.vcpu;
      this.billed[started.class].gbSeconds += seconds * started.memoryGb;
    }
    this.running.delete(String(e.taskArn));
    if (e.exitCode === 0) this.successes.set(e.jobId!, (this.successes.get(e.jobId!) ?? 0) + 1);
  }

  /** The events that only count something; false for the rest. */
  private counted(e: TwinEvent): boolean {
    switch (e.type) {
      case 'admit':
        this.admittedOrDone++;
        return true;
      case 'runTask':
        this.runTaskCalls++;
        return true;
      case 'throttle':
        this.throttles[String(e.source)] = (this.throttles[String(e.source)] ?? 0) + 1;
        return true;
      case 'vcpuLimit':
        this.vcpuLimit++;
        return true;
      case 'capacityError':
        this.capacityErrors++;
        return true;
      case 'invalidParameter':
        this.invalidParameter++;
        return true;
      case 'crash':
        if (e.function === 'dispatcher') this.injected.dispatcherCrashes++;
        else if (e.function === 'janitor') this.injected.janitorCrashes++;
        return true;
      case 'injectedFault':
        if (e.fault === 'startExecutionError') this.injected.startExecutionErrors++;
        if (e.fault === 'startExecutionLostAnswer') this.injected.startExecutionLostAnswers++;
        else if (e.fault === 'dynamodbThrottle') this.injected.dynamodbThrottles++;
        return true;
      case 'execStart':
        this.executions++;
        return true;
      case 'execEnd':
        this.transitions += Number(e.transitions ?? 0);
        return true;
      case 'lambda':
        this.lambdaInvocations++;
        this.gbSeconds += (Number(e.billedMs) / 1000) * (Number(e.memoryMB) / 1024);
        return true;
      case 'meter':
        for (const [k, v] of Object.entries(e)) if (typeof v === 'number' && k !== 't') this.meters[k] = (this.meters[k] ?? 0) + v;
        return true;
    }
    return false;
  }

  /** Arrivals, the account's others, leaks, releases and how jobs ended. */
  private settled(e: TwinEvent): void {
    switch (e.type) {
      case 'arrive':
        if (!this.arrived.has(e.jobId!)) {
          this.arrived.add(e.jobId!);
          this.waiting.add(e.jobId!);
          this.firstArrive = Math.min(this.firstArrive, e.t);
          this.lastArrive = Math.max(this.lastArrive, e.t);
        }
        break;
      case 'background':
        this.others[classOf(e.class)] = Number(e.vcpu);
        break;
      case 'leak':
        this.leakSeconds.push(secondsBetween(e.since, e.releasedAt));
        break;
      case 'leakStart':
        if (!this.openLeaks.has(String(e.batch))) this.openLeaks.set(String(e.batch), e.t);
        break;
      case 'leakEnd': {
        const since = this.openLeaks.get(String(e.batch));
        if (since !== undefined) this.leakSeconds.push(e.t - since);
        this.openLeaks.delete(String(e.batch));
        break;
      }
      case 'release':
        this.releases.push(e.t);
        this.waitingAt.push(this.arrived.size - this.admittedOrDone);
        break;
      case 'jobDone':
        this.finalStatus.set(e.jobId!, { status: String(e.status), error: e.error ? String(e.error) : undefined });
        this.lastSettle = Math.max(this.lastSettle, e.t);
        break;
      case 'dlq':
        this.dlq.add(e.jobId!);
        this.waiting.delete(e.jobId!);
        this.lastSettle = Math.max(this.lastSettle, e.t);
        break;
    }
  }
}

interface RunningTask {
  /** RunTask accepted: the vCPU is held from here. */
  t: number;
  vcpu: number;
  memoryGb: number;
  /** The image pull's start: Fargate bills from here. */
  billedFrom: number;
  class: UsageClass;
  task: { start: number; stop: number };
}

/** Fargate's billed seconds for a task that ran `seconds` from its pull's start: per second, rounded up, at least a minute. */
function billedSeconds(seconds: number): number {
  // Rounded to the millisecond first, so that 60.0000000001 s of floating-point sums bills 60 s, not 61.
  return Math.max(PRICES.fargateMinimumBilledSeconds, Math.ceil(Math.round(seconds * 1000) / 1000));
}

/** How the arrived jobs ended: succeeded, failed (by kind), in the DLQ, or lost. */
function outcomesOf(t: Tally) {
  let succeeded = 0;
  let failed = 0;
  const failureReasons: Record<string, number> = {};
  for (const jobId of t.arrived) {
    const status = t.finalStatus.get(jobId);
    if (t.dlq.has(jobId) && status?.status !== 'succeeded') continue;
    if (status?.status === 'succeeded') succeeded++;
    else if (status) {
      failed++;
      // Group by kind: execution names and job ids vary per job.
      const reason = (status.error ?? 'unknown').replace(/\b(batch\d+-[0-9a-f]+|job-[0-9a-f]+-a\d+|[0-9a-f]{32})\b/g, '<id>');
      failureReasons[reason] = (failureReasons[reason] ?? 0) + 1;
    }
  }
  const dlqCount = [...t.dlq].filter((j) => t.arrived.has(j) && t.finalStatus.get(j)?.status !== 'succeeded').length;
  return { succeeded, failed, failureReasons, dlqCount, lost: t.arrived.size - succeeded - failed - dlqCount };
}

/** The makespan's lower bound: capacity (budget and free quota over time), launch rate, arrivals. */
function boundOf(t: Tally, events: readonly TwinEvent[], account: ReturnType<typeof accountOf>, start: TwinEvent) {
  const budget = Number(start.budgetVcpu ?? 0);
  const launchRate = Number(start.launchRatePerSecond ?? 0);
  const launchBurst = Number(start.launchBurst ?? 0);
  const origin = Number.isFinite(t.firstArrive) ? t.firstArrive : 0;
  // The jobs whose task ended: one still running when the run stopped is not in its makespan.
  const ranJobs = [...t.tasksOfJob.values()].filter((tasks) => tasks.some((task) => Number.isFinite(task.stop))).length;
  const byBudget = budget > 0 ? t.taskVcpuSeconds / budget : 0;
  // The bound on the FREE quota: the stage can run at most min(budget, Σ over its classes of quota − others) vCPU
  // at each moment, others at what the scenario says they run (the `background` steps). The work done must fit
  // under that curve, so the makespan is at least the T with ∫₀ᵀ min(budget, free(t)) dt = Σ task-seconds × vCPU —
  // work / min(budget, quota − others) weighted by how long each background level lasts. Alone in the account
  // (free ≥ budget) it is work / budget.
  const usable = usableVcpuOverTime(events, account, budget);
  const byCapacity = budget > 0 ? timeToServe(t.taskVcpuSeconds, origin, usable, byBudget) : 0;
  // Packed, the fewest launches that run those jobs: a task per objectsPerTask of them.
  const fewestLaunches = Math.ceil(ranJobs / Math.max(1, Number(start.objectsPerTask ?? 1)));
  const launches = { n: fewestLaunches, burst: launchBurst, rate: launchRate, hold: Number.isFinite(t.shortestTaskSeconds) ? t.shortestTaskSeconds : 0 };
  // Tasks at once: what the stage could use (a design without a limiter: its peak), in tasks of the smallest size.
  const rate = launchTerm({ ...launches, slots: slotsOf(Math.max(t.peak, ...usable.map((p) => p.vcpu)), t.smallestTaskVcpu) });
  // As before the account was shared: the bucket alone.
  const byRateOnBudget = launchTerm({ ...launches, slots: Infinity }).seconds;
  const byArrival = t.lastArrive - origin;
  const lowerBound = Math.max(byCapacity, rate.seconds, byArrival);
  // The usable vCPU in effect while the bound's work was served: [origin, origin + bound].
  const usableValues = usable.filter((p, i) => p.t <= origin + byCapacity && (i + 1 === usable.length || usable[i + 1].t > origin)).map((p) => p.vcpu);
  const usableMin = Math.min(...usableValues);
  const usableMax = Math.max(...usableValues);
  const capacityTerm =
    usableMin === usableMax
      ? `Σ (start-up + run) × vCPU / min(budget, free quota) = ${round(t.taskVcpuSeconds)} / ${round(usableMin)} = ${round(byCapacity)} s`
      : `Σ (start-up + run) × vCPU = ${round(t.taskVcpuSeconds)} served under min(budget ${budget}, free quota) = ${round(usableMin)}–${round(usableMax)} vCPU over time → ${round(byCapacity)} s`;

  return { makespan: t.lastSettle - origin, lowerBound, byBudget, byRateOnBudget, byArrival, capacityTerm, rateTerm: rate.text };
}

/** How many tasks of `taskVcpu` fit in `vcpu` at once; Infinity when no task ran. */
function slotsOf(vcpu: number, taskVcpu: number): number {
  return Number.isFinite(taskVcpu) && taskVcpu > 0 ? Math.floor(vcpu / taskVcpu + 1e-9) : Infinity;
}

/**
 * The launch rate's part of the bound: the bucket starts full, so launch k goes no sooner than (k − burst) / rate;
 * with at most `slots` tasks at once, each held at least `hold` (the shortest task's start-up + run), no sooner than
 * `hold` after launch k − slots either. The last of n launches then runs its task.
 */
export function launchTerm({ n, burst, rate, hold, slots }: { n: number; burst: number; rate: number; hold: number; slots: number }): {
  seconds: number;
  text: string;
} {
  if (rate <= 0) return { seconds: 0, text: 'no launch rate' };
  const at: number[] = [];
  for (let k = 1; k <= n; k++) {
    const byBucket = Math.max(0, k - burst) / rate;
    at.push(k > slots ? Math.max(byBucket, at[k - 1 - slots] + hold) : byBucket);
  }
  const lastLaunch = at[n - 1] ?? 0;
  const seconds = lastLaunch + hold;
  const byBucketAlone = `(N − burst) / launch rate + shortest task (start-up + run) = (${n} − ${burst}) / ${rate} + ${round(hold)}`;
  if (lastLaunch <= Math.max(0, n - burst) / rate) return { seconds, text: `${byBucketAlone} = ${round(seconds)} s` };
  return {
    seconds,
    text: `${byBucketAlone}, at most ${slots} tasks at once, each launch ${round(hold)} s after the one ${slots} before it: ${round(lastLaunch)} + ${round(hold)} = ${round(seconds)} s`,
  };
}

/** Launches per second while jobs waited (Report.launchesPerSecond): from the first task start to the last that left jobs waiting. */
function launchRateOf(t: Tally, launchBurst: number): number | null {
  const window = t.lastStartWhileWaiting - (t.taskStarts[0] ?? 0);
  const launches = t.startsWhileWaiting - launchBurst;
  return launches > 0 && window > 0 ? round(launches / window) : null;
}

/** Admission latency: each release while jobs waited is matched with the first later task start. */
function latencyOf(t: Tally) {
  const latencies: number[] = [];
  let s = 0;
  t.releases.forEach((r, i) => {
    if (t.waitingAt[i] <= 0) return;
    while (s < t.taskStarts.length && t.taskStarts[s] < r) s++;
    if (s < t.taskStarts.length) latencies.push(t.taskStarts[s++] - r);
  });
  latencies.sort((a, b) => a - b);
  return { median: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), samples: latencies.length };
}

/** The q-quantile of sorted values (the smallest with at least q of them at or below it); null if there are none. */
function quantile(sorted: readonly number[], q: number): number | null {
  return sorted.length === 0 ? null : round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]);
}

/** Each started task's RunTask → RUNNING. */
function startupOf(t: Tally): Report['startup'] {
  const sorted = [...t.startupSeconds].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), samples: sorted.length };
}

/** Orchestration cost per 1,000 objects at list prices, and the requests it is made of. */
function costOf(t: Tally) {
  const reads = t.meters.ddbReads ?? 0;
  const writes = t.meters.ddbWrites ?? 0;
  const readUnits = t.meters.ddbReadUnits ?? 0;
  const writeUnits = t.meters.ddbWriteUnits ?? 0;
  const sqsRequests = t.meters.sqsRequests ?? 0;
  const per1000 = t.arrived.size > 0 ? 1000 / t.arrived.size : 0;
  const cost = {
    stepFunctions: t.transitions * PRICES.stepFunctionsPerTransition * per1000,
    lambda: (t.lambdaInvocations * PRICES.lambdaPerRequest + t.gbSeconds * PRICES.lambdaPerGbSecond) * per1000,
    dynamodb: (readUnits * PRICES.dynamodbPerReadUnit + writeUnits * PRICES.dynamodbPerWriteUnit) * per1000,
    sqs: sqsRequests * PRICES.sqsPerRequest * per1000,
  };
  const orchestration = cost.stepFunctions + cost.lambda + cost.dynamodb + cost.sqs;
  return { reads, writes, readUnits, writeUnits, sqsRequests, cost, orchestration };
}

const FARGATE_PRICE: Record<UsageClass, { vcpuHour: number; gbHour: number }> = {
  onDemand: { vcpuHour: PRICES.fargatePerVcpuHour, gbHour: PRICES.fargatePerGbHour },
  spot: { vcpuHour: PRICES.fargateSpotPerVcpuHour, gbHour: PRICES.fargateSpotPerGbHour },
};

/** What Fargate bills per 1,000 objects at list prices, by resource and by class. */
function fargateCostOf(t: Tally): Report['fargateCostPer1k'] {
  const per1000 = t.arrived.size > 0 ? 1000 / t.arrived.size : 0;
  const vcpuOf = (c: UsageClass) => (t.billed[c].vcpuSeconds / 3600) * FARGATE_PRICE[c].vcpuHour * per1000;
  const memoryOf = (c: UsageClass) => (t.billed[c].gbSeconds / 3600) * FARGATE_PRICE[c].gbHour * per1000;
  const sum = (f: (c: UsageClass) => number) => CLASSES.reduce((total, c) => total + f(c), 0);
  return {
    vcpu: round(sum(vcpuOf), 4),
    memory: round(sum(memoryOf), 4),
    onDemand: round(vcpuOf('onDemand') + memoryOf('onDemand'), 4),
    spot: round(vcpuOf('spot') + memoryOf('spot'), 4),
    total: round(sum(vcpuOf) + sum(memoryOf), 4),
  };
}

export function computeReport(events: readonly TwinEvent[]): Report {
  const start = events.find((e) => e.type === 'start') ?? ({} as TwinEvent);
  const end = events.find((e) => e.type === 'end');
  const endT = end?.t ?? events.reduce((t, e) => Math.max(t, e.t), 0);
  const t = Tally.of(events, endT);
  // Spread in the Report's field order, the order report.json shows them in.
  return {
    design: String(start.design ?? 'unknown'),
    stage: String(start.stage ?? 'unknown'),
    seed: Number(start.seed ?? 0),
    ...jobFigures(t),
    ...makespanFigures(boundOf(t, events, accountOf(events), start)),
    launchesPerSecond: launchRateOf(t, Number(start.launchBurst ?? 0)),
    ...capacityFigures(t, events, start, endT),
    ...runTaskFigures(t),
    maxLeakSeconds: round(Math.max(0, ...t.leakSeconds)),
    leaks: t.leakSeconds.length,
    injectedFaults: t.injected,
    ...orchestrationFigures(t),
    startup: startupOf(t),
    admissionLatencySeconds: latencyOf(t),
    ...routeFiguresOf(events, usableVcpuOverTime(events, accountOf(events), Number(start.budgetVcpu ?? 0))),
    virtualSeconds: round(end?.t ?? t.lastSettle),
    stoppedBy: String(end?.stoppedBy ?? 'unknown'),
  };
}

/** One route's figures (Report.routes). */
export interface RouteFigures {
  objects: number;
  succeeded: number;
  failed: number;
  dlq: number;
  /** Arrival → its job's first task (RunTask accepted), seconds. */
  waitSeconds: { median: number | null; p99: number | null; samples: number };
  /** What its tasks held: Σ (start-up + run) × vCPU. */
  vcpuSeconds: number;
  peakVcpu: number;
  /** Its cap (the stage's `maxVcpu` for it, as the run's start event lists the routes), if it has one. */
  maxVcpu?: number;
  /** Its first arrival → its last job settled. */
  makespanSeconds: number;
  /**
   * The time its work needed on what the other routes left: its vCPU-seconds served under min(budget, free quota)
   * less what the others held at each moment (and no more than its cap), from its first arrival; at least until its
   * last arrival.
   */
  lowerBoundSeconds: number;
  makespanRatio: number;
}

type Step = { t: number; vcpu: number };

/** Appends a step function's value from `t` on (a later value at the same time replaces the earlier). */
function stepTo(points: Step[], t: number, vcpu: number): void {
  const last = points[points.length - 1];
  if (last && last.t === t) last.vcpu = vcpu;
  else if (!last || last.vcpu !== vcpu) points.push({ t, vcpu });
}

/** One route's jobs, folded from the events that name it, in time order. */
class RouteTally {
  readonly arrivedAt = new Map<string, number>();
  readonly waits: number[] = [];
  readonly status = new Map<string, string>();
  readonly dlq = new Set<string>();
  /** vCPU held, and jobs waiting for their first task, over time. */
  readonly held: Step[] = [{ t: 0, vcpu: 0 }];
  readonly backlog: Step[] = [{ t: 0, vcpu: 0 }];
  readonly tasks = new Map<string, { t: number; vcpu: number }>();
  vcpuSeconds = 0;
  peak = 0;
  firstArrive = Infinity;
  lastArrive = 0;
  lastSettle = 0;
  private waiting = new Set<string>();

  on(e: TwinEvent): void {
    const jobId = e.jobId!;
    if (e.type === 'arrive' && !this.arrivedAt.has(jobId)) {
      this.arrivedAt.set(jobId, e.t);
      this.waiting.add(jobId);
      this.firstArrive = Math.min(this.firstArrive, e.t);
      this.lastArrive = Math.max(this.lastArrive, e.t);
    } else if (e.type === 'taskStart') {
      for (const id of (e.jobIds as string[] | undefined) ?? [jobId]) if (this.waiting.delete(id)) this.waits.push(e.t - this.arrivedAt.get(id)!);
      this.tasks.set(String(e.taskArn), { t: e.t, vcpu: Number(e.vcpu) });
      this.hold(e.t, Number(e.vcpu));
    } else if (e.type === 'taskStop') {
      const task = this.tasks.get(String(e.taskArn));
      if (task) this.vcpuSeconds += (e.t - task.t) * task.vcpu;
      this.tasks.delete(String(e.taskArn));
      this.hold(e.t, -Number(e.vcpu));
    } else if (e.type === 'jobDone' || e.type === 'dlq') {
      if (e.type === 'jobDone') this.status.set(jobId, String(e.status));
      else this.dlq.add(jobId);
      this.waiting.delete(jobId);
      this.lastSettle = Math.max(this.lastSettle, e.t);
    }
    stepTo(this.backlog, e.t, this.waiting.size);
  }

  private hold(t: number, vcpu: number): void {
    const now = this.held[this.held.length - 1].vcpu + vcpu;
    stepTo(this.held, t, now);
    this.peak = Math.max(this.peak, now);
  }

  figures(usable: readonly Step[]): RouteFigures {
    const waits = [...this.waits].sort((a, b) => a - b);
    const arrived = [...this.arrivedAt.keys()];
    const succeeded = arrived.filter((j) => this.status.get(j) === 'succeeded').length;
    const dlq = arrived.filter((j) => this.dlq.has(j) && this.status.get(j) !== 'succeeded').length;
    const failed = arrived.filter((j) => this.status.has(j) && this.status.get(j) !== 'succeeded' && !this.dlq.has(j)).length;
    const origin = Number.isFinite(this.firstArrive) ? this.firstArrive : 0;
    const makespan = this.lastSettle - origin;
    const bound = Math.max(timeToServe(this.vcpuSeconds, origin, usable, Infinity), this.lastArrive - origin);
    return {
      objects: arrived.length,
      succeeded,
      failed,
      dlq,
      waitSeconds: { median: quantile(waits, 0.5), p99: quantile(waits, 0.99), samples: waits.length },
      vcpuSeconds: round(this.vcpuSeconds),
      peakVcpu: round(this.peak),
      makespanSeconds: round(makespan),
      lowerBoundSeconds: round(bound),
      makespanRatio: bound > 0 && Number.isFinite(bound) ? round(makespan / bound, 4) : 0,
    };
  }
}

/** The value of a step function at t (its last point at or before t). */
function valueAt(points: readonly Step[], t: number): number {
  let value = 0;
  for (const p of points) {
    if (p.t > t) break;
    value = p.vcpu;
  }
  return value;
}

/** Step functions combined point by point: f of their values at each time any of them changes. */
function combine(fns: ReadonlyArray<readonly Step[]>, f: (values: number[]) => number): Step[] {
  const times = [...new Set(fns.flatMap((points) => points.map((p) => p.t)))].sort((a, b) => a - b);
  const at = fns.map(() => 0);
  const next = fns.map(() => 0);
  const out: Step[] = [];
  for (const t of times) {
    fns.forEach((points, i) => {
      while (next[i] < points.length && points[next[i]].t <= t) at[i] = points[next[i]++].vcpu;
    });
    stepTo(out, t, f(at));
  }
  return out;
}

/** ∫ of a step function over [from, to), and its lowest value there. */
function over(points: readonly Step[], from: number, to: number): { integral: number; min: number } {
  let integral = 0;
  let min = valueAt(points, from);
  points.forEach((p, i) => {
    const start = Math.max(from, p.t);
    const end = Math.min(to, i + 1 < points.length ? points[i + 1].t : Infinity);
    if (end <= start) return;
    integral += p.vcpu * (end - start);
    min = Math.min(min, p.vcpu);
  });
  return { integral, min };
}

const ROUTE_WINDOW_SECONDS = 600;

/** Report.routes and Report.routeWindows: each route's jobs and use, and how the routes shared while all had backlog. */
function routeFiguresOf(events: readonly TwinEvent[], usable: readonly Step[]): Pick<Report, 'routes' | 'routeWindows'> {
  const tallies = new Map<string, RouteTally>();
  for (const e of events) {
    if (typeof e.route !== 'string' || !e.jobId) continue;
    if (!tallies.has(e.route)) tallies.set(e.route, new RouteTally());
    tallies.get(e.route)!.on(e);
  }
  const names = [...tallies.keys()].sort();
  const held = names.map((name) => tallies.get(name)!.held);
  const stageRoutes = (events.find((e) => e.type === 'start')?.routes ?? []) as Array<{ name: string; maxVcpu?: number }>;
  const capOf = (name: string) => stageRoutes.find((r) => r.name === name)?.maxVcpu;
  const routes: Record<string, RouteFigures> = {};
  names.forEach((name, i) => {
    // What the others leave: the usable vCPU less what every other route held, and no more than its cap.
    const cap = capOf(name);
    const left = combine([usable, ...held], ([u, ...h]) => Math.min(cap ?? Infinity, Math.max(0, u - h.reduce((sum, v, j) => (j === i ? sum : sum + v), 0))));
    routes[name] = { ...tallies.get(name)!.figures(left), ...(cap !== undefined ? { maxVcpu: cap } : {}) };
  });
  const all = [...tallies.values()];
  const origin = Math.min(...all.map((r) => r.firstArrive));
  const end = Math.max(0, ...all.map((r) => r.lastSettle));
  const routeWindows: Report['routeWindows'] = [];
  for (let from = origin; from + ROUTE_WINDOW_SECONDS <= end; from += ROUTE_WINDOW_SECONDS) {
    const to = from + ROUTE_WINDOW_SECONDS;
    if (!all.every((r) => over(r.backlog, from, to).min > 0)) continue;
    routeWindows.push({
      from: round(from),
      to: round(to),
      vcpuSeconds: Object.fromEntries(names.map((name) => [name, round(over(tallies.get(name)!.held, from, to).integral)])),
    });
  }
  return { routes, routeWindows };
}

/** How many jobs arrived, how they ended, and which ran more than once. */
function jobFigures(
  t: Tally,
): Pick<Report, 'objects' | 'succeeded' | 'failed' | 'lost' | 'dlq' | 'jobsRunMoreThanOnce' | 'jobsWithRetries' | 'jobsRunTwice' | 'failureReasons'> {
  const { succeeded, failed, failureReasons, dlqCount, lost } = outcomesOf(t);
  return {
    objects: t.arrived.size,
    succeeded,
    failed,
    lost,
    dlq: dlqCount,
    jobsRunMoreThanOnce: [...t.successes.values()].filter((n) => n > 1).length,
    jobsWithRetries: [...t.tasks.values()].filter((n) => n > 1).length,
    jobsRunTwice: [...t.tasksOfJob.entries()].filter(([jobId, list]) => (t.successes.get(jobId) ?? 0) > 1 || overlaps(list)).length,
    failureReasons,
  };
}

/** The makespan against its lower bound, with the bound's terms written out. */
function makespanFigures(
  bound: ReturnType<typeof boundOf>,
): Pick<Report, 'makespanSeconds' | 'lowerBoundSeconds' | 'lowerBoundFormula' | 'lowerBoundOnBudgetSeconds' | 'makespanRatio'> {
  const { makespan, lowerBound, byBudget, byRateOnBudget, byArrival, capacityTerm, rateTerm } = bound;
  return {
    makespanSeconds: round(makespan),
    lowerBoundSeconds: round(lowerBound),
    lowerBoundFormula: `max(${capacityTerm}, ${rateTerm}, last arrival = ${round(byArrival)} s)`,
    lowerBoundOnBudgetSeconds: round(Math.max(byBudget, byRateOnBudget, byArrival)),
    makespanRatio: lowerBound > 0 ? round(makespan / lowerBound, 4) : 0,
  };
}

/** The budget (configured and as applied), the quota, and the vCPU this stage and the account peaked at. */
function capacityFigures(
  t: Tally,
  events: readonly TwinEvent[],
  start: TwinEvent,
  endT: number,
): Pick<Report, 'budgetVcpu' | 'effectiveBudget' | 'accountVcpuQuota' | 'peakVcpu' | 'peakAccountVcpu' | 'objectsPerTask'> {
  const budget = Number(start.budgetVcpu ?? 0);
  const effective = timeWeighted(budgetOverTime(events, budget), endT);
  return {
    objectsPerTask: Number(start.objectsPerTask ?? 1),
    budgetVcpu: budget,
    effectiveBudget: { min: round(effective.min), median: round(effective.median) },
    accountVcpuQuota: Number(start.accountVcpuQuota ?? 0),
    peakVcpu: round(t.peak),
    peakAccountVcpu: { onDemand: round(t.peakAccount.onDemand), spot: round(t.peakAccount.spot) },
  };
}

/** RunTask calls, the tasks they started, and each kind of refusal. */
function runTaskFigures(
  t: Tally,
): Pick<
  Report,
  'runTaskCalls' | 'tasksStarted' | 'throttles' | 'vcpuLimitErrors' | 'vcpuLimitShareOfRunTaskCalls' | 'invalidParameterErrors' | 'capacityErrors'
> {
  const throttleTotal = Object.values(t.throttles).reduce((a, b) => a + b, 0);
  return {
    runTaskCalls: t.runTaskCalls,
    tasksStarted: t.taskStarts.length,
    throttles: { total: throttleTotal, bySource: t.throttles, startExecution: t.meters.startExecutionThrottles ?? 0 },
    vcpuLimitErrors: t.vcpuLimit,
    vcpuLimitShareOfRunTaskCalls: t.runTaskCalls > 0 ? round(t.vcpuLimit / t.runTaskCalls, 4) : 0,
    invalidParameterErrors: t.invalidParameter,
    capacityErrors: t.capacityErrors,
  };
}

/** What orchestrating the jobs took (executions, transitions, Lambda, DynamoDB, SQS) and cost per 1,000 objects. */
function orchestrationFigures(
  t: Tally,
): Pick<
  Report,
  | 'executions'
  | 'stateTransitions'
  | 'stateTransitionsPerObject'
  | 'lambdaInvocations'
  | 'lambdaGbSeconds'
  | 'lambdaThrottles'
  | 'dynamodbRequests'
  | 'dynamodbCapacityUnits'
  | 'writeUnitsPerObject'
  | 'sqsRequests'
  | 'orchestrationCostPer1k'
  | 'fargateCostPer1k'
  | 'totalCostPer1k'
  | 'costFormula'
> {
  const { reads, writes, readUnits, writeUnits, sqsRequests, cost, orchestration } = costOf(t);
  const fargate = fargateCostOf(t);
  return {
    executions: t.executions,
    stateTransitions: t.transitions,
    stateTransitionsPerObject: t.arrived.size > 0 ? round(t.transitions / t.arrived.size, 2) : 0,
    lambdaInvocations: t.lambdaInvocations,
    lambdaGbSeconds: round(t.gbSeconds),
    lambdaThrottles: t.meters.lambdaThrottles ?? 0,
    dynamodbRequests: { reads, writes },
    dynamodbCapacityUnits: { read: round(readUnits, 1), write: writeUnits },
    writeUnitsPerObject: t.arrived.size > 0 ? round(writeUnits / t.arrived.size, 2) : 0,
    sqsRequests,
    orchestrationCostPer1k: {
      stepFunctions: round(cost.stepFunctions, 4),
      lambda: round(cost.lambda, 4),
      dynamodb: round(cost.dynamodb, 4),
      sqs: round(cost.sqs, 4),
      total: round(orchestration, 4),
    },
    fargateCostPer1k: fargate,
    totalCostPer1k: round(orchestration + fargate.total, 4),
    costFormula: COST_FORMULA,
  };
}

const COST_FORMULA =
  `USD per 1,000 objects, ${PRICES.region} list prices (${PRICES.asOf}, twin/prices.ts). Orchestration: transitions × $0.025/1k + ` +
  `Lambda requests × $0.20/M + GB-s × $0.0000166667 + DynamoDB write units × $0.625/M + read units × $0.125/M + SQS requests × $0.40/M. ` +
  `Fargate, per task: max(${PRICES.fargateMinimumBilledSeconds} s, ⌈stop − pull start⌉) × (vCPU × $${PRICES.fargatePerVcpuHour}/h + GB × ` +
  `$${PRICES.fargatePerGbHour}/h) On-Demand, × (vCPU × $${round(PRICES.fargateSpotPerVcpuHour, 6)}/h + GB × $${round(PRICES.fargateSpotPerGbHour, 7)}/h) Spot`;

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
    `makespan ${fmt(report.makespanSeconds)} vs lower bound ${fmt(report.lowerBoundSeconds)} → ratio ${report.makespanRatio}; ${report.launchesPerSecond ?? '–'} launches/s while jobs waited`,
    `peak ${report.peakVcpu} vCPU vs budget ${report.budgetVcpu} (${ok(report.peakVcpu <= report.budgetVcpu)}), effective budget min ${report.effectiveBudget.min} / median ${report.effectiveBudget.median}, quota ${report.accountVcpuQuota}`,
    `account peak (this stage + others): On-Demand ${report.peakAccountVcpu.onDemand}, Spot ${report.peakAccountVcpu.spot} vCPU`,
    `RunTask ${report.runTaskCalls} calls, ${report.throttles.total} throttled, ${report.vcpuLimitErrors} over the vCPU limit (${(report.vcpuLimitShareOfRunTaskCalls * 100).toFixed(1)} %), ${report.invalidParameterErrors} InvalidParameter, ${report.capacityErrors} capacity errors; StartExecution throttled ${report.throttles.startExecution}`,
    `${report.stateTransitions} state transitions (${report.stateTransitionsPerObject}/object), ${report.lambdaInvocations} Lambda invocations, DynamoDB ${report.dynamodbRequests.writes} writes + ${report.dynamodbRequests.reads} reads (${report.dynamodbCapacityUnits.write} + ${report.dynamodbCapacityUnits.read} capacity units, ${report.writeUnitsPerObject} write units/object), SQS ${report.sqsRequests} requests`,
    `per 1,000 objects: Fargate ≈ $${report.fargateCostPer1k.total.toFixed(2)} (On-Demand $${report.fargateCostPer1k.onDemand.toFixed(2)}, Spot $${report.fargateCostPer1k.spot.toFixed(2)}), orchestration ≈ $${report.orchestrationCostPer1k.total.toFixed(4)}`,
    `start-up (RunTask → RUNNING): p50 ${report.startup.p50 ?? '–'} s, p99 ${report.startup.p99 ?? '–'} s`,
    `admission latency: median ${report.admissionLatencySeconds.median ?? '–'} s, p99 ${report.admissionLatencySeconds.p99 ?? '–'} s (${report.admissionLatencySeconds.samples} samples)`,
  ];
  const f = report.injectedFaults;
  if (f.dispatcherCrashes + f.janitorCrashes + f.startExecutionErrors + f.startExecutionLostAnswers + f.dynamodbThrottles > 0 || report.leaks > 0) {
    lines.push(
      `injected: ${f.dispatcherCrashes} dispatcher and ${f.janitorCrashes} janitor crashes, ${f.startExecutionErrors} StartExecution 5xx ` +
        `(+${f.startExecutionLostAnswers} after it started), ${f.dynamodbThrottles} DynamoDB throttles; ` +
        `${report.leaks} leaked batches, longest ${report.maxLeakSeconds} s`,
    );
  }
  lines.push(...routeLines(report));
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

/** Each route's share of the vCPU-seconds over the windows in which every route had backlog: lowest and highest. */
export function routeShares(report: Pick<Report, 'routeWindows'>): Record<string, { min: number; max: number }> {
  const shares: Record<string, { min: number; max: number }> = {};
  for (const window of report.routeWindows) {
    const total = Object.values(window.vcpuSeconds).reduce((a, b) => a + b, 0);
    for (const [route, vcpuSeconds] of Object.entries(window.vcpuSeconds)) {
      const share = total > 0 ? vcpuSeconds / total : 0;
      shares[route] = { min: Math.min(shares[route]?.min ?? 1, share), max: Math.max(shares[route]?.max ?? 0, share) };
    }
  }
  return shares;
}

/** A line per route, and one for how they shared while all had backlog; none without routes. */
export function routeLines(report: Pick<Report, 'routes' | 'routeWindows'>): string[] {
  const lines = Object.entries(report.routes).map(
    ([name, r]) =>
      `route ${name}: ${r.objects} objects → ${r.succeeded} succeeded, ${r.failed} failed, ${r.dlq} in the DLQ; wait median ${r.waitSeconds.median ?? '–'} s, ` +
      `p99 ${r.waitSeconds.p99 ?? '–'} s; peak ${r.peakVcpu} vCPU, ${r.vcpuSeconds} vCPU-s; makespan ${fmt(r.makespanSeconds)} vs ${fmt(r.lowerBoundSeconds)} ` +
      `on what the others left → ${r.makespanRatio}`,
  );
  const shares = Object.entries(routeShares(report));
  if (shares.length > 0) {
    const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
    lines.push(
      `share of vCPU-seconds in the ${report.routeWindows.length} 10-minute windows in which every route had backlog: ` +
        shares.map(([name, { min, max }]) => `${name} ${pct(min)}–${pct(max)}`).join(', '),
    );
  }
  return lines;
}

export function fmt(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(2)} h`;
}
