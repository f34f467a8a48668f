/**
 * DESIGN.md's invariants as predicates over the engines' state, checked after every step of a schedule (and some at
 * the moment something happens: an admission commits, a task starts, a message is dead-lettered, a janitor sweep
 * ends). The state is read from the engines themselves: the tables through DynamoDB's own write stream (every item
 * as it stands after each committed write), the queues and executions as the emulators hold them.
 *
 * - lost: every upload not yet succeeded or failed has a message in the intake queue (visible, in flight or delayed)
 *   or in its DLQ (alarmed, and put back by redrive --dlq), or a lease whose batch record exists (the janitor settles
 *   those);
 * - dead-lettered: only a message its consumers kept dying on reaches the intake DLQ without a reason;
 * - over-budget: when an admission commits, the vCPU leased is within the effective budget it was admitted under;
 * - counters: admitted − Σ released equals the vCPU of the leases held, after every step;
 * - lease-for-ended-execution: no lease is taken for an execution that has already ended;
 * - twice: no job has two tasks at once, and none runs again after it succeeded (or after a packed task's worker
 *   recorded it done);
 * - leak: once a janitor sweep completes, no lease is held by an execution that ended (its tasks given their stop
 *   grace) or never started (its grace passed) before the sweep began;
 * - failed-unjustly: a job fails only for its own task's failure, or after the executions allowed died under it —
 *   never for lack of capacity, never because an execution succeeded;
 * - redrive: a redrive run twice sends nothing the second time, unless the job moved in between;
 * - actor-error: no actor dies of a programming error (a TypeError is a bug, not a fault);
 * - unsettled (at the end): with the script played and nothing failing any more, every upload reaches an end.
 */
import { CAPACITY_CLASSES, type CapacityClass } from '../functions/capacity-codes';
import { ADMITTED_BY_CLASS, byClassOf, ownByClass } from '../functions/placement';
import { LEDGER_KEY_PREFIX } from '../functions/ledger';
import { OBJECT_BAD_INPUT } from '../functions/ledger';
import { EXIT_CODES } from '../task-image/src/exit-codes';
import { ADMITTED_BY_ROUTE, CAP_OF_ROUTE, ownByRoute, routeCap } from '../functions/routes';
import { countsOf } from '../functions/counts';
import { effectiveBudget, POOL_KEY, RELEASED_KEY_PREFIX, releasedOf, type PoolState } from '../functions/limiter';
import type { EcsStandIn, Execution } from './engines';
import type { Actor } from './gates';
import type { ExplorerStage } from './stage';

/** What the invariants read of a world: its clock, its stage, its executions, tasks and queues. */
export interface WorldView {
  readonly clock: { seconds(): number; now(): number };
  readonly es: ExplorerStage;
  readonly sfn: { readonly executions: ReadonlyMap<string, Execution> };
  readonly ecs: Pick<EcsStandIn, 'running'>;
  /** Every route's intake queue. */
  readonly intakeUrls: readonly string[];
  readonly sqs: { messages(url: string): ReadonlyArray<{ readonly state: string; readonly body: string }> };
  readonly gates: ReadonlyArray<{ readonly key: string }>;
  /** The jobs of every message in the intake queue (visible, in flight or delayed) and in its DLQ. */
  jobsWithMessages(): Set<string>;
  /** The jobs of the messages in the intake DLQ. */
  deadLetteredJobs(): Set<string>;
}

export interface Violation {
  readonly kind: string;
  readonly message: string;
  /** Virtual seconds since the schedule began. */
  readonly atSeconds: number;
}

interface Row {
  readonly jobId: string;
  readonly status?: string;
  readonly lease?: { readonly execution: string; readonly vcpu: number; readonly capacityProvider?: CapacityClass; readonly route?: string };
  readonly error?: string;
  readonly [field: string]: unknown;
}

