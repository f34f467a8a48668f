import { WORKER_BAD_INPUT_EXIT_CODE } from '../../functions/packing';
import { EXIT_CODES } from '../../task-image/src/exit-codes';
import type { BatchRecord, BatchRecordJob } from '../../functions/batches';
import { OUTCOMES_ATTRIBUTE as CONTROL_PLANE_OUTCOMES_ATTRIBUTE, type ObjectOutcome as ControlPlaneOutcome } from '../../functions/packing';
import {
  BATCH_KEY_ATTRIBUTE,
  JOBS_ATTRIBUTE,
  MAX_OUTCOME_REASON_BYTES,
  OBJECT_OUTCOME_STATUSES,
  objectOutcome,
  OUTCOMES_ATTRIBUTE,
  outcomeUpdate,
  taskListOf,
  type BatchRecordObject,
  type ObjectOutcome,
} from '../../task-image/src/batch-record';
import { objectJobConfig, readPackedTaskConfig, STATE_TIMEOUT_MARGIN_MS } from '../../task-image/src/job-config';

/** Whether A and B are the same type (each assignable to the other). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

describe('the worker’s copy of the batch record’s wire format agrees with the control plane’s', () => {
  test('the outcomes attribute', () => {
    expect(OUTCOMES_ATTRIBUTE).toBe(CONTROL_PLANE_OUTCOMES_ATTRIBUTE);
  });

  test('the outcome’s statuses and shape, the key and the list (types: `npm run typecheck` fails when they drift)', () => {
    // jest strips types: these constants only compile while the two copies agree.
    const statusesAgree: Same<ControlPlaneOutcome['status'], (typeof OBJECT_OUTCOME_STATUSES)[number]> = true;
    const outcomesAgree: Same<ControlPlaneOutcome, ObjectOutcome> = true;
    const entriesAgree: Same<Pick<BatchRecordJob, keyof BatchRecordObject>, BatchRecordObject> = true;
    const key: keyof BatchRecord = BATCH_KEY_ATTRIBUTE;
    const jobs: keyof BatchRecord = JOBS_ATTRIBUTE;
    const outcomes: keyof BatchRecord = OUTCOMES_ATTRIBUTE;
    expect([statusesAgree, outcomesAgree, entriesAgree]).toEqual([true, true, true]);
    expect([key, jobs, outcomes]).toEqual(['execution', 'jobs', 'outcomes']);
    expect([...OBJECT_OUTCOME_STATUSES].sort()).toEqual(['failed', 'succeeded']);
  });

  test('a record as the control plane writes it is read by the worker; its outcome is one the control plane reads', () => {
    const record: BatchRecord = {
      execution: 'b-1',
      jobs: [
        { jobId: 'lead', vcpu: 1, capacityProvider: 'FARGATE_SPOT', route: 'r', task: 0, bucket: 'in', key: 'a.txt', versionId: 'v1' },
        { jobId: 'other-task', vcpu: 1, task: 1, bucket: 'in', key: 'b.txt', versionId: '' },
        { jobId: 'second', vcpu: 0, task: 0, bucket: 'in', key: 'c.txt', versionId: '' },
      ],
      admittedAt: 1,
      expiresAt: 2,
      outcomes: { lead: { status: 'succeeded', at: '2026-12-08T00:00:00.000Z' } },
    };
    expect(taskListOf(record as unknown as Record<string, unknown>, 0)).toEqual({
      objects: [
        { jobId: 'lead', bucket: 'in', key: 'a.txt', versionId: 'v1' },
        { jobId: 'second', bucket: 'in', key: 'c.txt', versionId: undefined },
      ],
      outcomes: record.outcomes,
    });
    const written: ControlPlaneOutcome = outcomeUpdate('t', 'b-1', 'second', objectOutcome('failed', 'no such object')).ExpressionAttributeValues[':outcome'];
    expect(written).toEqual({ status: 'failed', reason: 'no such object', at: expect.any(String) });
  });
});

describe('taskListOf: a record that gives no list is never the objects’ fault', () => {
  const entry = { jobId: 'j', vcpu: 1, task: 0, bucket: 'in', key: 'k' };
  test.each([
    ['no record', undefined, 'does not exist'],
    ['no jobs list', { execution: 'b' }, 'no "jobs" list'],
    ['outcomes not a map', { execution: 'b', jobs: [entry], outcomes: ['x'] }, 'is not a map'],
    ['no entry for the task', { execution: 'b', jobs: [{ ...entry, task: 1 }] }, 'no objects for task 0'],
    ['an entry without its object', { execution: 'b', jobs: [{ jobId: 'j', vcpu: 1, task: 0 }] }, 'is malformed'],
  ])('%s', (_name, item, unusable) => {
    expect(taskListOf(item as Record<string, unknown> | undefined, 0)).toEqual({ unusable: expect.stringContaining(unusable) });
  });

  test('a record admitted before outcomes existed reads as none recorded', () => {
    expect(taskListOf({ execution: 'b', jobs: [entry] }, 0)).toMatchObject({ outcomes: {} });
  });
});

test('an outcome’s reason is cut to fit 98 of them in one item, counted in bytes, never splitting a character', () => {
  const outcome = objectOutcome('failed', 'x'.repeat(5_000), new Date(0));
  expect(Buffer.byteLength(outcome.reason!)).toBe(MAX_OUTCOME_REASON_BYTES);
  expect(outcome.reason?.endsWith('…')).toBe(true);
  // Four bytes each: 1,000 characters would be 4 KB.
  const wide = objectOutcome('failed', '😀'.repeat(1_000), new Date(0)).reason!;
  expect(Buffer.byteLength(wide)).toBeLessThanOrEqual(MAX_OUTCOME_REASON_BYTES);
  expect(wide.replace('…', '')).toMatch(/^(😀)+$/u);
  expect(objectOutcome('failed', 'short', new Date(0)).reason).toBe('short');
  expect(objectOutcome('succeeded', undefined, new Date(0))).toEqual({ status: 'succeeded', at: '1970-01-01T00:00:00.000Z' });
});

test('the outcome write: one map entry, named by job id, and only while the record exists', () => {
  const update = outcomeUpdate('batches', 'b-1', 'job.with:odd#chars', objectOutcome('succeeded', undefined, new Date(0)));
  expect(update).toEqual({
    TableName: 'batches',
    Key: { execution: 'b-1' },
    UpdateExpression: 'SET outcomes.#job = :outcome',
    ConditionExpression: 'attribute_exists(execution)',
    ExpressionAttributeNames: { '#job': 'job.with:odd#chars' },
    ExpressionAttributeValues: { ':outcome': { status: 'succeeded', at: '1970-01-01T00:00:00.000Z' } },
  });
});

describe('the packed task environment', () => {
  const env = { BATCHES_TABLE_NAME: 't', BATCH: 'b-1', TASK_INDEX: '0', JOB_ID: 'lead', RESULTS_PREFIX: 'results/' };

  test('reads the task, with one deadline for the whole task', () => {
    const now = Date.parse('2026-12-08T00:00:00Z');
    const config = readPackedTaskConfig(
      { ...env, TASK_INDEX: '12', JOB_TIMEOUT_SECONDS: '900', RUN_TASK_TIMEOUT_SECONDS: '600', STATE_ENTERED_AT: '2026-12-08T00:00:00Z' },
      now,
    );
    expect(config).toEqual({
      batchesTableName: 't',
      batch: 'b-1',
      taskIndex: 12,
      leadJobId: 'lead',
      resultsPrefix: 'results/',
      deadlineMs: now + 600_000 - STATE_TIMEOUT_MARGIN_MS,
      stateEnteredAtMs: now,
    });
  });

  test.each(['', '-1', '1.5', '07', 'x'])('TASK_INDEX %j is refused', (taskIndex) => {
    expect(() => readPackedTaskConfig({ ...env, TASK_INDEX: taskIndex })).toThrow(/invalid packed task environment: TASK_INDEX/);
  });

  test('each object is checked as a single job’s KEY is, and is that object’s bad input', () => {
    const task = readPackedTaskConfig(env);
    const object = { jobId: 'j', bucket: 'in', versionId: undefined };
    expect(objectJobConfig({ ...object, key: 'a.txt' }, task)).toEqual({
      config: expect.objectContaining({ jobId: 'j', key: 'a.txt', resultKey: 'results/a.txt.json' }),
    });
    expect(objectJobConfig({ ...object, key: 'results/a.txt.json' }, task)).toEqual({ badInput: expect.stringContaining('refusing to process a result') });
    expect(objectJobConfig({ ...object, key: 'k'.repeat(1020) }, task)).toEqual({ badInput: expect.stringContaining('would exceed') });
    expect(objectJobConfig({ ...object, jobId: 'has space', key: 'a.txt' }, task)).toEqual({ badInput: expect.stringContaining('job id must be') });
  });
});

test("the finisher tells bad input by the worker's own exit code", () => {
  expect(WORKER_BAD_INPUT_EXIT_CODE).toBe(EXIT_CODES.badInput);
});
