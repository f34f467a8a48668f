/**
 * What a dispatcher run and a janitor run report: their summary log line, whose numbers functions/metrics.ts turns
 * into metrics. Apart from the functions, so the metrics table can name their fields without importing them.
 */

export interface DispatcherRunSummary {
  admitted: number;
  executionsStarted: number;
  poison: number;
  duplicates: number;
  /** Messages handed back because a lease for their job was still held. */
  deferred: number;
  /** Sleeps for a token or a fuller batch while work waited. */
  waits: number;
  /** Batches a dispatcher that died between admission and StartExecution left, found and given back. */
  reclaimed: number;
  stoppedBecause: 'queue-empty' | 'no-budget' | 'account-full' | 'time-limit' | 'start-failed' | 'contention';
}

export interface JanitorRunSummary {
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
}