const EPSILON = 1e-6;
const PROGRAMMING_ERRORS = new Set(['TypeError', 'ReferenceError', 'RangeError', 'SyntaxError']);

export class Invariants {
  violation: Violation | undefined;
  private readonly uploadedJobs = new Set<string>();
  private readonly rows = new Map<string, Row>();
  private pool: Record<string, any> | undefined;
  private readonly shards = new Map<string, Record<string, unknown>>();
  private readonly records = new Map<string, { admittedAt: number; jobIds: readonly string[] }>();
  private admissionCommitted = false;
  /** What each route's leases held after the last step: a cap lowered below it does not make it an over-cap. */
  private readonly heldBefore = new Map<string, number>();
  private readonly nonZeroExits = new Set<string>();
  private readonly refusedAsBadInput = new Set<string>();
  private readonly finishedByWorker = new Set<string>();
  /** Per job: executions that ended other than SUCCEEDED with it in their input. */
  private readonly diedUnder = new Map<string, number>();

  constructor(private readonly world: WorldView) {}

  private fail(kind: string, message: string): void {
    this.violation ??= { kind, message, atSeconds: this.world.clock.seconds() };
  }

  uploaded(jobId: string): void {
    this.uploadedJobs.add(jobId);
  }

  /** An item of the state or batches table as it stands after a committed write (undefined: deleted). */
  written(table: string, key: Record<string, unknown>, item: Record<string, unknown> | undefined): void {
    if (table === this.world.es.dispatcher.batchesTableName) {
      // A packed task's worker finished these objects: none of them may run again.
      const outcomes = (item?.outcomes ?? {}) as Record<string, { status?: string }>;
      for (const [jobId, outcome] of Object.entries(outcomes)) if (outcome.status === 'succeeded') this.finishedByWorker.add(jobId);
      if (item)
        this.records.set(String(key.execution), { admittedAt: Number(item.admittedAt), jobIds: (item.jobs as Array<{ jobId: string }>).map((j) => j.jobId) });
      else this.records.delete(String(key.execution));
      return;
    }
    const pk = String(key.pk);
    if (pk === POOL_KEY.pk) {
      if (item && this.pool && Number(item.admittedVcpu) > Number(this.pool.admittedVcpu)) this.admissionCommitted = true;
      this.pool = item;
    } else if (pk.startsWith(RELEASED_KEY_PREFIX)) {
      this.shards.set(pk, item ?? {});
    } else if (pk.startsWith(LEDGER_KEY_PREFIX)) {
      const jobId = pk.slice(LEDGER_KEY_PREFIX.length);
      const before = this.rows.get(jobId);
      if (!item) {
        this.rows.delete(jobId);
        return;
      }
      const row = item as Row;
      this.rows.set(jobId, row);
      if (row.lease && row.lease.execution !== before?.lease?.execution) this.leaseTaken(jobId, row.lease.execution);
      if (row.status === 'failed' && before?.status !== 'failed') this.checkFailure(jobId, row);
    }
  }

  private leaseTaken(jobId: string, name: string): void {
    const execution = [...this.world.sfn.executions.values()].find((e) => e.name === name);
    if (execution && execution.status !== 'RUNNING') {
      this.fail('lease-for-ended-execution', `job ${short(jobId)} took a lease for execution ${name}, which had already ended ${execution.status}`);
    }
  }

  private checkFailure(jobId: string, row: Row): void {
    const error = String(row.error ?? '');
    if (error === 'States.TaskFailed' && this.nonZeroExits.has(jobId)) return;
    // A packed task's object its worker refused (functions/packing.ts): that object alone fails.
    if (error === OBJECT_BAD_INPUT && this.refusedAsBadInput.has(jobId)) return;
    if (error === 'States.Timeout') return;
    const died = /^Execution(ABORTED|TIMED_OUT|FAILED)$/.test(error);
    if (died && (this.diedUnder.get(jobId) ?? 0) >= this.world.es.janitor.maxExecutionAttempts) return;
    this.fail(
      'failed-unjustly',
      `job ${short(jobId)} failed with ${error} (${String(row.cause ?? '').slice(0, 160)}); ` +
        `its tasks ${this.nonZeroExits.has(jobId) ? 'did' : 'never'} exit non-zero, ${this.diedUnder.get(jobId) ?? 0} execution(s) died under it`,
    );
  }

