/**
 * Leaked leases, as the report counts them: vCPU a batch holds in the limiter while nothing runs for it. A batch
 * leaks from the moment its execution has ended with leases still held, or the dispatcher run that admitted it
 * ended without starting it (it crashed), until its last lease is given back — by the janitor or the next
 * dispatcher run. Emits `leakStart` and `leakEnd` with the batch's name.
 *
 * What it watches is the ledger as committed (each job row's `lease.execution`), not what any function says it did:
 * a release that a function believes it made but that never committed keeps the leak open.
 */
interface LeakEvents {
  emit(type: 'leakStart' | 'leakEnd', data: { batch: string; leases: number }): void;
}

export class LeakWatch {
  private readonly holderOf = new Map<string, string>();
  private readonly leasesOf = new Map<string, Set<string>>();
  private readonly leaking = new Set<string>();

  constructor(
    private readonly events: LeakEvents,
    /** The batch's execution: never started, running, or ended. */
    private readonly executionOf: (batch: string) => 'none' | 'running' | 'ended',
  ) {}

  /** A job's row as committed: held by `batch`, or by none. */
  leaseChanged(jobId: string, batch: string | undefined): void {
    const before = this.holderOf.get(jobId);
    if (before === batch) return;
    if (before !== undefined) {
      const leases = this.leasesOf.get(before);
      leases?.delete(jobId);
      if (leases && leases.size === 0) {
        this.leasesOf.delete(before);
        if (this.leaking.delete(before)) this.events.emit('leakEnd', { batch: before, leases: 0 });
      }
    }
    if (batch === undefined) {
      this.holderOf.delete(jobId);
      return;
    }
    this.holderOf.set(jobId, batch);
    if (!this.leasesOf.has(batch)) this.leasesOf.set(batch, new Set());
    this.leasesOf.get(batch)!.add(jobId);
    // A lease taken for an execution that has already ended: no release will come for it, it leaks from now.
    if (this.executionOf(batch) === 'ended') this.check(batch);
  }

  /** An execution ended: its batch leaks if it still holds leases. */
  executionEnded(batch: string): void {
    this.check(batch);
  }

  /** A dispatcher run ended (returned or died): every batch it left holding leases and never started leaks. */
  dispatcherRunEnded(): void {
    for (const batch of this.leasesOf.keys()) if (this.executionOf(batch) === 'none') this.check(batch);
  }

  /** Batches leaking now. */
  open(): string[] {
    return [...this.leaking];
  }

  private check(batch: string): void {
    const leases = this.leasesOf.get(batch)?.size ?? 0;
    if (leases === 0 || this.leaking.has(batch) || this.executionOf(batch) === 'running') return;
    this.leaking.add(batch);
    this.events.emit('leakStart', { batch, leases });
  }
}
