/**
 * The janitor: settles leases that no release will come for. Woken by this state machine's executions
 * ending FAILED, TIMED_OUT or ABORTED, and by a schedule, it sweeps every lease:
 * - its execution ended → release it; a job the execution left unfinished is re-queued (or failed once
 *   its attempts are spent);
 * - its execution never started (the dispatcher stopped between admission and StartExecution) and the
 *   grace period passed → release it; the job's intake message was never deleted, so it comes back alone;
 * - its execution still runs → leave it, even past expiry (the state machine's timeout equals the lease
 *   duration, so this does not last); releasing it would break the cap.
 * Then it wakes the dispatcher if anything was freed.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { markFailedCommand, readLedgerRow, requeueJob } from './ledger';
import { readPool, releaseCommand, tryUpdate, type DocumentClient, type Lease } from './pool';
import { jsonLog, systemClock, type Clock, type Log } from './runtime';
import { janitorSettingsFromEnv, type JanitorSettings } from './environment';
import { executionArnOf } from './jobs';
import type { Sender } from './dispatcher';

export interface JanitorDeps {
  readonly sfn: Sender;
  readonly sqs: Sender;
  readonly lambda: Sender;
  readonly ddb: DocumentClient;
  readonly clock: Clock;
  readonly settings: JanitorSettings;
  readonly log?: Log;
}

export interface JanitorRunSummary {
  leases: number;
  released: number;
  requeued: number;
  failed: number;
  stillRunning: number;
}

const ENDED = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

type ExecutionState = { readonly kind: 'running' } | { readonly kind: 'ended'; readonly status: string } | { readonly kind: 'missing' };

async function executionState(sfn: Sender, arn: string): Promise<ExecutionState> {
  try {
    const { status } = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    return ENDED.has(status) ? { kind: 'ended', status } : { kind: 'running' };
  } catch (error) {
    if ((error as Error).name === 'ExecutionDoesNotExist') return { kind: 'missing' };
    throw error;
  }
}

export async function runJanitor(deps: JanitorDeps): Promise<JanitorRunSummary> {
  const { sfn, ddb, clock, settings } = deps;
  const log = deps.log ?? (() => undefined);
  const pool = await readPool(ddb, settings.tableName);
  const byExecution = new Map<string, Array<[string, Lease]>>();
  for (const [jobId, lease] of Object.entries(pool.leases)) {
    byExecution.set(lease.execution, [...(byExecution.get(lease.execution) ?? []), [jobId, lease]]);
  }
  const summary: JanitorRunSummary = { leases: Object.keys(pool.leases).length, released: 0, requeued: 0, failed: 0, stillRunning: 0 };

  for (const [execution, leases] of byExecution) {
    const arn = executionArnOf(settings.stateMachineArn, execution);
    const state = await executionState(sfn, arn);
    const now = clock.now();
    if (state.kind === 'running') {
      summary.stillRunning += leases.length;
      continue;
    }
    if (state.kind === 'missing' && leases.every(([, lease]) => now - lease.admittedAt < settings.startGraceMs && now < lease.expiresAt)) {
      continue; // the dispatcher may be starting it right now
    }
    for (const [jobId, lease] of leases) {
      // One lease at a time: a lease released meanwhile by the state machine just fails its condition.
      const released = await tryUpdate(ddb, releaseCommand(settings.tableName, [{ jobId, vcpu: lease.vcpu, execution }], now));
      if (!released) continue;
      summary.released++;
      log({ event: 'leaseReclaimed', jobId, execution, executionState: state.kind === 'ended' ? state.status : 'never started' });
      if (state.kind === 'ended') await settleUnfinishedJob(deps, jobId, execution, state.status, summary, log);
    }
  }
  if (summary.released > 0) {
    await deps.lambda.send(new InvokeCommand({ FunctionName: settings.dispatcherFunctionName, InvocationType: 'Event', Payload: Buffer.from('{"reason":"janitor"}') }));
  }
  log({ event: 'janitorDone', ...summary });
  return summary;
}

/** A job still marked running by an execution that ended never recorded a result: retry it or fail it. */
async function settleUnfinishedJob(deps: JanitorDeps, jobId: string, execution: string, status: string, summary: JanitorRunSummary, log: Log) {
  const { ddb, clock, settings } = deps;
  const row = await readLedgerRow(ddb, settings.tableName, jobId);
  if (!row || row.status !== 'running' || row.executionName !== execution) return;
  const reason = `execution ${execution} ended ${status} before the job finished`;
  if (row.attempts >= settings.maxExecutionAttempts) {
    await ddb.send(new UpdateCommand(markFailedCommand(settings.tableName, jobId, `Execution${status}`, `${reason}; gave up after ${row.attempts} attempt(s)`, clock.now())));
    summary.failed++;
    log({ event: 'jobFailed', jobId, reason });
    return;
  }
  if (!(await requeueJob(deps, settings, row, 'running', reason, clock.now()))) return; // settled by someone else meanwhile
  summary.requeued++;
  log({ event: 'jobRequeued', jobId, attempt: row.attempts, reason });
}

let clients: { sfn: SFNClient; sqs: SQSClient; lambda: LambdaClient; ddb: DynamoDBDocumentClient } | undefined;

export async function handler(): Promise<JanitorRunSummary> {
  clients ??= { sfn: new SFNClient({}), sqs: new SQSClient({}), lambda: new LambdaClient({}), ddb: DynamoDBDocumentClient.from(new DynamoDBClient({})) };
  return runJanitor({ ...clients, clock: systemClock, settings: janitorSettingsFromEnv(), log: jsonLog('janitor') });
}