  /** RunTask is about to start a task for `jobId`. */
  taskStarting(jobId: string, execution: string): void {
    const running = this.world.ecs.running().filter((t) => t.jobIds.includes(jobId));
    if (running.length > 0) {
      this.fail('twice', `job ${short(jobId)} got a second task (execution ${execution}) while one still runs (execution ${running[0].execution})`);
    } else if (this.rows.get(jobId)?.status === 'succeeded') {
      this.fail('twice', `job ${short(jobId)} ran again (execution ${execution}) after it succeeded`);
    } else if (this.finishedByWorker.has(jobId)) {
      this.fail('twice', `job ${short(jobId)} ran again (execution ${execution}) after a packed task's worker had finished it`);
    }
  }

  taskExited(jobId: string, code: number): void {
    if (code !== 0) this.nonZeroExits.add(jobId);
    if (code === EXIT_CODES.badInput) this.refusedAsBadInput.add(jobId);
  }

  executionStarted(_execution: Execution): void {}

  executionEnded(execution: Execution): void {
    if (execution.status === 'SUCCEEDED') return;
    // Every job of its batch: a packed batch's input names only each task's lead.
    const jobIds = this.records.get(execution.name)?.jobIds ?? execution.jobIds;
    for (const jobId of jobIds) this.diedUnder.set(jobId, (this.diedUnder.get(jobId) ?? 0) + 1);
  }

  actorEnded(actor: Actor): void {
    if (actor.state === 'failed' && PROGRAMMING_ERRORS.has((actor.error as Error)?.name)) {
      this.fail('actor-error', `${actor.label} died of ${(actor.error as Error).name}: ${(actor.error as Error).message}`);
    }
    if (actor.kind === 'janitor' && actor.state === 'done') this.checkLeaks(actor.startedAt);
  }

  /** After a sweep that began at `sweptAt` and completed: no lease of a batch it should have settled is left. */
  private checkLeaks(sweptAt: number): void {
    const { janitor } = this.world.es;
    const stopGraceMs = (janitor as { stopGraceMs?: number }).stopGraceMs ?? 0;
    for (const [jobId, row] of this.rows) {
      if (!row.lease) continue;
      const execution = [...this.world.sfn.executions.values()].find((e) => e.name === row.lease!.execution);
      if (execution && execution.status !== 'RUNNING' && execution.stopDate! <= sweptAt - stopGraceMs) {
        this.fail('leak', `job ${short(jobId)} still holds a lease of execution ${execution.name}, which ended ${execution.status} before the janitor's sweep`);
      }
      const record = this.records.get(row.lease.execution);
      if (!execution && (!record || record.admittedAt <= sweptAt - janitor.startGraceMs)) {
        this.fail('leak', `job ${short(jobId)} still holds a lease of ${row.lease.execution}, which never started, after a sweep past its grace`);
      }
    }
  }

  /** A message SQS moved to the intake DLQ (maxReceiveCount), and who had received it. */
  deadLettered(messageId: string, receivers: readonly Actor[]): void {
    const alive = receivers.filter((a) => a.state === 'done' || a.state === 'running');
    if (alive.length > 0) {
      this.fail(
        'dead-lettered',
        `message ${messageId} reached the intake DLQ without a reason; ${alive.map((a) => a.label).join(', ')} received it and did not die`,
      );
    }
  }

