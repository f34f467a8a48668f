/**
 * Every event the functions log, as one typed union: a reader (the twin, a test, the metrics table) matches on
 * `event` and the compiler checks both the name and the fields. The run summaries' numbers become metrics
 * (functions/metrics.ts). Apart from the functions, so their readers need not import them.
 */

export type DispatcherRunSummary = {
  admitted: number;
  executionsStarted: number;
  poison: number;
  duplicates: number;
  /** Messages handed back because a lease for their job was still held. */
  deferred: number;
  /** Pauses for a token or a fuller batch while work waited (a batch window counts once, however often it looks again). */
  waits: number;
  /** Batches a dispatcher that died between admission and StartExecution left, found and given back. */
  reclaimed: number;
  stoppedBecause: 'queue-empty' | 'no-budget' | 'account-full' | 'routes-held' | 'time-limit' | 'start-failed' | 'contention' | 'release-seen';
};

export type JanitorRunSummary = {
  batches: number;
  settled: number;
  released: number;
  /**
   * Of those, leases the sweep found — held for a batch whose execution had ended or never started, other than the
   * one this run was told about: capacity kept from waiting work for up to a janitor period.
   */
  sweptLeases: number;
  requeued: number;
  /** Jobs the janitor failed: their executions ended without a result too often. */
  failed: number;
  /** Outcomes of the batches settled this run, each job counted once (its batch's record goes when settled). */
  jobsSucceeded: number;
  /** Failed by the state machine (bad input, a task that kept failing) or by the janitor. */
  jobsFailed: number;
  stillRunning: number;
  /** vCPU in use minus vCPU the live leases hold, as measured; 0 when consistent, null when it could not be measured. */
  drift: number | null;
  repaired: boolean;
};

/** What the finisher did with a packed task's objects (functions/finish-task.ts). */
export type FinishSummary = {
  objects: number;
  succeeded: number;
  failed: number;
  /** Sent back to their queue (no capacity for the task now). */
  returned: number;
  /** Their lease was already given back (a retry of this call, or the janitor). */
  alreadyGivenBack: number;
};

/** How an account measurement looked, per capacity class. */
interface ClassReading {
  readonly quotaVcpu: number;
  readonly usedVcpu: number;
  readonly othersVcpu: number;
}

export type LogEvent =
  // dispatcher
  | ({ event: 'dispatcherDone'; ms: number } & DispatcherRunSummary)
  | { event: 'admitted'; execution: string; jobs: number; jobIds: string[] }
  | { event: 'poison'; messageId?: string; reason: string }
  /** A job found in another route's queue (sent by a previous version while a deploy rolled out), sent on to its own. */
  | { event: 'forwardedToRoute'; messageId?: string; key: string; from: string; to: string }
  | { event: 'duplicate'; jobId: string; key: string; status?: string }
  | { event: 'leaseStillHeld'; jobId: string; batch?: string }
  | { event: 'startFailed'; execution: string; error: string; message: string }
  | { event: 'unstartedBatchReclaimed'; batch: string; jobs: number }
  | { event: 'lastLookNotKept'; error: string; message: string }
  // janitor
  | ({ event: 'janitorDone' } & JanitorRunSummary)
  | { event: 'leaseReclaimed'; jobId: string; batch: string; executionState: string; outcome: 'queued' | 'failed' | 'succeeded' | 'unchanged' }
  /** `partDriftVcpu`: the drift of each class's and route's counters that drifted, by their admitted counter's name. */
  | { event: 'counterDrift'; inUseVcpu: number; heldByLeasesVcpu: number; driftVcpu: number; partDriftVcpu: Readonly<Record<string, number>> }
  | { event: 'counterRepaired'; driftVcpu: number; partDriftVcpu: Readonly<Record<string, number>> }
  | { event: 'counterRepairDeferred'; reason: string }
  | { event: 'batchNotSettled'; batch: string; error: string; message: string }
  // finisher
  | ({ event: 'taskFinished'; execution: string; task: number; outcome: 'ran' | 'failed' | 'returned' } & FinishSummary)
  | { event: 'packSettledAlready'; execution: string; task: number }
  // capacity reader
  | {
      event: 'capacityRead';
      freeVcpu: number;
      budgetVcpu: number;
      effectiveVcpu: number;
      inUseVcpu: number;
      classes: Readonly<Record<string, ClassReading>>;
      changed: boolean;
    }
  | { event: 'capacityReadingSuperseded'; reason: string }
  /** Each route's use as the capacity reader found it (a metric per route for the dashboard). */
  | { event: 'routeUse'; route: string; inUseVcpu: number }
  // configure-pool
  | { event: 'poolConfigured'; budgetVcpu: number; ratePerSecond: number; burst: number };
