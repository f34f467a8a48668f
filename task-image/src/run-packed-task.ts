import type { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isOutcomeRefused, objectOutcome, readTaskList, recordOutcome, type ObjectOutcome, type TaskList, type TaskObject } from './batch-record';
import { classifyFailure } from './errors';
import { objectJobConfig, type PackedTaskConfig } from './job-config';
import type { Logger } from './log';
import type { Processor } from './processor';
import { runJob } from './run-job';

/**
 * How a packed task ends: every object of its list ended (each outcome recorded), or the task stops at once, for a
 * retry of the whole task to pick up where it left off (objects with an outcome are skipped).
 */
export type PackedTaskOutcome =
  { status: 'ended'; objects: number; ran: number } | { status: 'transient'; reason: string } | { status: 'stopped'; reason: string };

export interface PackedTaskDependencies {
  s3: S3Client;
  ddb: DynamoDBDocumentClient;
  processor: Processor;
  /** The task's own lines (the lead's job id). */
  log: Logger;
  /** Each object's lines carry its own job id. */
  logFor(jobId: string): Logger;
  /** Aborted on SIGTERM and at the task's deadline. */
  signal: AbortSignal;
}

type TaskStop = Extract<PackedTaskOutcome, { status: 'transient' | 'stopped' }>;

const isTaskStop = (outcome: ObjectOutcome | TaskStop): outcome is TaskStop => outcome.status === 'transient' || outcome.status === 'stopped';

/** Runs the task's objects in order, each as a single-object task would, recording each one's end on the batch record. */
export async function runPackedTask(task: PackedTaskConfig, deps: PackedTaskDependencies): Promise<PackedTaskOutcome> {
  const { log } = deps;
  const list = await loadTaskList(task, deps);
  if ('status' in list) return list;
  const alreadyEnded = list.objects.filter((object) => list.outcomes[object.jobId]).length;
  log.info('task-started', { objects: list.objects.length, alreadyEnded, processor: deps.processor.name });
  let ran = 0;
  for (const object of list.objects) {
    if (list.outcomes[object.jobId]) {
      deps.logFor(object.jobId).info('object-already-ended', { outcome: list.outcomes[object.jobId].status });
      continue;
    }
    // A stop between objects: the next one is not started.
    if (deps.signal.aborted) return stopped(deps);
    const outcome = await runObject(object, task, deps);
    if (isTaskStop(outcome)) return outcome;
    const recorded = await recordObjectEnd(object, outcome, task, deps);
    if (recorded) return recorded;
    ran++;
  }
  return { status: 'ended', objects: list.objects.length, ran };
}

/** The task's list, or the task's end when the record cannot give one: never the objects' fault, so transient. */
async function loadTaskList(task: PackedTaskConfig, deps: PackedTaskDependencies): Promise<TaskList | TaskStop> {
  let list;
  try {
    list = await readTaskList(deps.ddb, { tableName: task.batchesTableName, batch: task.batch, taskIndex: task.taskIndex }, deps.signal);
  } catch (error) {
    const failure = classifyFailure(deps.signal.aborted ? deps.signal.reason : error, deps.signal.aborted);
    if (failure.kind === 'stopped') return stopped(deps);
    deps.log.error('batch-record-unreadable', { reason: failure.reason });
    return { status: 'transient', reason: failure.reason };
  }
  if ('unusable' in list) {
    deps.log.error('batch-record-unusable', { reason: list.unusable });
    return { status: 'transient', reason: list.unusable };
  }
  return list;
}

/** One object, exactly as a single-object task runs it: its end to record, or the task's end (transient, stopped). */
async function runObject(object: TaskObject, task: PackedTaskConfig, deps: PackedTaskDependencies): Promise<ObjectOutcome | TaskStop> {
  const log = deps.logFor(object.jobId);
  const job = objectJobConfig(object, task);
  if ('badInput' in job) {
    log.error('job-bad-input', { reason: job.badInput });
    return objectOutcome('failed', job.badInput);
  }
  log.info('job-started', { bucket: object.bucket, key: object.key, versionId: object.versionId ?? null, resultKey: job.config.resultKey });
  const outcome = await runJob(job.config, { s3: deps.s3, processor: deps.processor, log, signal: deps.signal });
  log.info('job-finished', { outcome: outcome.status });
  switch (outcome.status) {
    case 'succeeded':
    case 'skipped':
    case 'superseded':
      return objectOutcome('succeeded');
    case 'bad-input':
      return objectOutcome('failed', outcome.reason);
    default:
      return { status: outcome.status, reason: outcome.reason };
  }
}

/** Records an object's end; a refused or failed write ends the task (transient). */
async function recordObjectEnd(
  object: TaskObject,
  outcome: ObjectOutcome,
  task: PackedTaskConfig,
  deps: PackedTaskDependencies,
): Promise<TaskStop | undefined> {
  const log = deps.logFor(object.jobId);
  try {
    await recordOutcome(deps.ddb, { tableName: task.batchesTableName, batch: task.batch }, object.jobId, outcome);
    log.info('outcome-recorded', { outcome: outcome.status });
    return undefined;
  } catch (error) {
    if (isOutcomeRefused(error)) {
      const reason = `the batch record of ${task.batch} is gone (the batch was settled): outcome of ${object.jobId} refused`;
      log.error('outcome-refused', { reason });
      return { status: 'transient', reason };
    }
    const { reason } = classifyFailure(error, false);
    log.error('outcome-not-recorded', { reason });
    return { status: 'transient', reason };
  }
}

function stopped({ signal, log }: PackedTaskDependencies): TaskStop {
  const { reason } = classifyFailure(signal.reason, true);
  log.warn('task-stopped', { reason });
  return { status: 'stopped', reason };
}