  /** The second of two redrives in a row: `redriven` is what it put back; `before` the jobs' rows between the two. */
  redrivenTwice(redriven: readonly string[], before: string): void {
    if (redriven.length > 0 && this.rowsDigest() === before) {
      this.fail('redrive', `a second redrive put back ${redriven.map(short).join(', ')} again, though nothing had changed since the first`);
    }
  }

  afterStep(): void {
    if (this.violation) return;
    this.checkAdmission();
    this.checkCounters();
    this.checkNothingLost();
    for (const route of this.world.es.dispatcher.routes ?? []) this.heldBefore.set(route.name, this.leasedVcpu({ route: route.name }));
  }

  private poolState(): PoolState | undefined {
    if (!this.pool) return undefined;
    const released = releasedOf([...this.shards.values()]);
    const p = this.pool;
    return {
      budgetVcpu: Number(p.budgetVcpu),
      ratePerSecond: Number(p.ratePerSecond),
      burst: Number(p.burst),
      admittedVcpu: Number(p.admittedVcpu ?? 0),
      admittedByClass: byClassOf(p, ADMITTED_BY_CLASS),
      batchesAdmitted: Number(p.batchesAdmitted ?? 0),
      releasedVcpu: released.vcpu,
      releasedByClass: released.byClass,
      admittedByRoute: countsOf(p, ADMITTED_BY_ROUTE),
      routeCaps: countsOf(p, CAP_OF_ROUTE),
      releasedByRoute: released.byRoute,
      classShortAt: released.classShortAt,
      tat: Number(p.tat ?? 0),
      account: p.account,
      capacityLimitAt: p.capacityLimitAt,
    };
  }

  /** The vCPU the leases hold: in all, or of the tasks placed in one capacity class, or of one route's jobs. */
  private leasedVcpu(of: { capacityClass?: CapacityClass; route?: string } = {}): number {
    let leased = 0;
    for (const { lease } of this.rows.values()) {
      if (!lease || (of.capacityClass && lease.capacityProvider !== of.capacityClass) || (of.route && lease.route !== of.route)) continue;
      leased += Number(lease.vcpu);
    }
    return leased;
  }

  private checkAdmission(): void {
    if (!this.admissionCommitted) return;
    this.admissionCommitted = false;
    const pool = this.poolState()!;
    const effective = effectiveBudget(pool, this.world.clock.now()).vcpu;
    const leased = this.leasedVcpu();
    if (leased > effective + EPSILON) this.fail('over-budget', `an admission left ${leased} vCPU leased under an effective budget of ${effective}`);
    for (const route of this.world.es.dispatcher.routes ?? []) {
      const held = this.leasedVcpu({ route: route.name });
      // The cap in force (an operator's, else the configured one); held above a cap just lowered, the route may keep
      // what it holds, never take more.
      const cap = routeCap(route, pool.routeCaps);
      const before = this.heldBefore.get(route.name) ?? 0;
      if (cap !== undefined && held > Math.max(cap, before) + EPSILON)
        this.fail('over-cap', `an admission left ${held} vCPU leased to route ${route.name}, over its cap of ${cap} (it held ${before} before)`);
    }
  }

  private checkCounters(): void {
    const pool = this.poolState();
    if (!pool) return;
    const inUse = pool.admittedVcpu - pool.releasedVcpu;
    const leased = this.leasedVcpu();
    if (Math.abs(inUse - leased) > EPSILON) {
      this.fail(
        'counters',
        `the pool counts ${round(inUse)} vCPU in use (admitted ${pool.admittedVcpu} − released ${round(pool.releasedVcpu)}), the leases hold ${leased}`,
      );
      return;
    }
    // Placement goes by the stage's own use per class: each class's counters must match its leases too.
    const own = ownByClass(pool);
    for (const capacityClass of CAPACITY_CLASSES) {
      const counted = own[capacityClass] ?? 0;
      const held = this.leasedVcpu({ capacityClass });
      if (Math.abs(counted - held) > EPSILON) {
        this.fail('counters', `the pool counts ${round(counted)} vCPU in use in ${capacityClass}, its leases there hold ${held}`);
        return;
      }
    }
    // Shares and caps go by each route's use: its counters must match its jobs' leases.
    const byRoute = ownByRoute(pool);
    for (const route of this.world.es.dispatcher.routes ?? []) {
      const counted = byRoute[route.name] ?? 0;
      const held = this.leasedVcpu({ route: route.name });
      if (Math.abs(counted - held) > EPSILON) {
        this.fail('counters', `the pool counts ${round(counted)} vCPU in use by route ${route.name}, its leases hold ${held}`);
        return;
      }
    }
  }

