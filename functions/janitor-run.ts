/**
 * One janitor run's context: what it was given (clients, clock, settings, log) and what it counts (its summary) —
 * passed whole to each step of the sweep (functions/janitor.ts) instead of piece by piece.
 */
import type { JanitorSettings } from './environment';
import type { JanitorRunSummary } from './log-events';
import type { AwsClient, Clock, Log } from './runtime';

export interface JanitorRun {
  readonly sfn: AwsClient;
  readonly sqs: AwsClient;
  readonly lambda: AwsClient;
  readonly ddb: AwsClient;
  readonly clock: Clock;
  readonly settings: JanitorSettings;
  readonly log: Log;
  readonly summary: JanitorRunSummary;
}

export function emptyJanitorSummary(): JanitorRunSummary {
  return {
    batches: 0,
    settled: 0,
    released: 0,
    sweptLeases: 0,
    requeued: 0,
    failed: 0,
    jobsSucceeded: 0,
    jobsFailed: 0,
    stillRunning: 0,
    drift: null,
    repaired: false,
  };
}
