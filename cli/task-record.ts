/**
 * A job's task as its execution recorded it: RunTask's `.sync` result (the stopped task, as DescribeTasks gives it)
 * in the execution's history, which Step Functions keeps for 90 days after a Standard execution ends. `sluice smoke`
 * and `sluice find` read it for where the task's time went; the ledger row names the execution and the task.
 */
import { GetExecutionHistoryCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import { WORKER_CONTAINER_NAME } from '../task-image/image-reference';
import type { StageClients } from './stage';

/** The task's moments (epoch ms: those it reached), its capacity class and its image. */
export interface TaskRecord {
  readonly createdAt?: number;
  readonly pullStartedAt?: number;
  readonly pullStoppedAt?: number;
  readonly startedAt?: number;
  readonly stoppedAt?: number;
  readonly capacityProvider?: string;
  readonly image?: string;
  readonly imageDigest?: string;
}

interface DescribedTask {
  TaskArn?: string;
  CreatedAt?: number | string;
  PullStartedAt?: number | string;
  PullStoppedAt?: number | string;
  StartedAt?: number | string;
  StoppedAt?: number | string;
  CapacityProviderName?: string;
  Containers?: Array<{ Name?: string; Image?: string; ImageDigest?: string }>;
}

/** The task `taskArn` as `executionArn` recorded it, or undefined when its history has no such task. */
export async function taskRecord(clients: StageClients, executionArn: string, taskArn: string): Promise<TaskRecord | undefined> {
  let nextToken: string | undefined;
  do {
    const page = await clients.sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 1000 }));
    for (const event of (page.events ?? []) as HistoryEvent[]) {
      const output = event.taskSucceededEventDetails?.output;
      if (!output || !output.includes(taskArn)) continue;
      const task = JSON.parse(output) as DescribedTask;
      if (task.TaskArn !== taskArn) continue;
      const container = task.Containers?.find((c) => c.Name === WORKER_CONTAINER_NAME);
      return {
        createdAt: epochMs(task.CreatedAt),
        pullStartedAt: epochMs(task.PullStartedAt),
        pullStoppedAt: epochMs(task.PullStoppedAt),
        startedAt: epochMs(task.StartedAt),
        stoppedAt: epochMs(task.StoppedAt),
        capacityProvider: task.CapacityProviderName,
        image: container?.Image,
        imageDigest: container?.ImageDigest,
      };
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return undefined;
}

/** ECS timestamps as Step Functions passes them on: epoch milliseconds, or an ISO string. */
function epochMs(value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === 'number' ? value : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

export const secondsBetween = (from: number | undefined, to: number | undefined) => (from !== undefined && to !== undefined ? (to - from) / 1000 : undefined);

/**
 * Where the task's time went, in one line: RunTask → RUNNING (the start-up: placement, the image pull, the
 * container's start), the pull alone, the run, and the class it ran in. Parts the task never reached are left out.
 */
export function describeTaskTimes(task: TaskRecord): string {
  const startup = secondsBetween(task.createdAt, task.startedAt);
  const pull = secondsBetween(task.pullStartedAt, task.pullStoppedAt);
  const run = secondsBetween(task.startedAt, task.stoppedAt);
  const parts = [
    startup !== undefined
      ? `start-up ${startup.toFixed(1)} s (RunTask → RUNNING${pull !== undefined ? `; image pull ${pull.toFixed(1)} s` : ''})`
      : 'never RUNNING',
    ...(run !== undefined ? [`ran ${run.toFixed(1)} s`] : []),
    ...(task.capacityProvider ? [`on ${task.capacityProvider}`] : []),
  ];
  return parts.join(', ');
}