  private checkNothingLost(): void {
    const withMessages = this.world.jobsWithMessages();
    for (const jobId of this.uploadedJobs) {
      const row = this.rows.get(jobId);
      if (row?.status === 'succeeded' || row?.status === 'failed') continue;
      if (withMessages.has(jobId)) continue;
      if (row?.lease && this.records.has(row.lease.execution)) continue;
      this.fail(
        'lost',
        `job ${short(jobId)} is ${row?.status ?? 'unknown to the ledger'}${row?.lease ? ` with a lease of ${row.lease.execution} (no batch record)` : ', holds no lease'} and has no message: nothing will run it`,
      );
      return;
    }
  }

  /**
   * Every upload has reached an end — succeeded, failed, or its message in the DLQ (where the DLQ alarm leaves it for
   * an operator) — no lease is held and no message waits in the intake queue.
   */
  allSettled(): boolean {
    const parked = this.world.deadLetteredJobs();
    for (const jobId of this.uploadedJobs) {
      const status = this.rows.get(jobId)?.status;
      if (status !== 'succeeded' && status !== 'failed' && !parked.has(jobId)) return false;
    }
    for (const row of this.rows.values()) if (row.lease) return false;
    return this.world.intakeUrls.every((url) => this.world.sqs.messages(url).length === 0);
  }

  /** At the end of a schedule that stopped short of settling (a stage left paused is not expected to settle). */
  unsettled(why: string): void {
    if (this.pool && Number(this.pool.budgetVcpu) === 0) return;
    const open = [...this.uploadedJobs].filter((j) => !['succeeded', 'failed'].includes(String(this.rows.get(j)?.status)));
    const leases = [...this.rows.values()].filter((r) => r.lease).map((r) => `${short(r.jobId)}→${r.lease!.execution}`);
    this.fail(
      'unsettled',
      `${why}: ${open.length} upload(s) not ended (${open.map((j) => `${short(j)} ${this.rows.get(j)?.status ?? 'no row'}`).join(', ')}); leases held: ${leases.join(', ') || 'none'}`,
    );
  }

  rowsDigest(): string {
    return JSON.stringify([...this.rows.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /** What the state is, for counting distinct states: rows, counters, records, messages, executions and gates. */
  digest(): string {
    const rows = [...this.rows.values()]
      .map((r) => `${short(r.jobId)}:${r.status}:${r.lease?.execution ?? ''}:${String(r.admissions)}:${String(r.failedRuns)}`)
      .sort();
    const pool = this.poolState();
    const messages = this.world.intakeUrls.map((url) =>
      this.world.sqs
        .messages(url)
        .map((m) => `${m.state}:${m.body.length}`)
        .sort(),
    );
    const executions = [...this.world.sfn.executions.values()].map((e) => `${e.name}:${e.status}`).sort();
    const gates = this.world.gates.map((g) => g.key).sort();
    return JSON.stringify([
      rows,
      pool?.admittedVcpu,
      pool?.releasedVcpu,
      pool?.budgetVcpu,
      pool?.capacityLimitAt ?? '',
      [...this.records.keys()].sort(),
      messages,
      executions,
      gates,
    ]);
  }
}

const short = (jobId: string) => jobId.slice(0, 8);
const round = (n: number) => Math.round(n * 1e6) / 1e6;
