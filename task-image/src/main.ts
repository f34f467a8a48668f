import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { readFileSync } from 'node:fs';
import { activeProcessor } from './active-processor';
import { createDynamoDbClient } from './dynamodb-client';
import { classifyFailure, StopRequestedError } from './errors';
import { EXIT_CODES, type ExitCode } from './exit-codes';
import { isPackedEnvironment, readJobConfig, readPackedTaskConfig } from './job-config';
import { createJsonLogger, type Logger } from './log';
import { runJob, type JobOutcome } from './run-job';
import { runPackedTask } from './run-packed-task';
import { createS3Client } from './s3-client';
import { startupMetricLine } from './startup-metric';

// After SIGTERM, streams are destroyed at once; this caps a processor that ignores the signal,
// well inside ECS's stop timeout (2-120 s) before SIGKILL.
const FORCED_EXIT_AFTER_STOP_MS = 1_000;

const EXIT_CODE_BY_OUTCOME: Record<JobOutcome['status'], ExitCode> = {
  succeeded: EXIT_CODES.ok,
  skipped: EXIT_CODES.ok,
  superseded: EXIT_CODES.ok,
  'bad-input': EXIT_CODES.badInput,
  transient: EXIT_CODES.transient,
  stopped: EXIT_CODES.transient,
};

/**
 * This process's peak resident set, to size the task's memory from real runs. VmHWM (Linux) counts
 * this program only; getrusage's maxRSS can carry the parent's peak across fork and exec.
 */
function peakRssMiB(): number {
  let kib = process.resourceUsage().maxRSS;
  try {
    kib = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? kib);
  } catch {
    // Not Linux: keep maxRSS.
  }
  return Math.round(kib / 102.4) / 10;
}

async function main(): Promise<ExitCode> {
  const log = createJsonLogger(process.env.JOB_ID || undefined);
  const stop = new AbortController();
  const onStopSignal = (signal: NodeJS.Signals) => {
    log.warn('stop-requested', { signal });
    stop.abort(new StopRequestedError());
    setTimeout(() => {
      log.error('forced-exit', { reason: `work did not stop within ${FORCED_EXIT_AFTER_STOP_MS} ms` });
      process.exit(EXIT_CODES.transient);
    }, FORCED_EXIT_AFTER_STOP_MS).unref();
  };
  process.once('SIGTERM', onStopSignal);
  process.once('SIGINT', onStopSignal);
  return isPackedEnvironment(process.env) ? runPackedMode(log, stop) : runSingleMode(log, stop);
}

/** One object, named by BUCKET, KEY and VERSION_ID. */
async function runSingleMode(log: Logger, stop: AbortController): Promise<ExitCode> {
  let config;
  try {
    config = readJobConfig(process.env);
  } catch (error) {
    log.error('job-bad-input', { reason: classifyFailure(error, false).reason });
    return EXIT_CODES.badInput;
  }
  writeStartupMetric(config.jobId, config.stateEnteredAtMs);
  log.info('job-started', {
    bucket: config.bucket,
    key: config.key,
    versionId: config.versionId ?? null,
    resultKey: config.resultKey,
    processor: activeProcessor.name,
    deadline: config.deadlineMs === undefined ? null : new Date(config.deadlineMs).toISOString(),
  });
  armDeadline(config.deadlineMs, log, stop);
  const s3 = createS3Client(process.env);
  try {
    const outcome = await runJob(config, { s3, processor: activeProcessor, log, signal: stop.signal });
    const exitCode = EXIT_CODE_BY_OUTCOME[outcome.status];
    log.info('job-finished', { outcome: outcome.status, exitCode, peakRssMiB: peakRssMiB() });
    return exitCode;
  } finally {
    s3.destroy();
  }
}

/** A packed task: the objects of its task index on its batch's record (BATCH, TASK_INDEX), one after another. */
async function runPackedMode(startLog: Logger, stop: AbortController): Promise<ExitCode> {
  let task;
  try {
    task = readPackedTaskConfig(process.env);
  } catch (error) {
    startLog.error('task-bad-input', { reason: classifyFailure(error, false).reason });
    return EXIT_CODES.badInput;
  }
  const context = { batch: task.batch, task: task.taskIndex };
  const log = createJsonLogger(task.leadJobId, undefined, context);
  writeStartupMetric(task.leadJobId, task.stateEnteredAtMs);
  armDeadline(task.deadlineMs, log, stop);
  const s3 = createS3Client(process.env);
  const dynamo = createDynamoDbClient(process.env);
  try {
    const outcome = await runPackedTask(task, {
      s3,
      ddb: DynamoDBDocumentClient.from(dynamo),
      processor: activeProcessor,
      log,
      logFor: (jobId) => createJsonLogger(jobId, undefined, context),
      signal: stop.signal,
    });
    const exitCode = outcome.status === 'ended' ? EXIT_CODES.ok : EXIT_CODES.transient;
    const { status, ...details } = outcome;
    log.info('task-finished', { outcome: status, ...details, exitCode, peakRssMiB: peakRssMiB() });
    return exitCode;
  } finally {
    s3.destroy();
    dynamo.destroy();
  }
}

/** Once per task, with its (lead) job id and its route. */
function writeStartupMetric(jobId: string, stateEnteredAtMs: number | undefined): void {
  const line = startupMetricLine({
    namespace: process.env.METRICS_NAMESPACE,
    stateEnteredAtMs,
    now: Date.now(),
    jobId,
    route: process.env.ROUTE || undefined,
  });
  if (line) process.stdout.write(`${line}\n`);
}

/**
 * The task's timeout, enforced here: past it the RunTask state may time out and release the lease while this task
 * still holds the vCPU. Exit 75 (retryable), as for a stop.
 */
function armDeadline(deadlineMs: number | undefined, log: Logger, stop: AbortController): void {
  if (deadlineMs === undefined) return;
  const deadline = new Date(deadlineMs).toISOString();
  setTimeout(
    () => {
      log.warn('job-timed-out', { deadline });
      stop.abort(new StopRequestedError(`task timeout reached at ${deadline}`));
      setTimeout(() => process.exit(EXIT_CODES.transient), FORCED_EXIT_AFTER_STOP_MS).unref();
    },
    Math.max(0, deadlineMs - Date.now()),
  ).unref();
}

main().then(
  (exitCode) => {
    process.exitCode = exitCode;
  },
  (error: unknown) => {
    // Only a bug in the worker itself gets here: retrying may hit a healthier host.
    process.stdout.write(
      `${JSON.stringify({ time: new Date().toISOString(), level: 'error', event: 'worker-crashed', jobId: process.env.JOB_ID ?? null, error: String(error) })}\n`,
    );
    process.exitCode = EXIT_CODES.transient;
  },
);
