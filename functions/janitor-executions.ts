/** What the janitor asks Step Functions: whether a batch's execution runs, ended (and how) or never started. */
import { DescribeExecutionCommand, ListExecutionsCommand } from '@aws-sdk/client-sfn';
import type { JanitorSettings } from './environment';
import type { AwsClient } from './runtime';

const ENDED = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

export type ExecutionState =
  | { readonly kind: 'running' }
  | { readonly kind: 'ended'; readonly status: string; readonly stoppedAt?: number; readonly error?: string }
  | { readonly kind: 'missing' };
export type Ended = Extract<ExecutionState, { kind: 'ended' }>;

export async function executionState(sfn: AwsClient, arn: string): Promise<ExecutionState> {
  try {
    const { status, stopDate, error } = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    if (status === undefined || !ENDED.has(status)) return { kind: 'running' };
    return { kind: 'ended', status, ...(stopDate ? { stoppedAt: new Date(stopDate).getTime() } : {}), ...(error ? { error } : {}) };
  } catch (error) {
    if ((error as Error).name === 'ExecutionDoesNotExist') return { kind: 'missing' };
    throw error;
  }
}

/**
 * An execution that did not succeed had its running tasks stopped by Step Functions: each gets SIGTERM, and SIGKILL
 * after the container's stop timeout. Until then a task may still run: its job keeps its lease (and its vCPU stays
 * counted), so its next round cannot start beside it.
 */
export function tasksMayStillStop(state: Ended, now: number, settings: JanitorSettings): boolean {
  return state.status !== 'SUCCEEDED' && now < (state.stoppedAt ?? now) + settings.stopGraceMs;
}

export async function runningExecutions(sfn: AwsClient, stateMachineArn: string): Promise<Set<string>> {
  const names = new Set<string>();
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', maxResults: 1000, nextToken }));
    for (const { name } of page.executions ?? []) if (name !== undefined) names.add(name);
    nextToken = page.nextToken;
  } while (nextToken);
  return names;
}
