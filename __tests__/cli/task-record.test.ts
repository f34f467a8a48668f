import { GetExecutionHistoryCommand } from '@aws-sdk/client-sfn';
import { taskTimeOf } from '../../cli/find';
import type { StageClients } from '../../cli/stage';
import { describeTaskTimes, taskRecord } from '../../cli/task-record';
import type { LedgerRow } from '../../functions/ledger';

const TASK = 'arn:aws:ecs:eu-west-1:111111111111:task/sluice-dev/abc';

/** An execution's history, page by page, as GetExecutionHistory answers it; anything else is refused. */
function historyOf(pages: unknown[][], error?: Error): StageClients {
  const sfn = {
    send: async (command: unknown) => {
      if (!(command instanceof GetExecutionHistoryCommand)) throw new Error(`unexpected ${String(command)}`);
      if (error) throw error;
      const page = Number(command.input.nextToken ?? 0);
      return { events: pages[page], ...(page + 1 < pages.length ? { nextToken: String(page + 1) } : {}) };
    },
  };
  return { sfn } as unknown as StageClients;
}

const succeeded = (task: Record<string, unknown>) => ({
  type: 'TaskSucceeded',
  taskSucceededEventDetails: { resourceType: 'ecs', resource: 'runTask.sync', output: JSON.stringify(task) },
});

describe("a task's times, from its execution's record", () => {
  test('found on a later page, epoch ms and ISO strings alike; another task of the batch is not it', async () => {
    const clients = historyOf([
      [succeeded({ TaskArn: `${TASK}-other`, CreatedAt: 1 })],
      [
        succeeded({
          TaskArn: TASK,
          CreatedAt: 1_000_000,
          PullStartedAt: '1970-01-01T00:16:48.000Z',
          PullStoppedAt: 1_030_000,
          StartedAt: 1_037_200,
          StoppedAt: 1_337_200,
          CapacityProviderName: 'FARGATE_SPOT',
        }),
      ],
    ]);
    const task = await taskRecord(clients, 'arn:execution', TASK);
    expect(task).toMatchObject({ createdAt: 1_000_000, pullStartedAt: 1_008_000, startedAt: 1_037_200, capacityProvider: 'FARGATE_SPOT' });
    expect(describeTaskTimes(task!)).toBe('start-up 37.2 s (RunTask → RUNNING; image pull 22.0 s), ran 300.0 s, on FARGATE_SPOT');
  });

  test('parts a task never reached are left out', () => {
    expect(describeTaskTimes({ createdAt: 0, startedAt: 20_000, capacityProvider: 'FARGATE' })).toBe('start-up 20.0 s (RunTask → RUNNING), on FARGATE');
    expect(describeTaskTimes({ createdAt: 0, stoppedAt: 5_000 })).toBe('never RUNNING');
  });

  test('sluice find: a succeeded job’s task time; a history it may not read says why and fails nothing', async () => {
    const row = { status: 'succeeded', executionArn: 'arn:execution', taskArn: TASK } as LedgerRow;
    const clients = historyOf([[succeeded({ TaskArn: TASK, CreatedAt: 0, StartedAt: 35_000, StoppedAt: 95_000 })]]);
    expect(await taskTimeOf(clients, row)).toEqual({ taskTime: 'start-up 35.0 s (RunTask → RUNNING), ran 60.0 s' });
    expect(await taskTimeOf(historyOf([[]]), row)).toEqual({ taskTime: 'not in its execution’s history' });
    const denied = Object.assign(new Error('no'), { name: 'AccessDeniedException' });
    expect(await taskTimeOf(historyOf([[]], denied), row)).toEqual({
      taskTime: "not known: the execution's history could not be read (AccessDeniedException)",
    });
    // Only a succeeded job has a task whose record is asked for.
    expect(await taskTimeOf(historyOf([[]], new Error('never asked')), { ...row, status: 'running' })).toEqual({});
  });
});
