/** What a job is, where it comes from, and the names derived from it. */
import type { CapacityClass } from './capacity-codes';
import type { Pack } from './packing';
import { createHash } from 'node:crypto';
import { z } from 'zod';

export interface Job {
  readonly jobId: string;
  readonly bucket: string;
  readonly key: string;
  /** The object version; '' when the bucket was unversioned at upload (then `sequencer` identifies it). */
  readonly versionId: string;
  readonly sequencer: string;
  /**
   * The admission this message follows (0: an upload). Informational: the ledger row counts the job's admissions and
   * failed runs, and an admission takes them from there, never from a message.
   */
  readonly round: number;
  /** Executions that ended without running the job to a result, as the message's sender counted them (informational). */
  readonly failedRuns: number;
  /** On an operator's redrive: the failure it redrives (the row's finishedAt then). Only that failure is redriven. */
  readonly redriveOf?: string;
}

/** What the state machine receives per job. */
export interface JobInput extends Job {
  readonly vcpu: number;
  /** The released counter its release adds to (functions/limiter.ts: RELEASED#<n>). */
  readonly releaseShard: string;
  /** The capacity class its task runs in (functions/placement.ts): RunTask's capacity provider, and the class its release counts in. */
  readonly capacityProvider?: CapacityClass;
  /** When the stage has routes: the job's route (its release counts there) and the route's queue (where it goes back). */
  readonly route?: string;
  readonly intakeQueueUrl?: string;
  /** When the stage has routes: the task definition its route runs (of `vcpu`: revisions are kept, so it stays runnable). */
  readonly taskDefinitionArn?: string;
  /** On a stage that packs: the job leads a task of this batch (functions/packing.ts), which runs these objects. */
  readonly pack?: Pack;
}

interface IntakeScope {
  readonly bucketName: string;
  readonly inputPrefix: string;
  readonly inputSuffix?: string;
}

type ParsedMessage = { readonly kind: 'job'; readonly job: Job } | { readonly kind: 'poison'; readonly reason: string };

/** Same object version → same id, however often the event is delivered. */
export function jobIdOf(bucket: string, key: string, versionId: string, sequencer: string): string {
  const identity = versionId ? `version:${versionId}` : `sequencer:${sequencer}`;
  return createHash('sha256').update(`${bucket}\n${key}\n${identity}`).digest('hex').slice(0, 32);
}

/**
 * An admission's execution name: its jobs and the pool's count of batches admitted before it (`batchesAdmitted`,
 * which the admission is conditioned on and raises). No two admissions share a name, so StartExecution's
 * ExecutionAlreadyExists can only mean this admission's own execution — never one a job ran in before — and a
 * retried StartExecution of the same admission is idempotent while it runs. Names stay taken for 90 days; the pool's
 * count never repeats. A single job's name starts with its id, for whoever looks for it.
 */
export function executionNameFor(jobs: readonly Pick<Job, 'jobId'>[], batchesAdmitted: number): string {
  if (jobs.length === 0) throw new Error('an execution needs at least one job');
  if (jobs.length === 1) return `job-${jobs[0].jobId}-a${batchesAdmitted}`;
  const members = jobs.map((j) => j.jobId).sort();
  return `batch${jobs.length}-${createHash('sha256').update(members.join(',')).digest('hex').slice(0, 32)}-a${batchesAdmitted}`;
}

/** An execution's ARN: the state machine's, with `:stateMachine:` turned into `:execution:`, and the name. */
export function executionArnOf(stateMachineArn: string, executionName: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${executionName}`;
}

const s3ObjectCreated = z.object({
  source: z.literal('aws.s3'),
  'detail-type': z.literal('Object Created'),
  detail: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({
      key: z.string().min(1),
      'version-id': z.string().optional(),
      sequencer: z.string().min(1),
    }),
  }),
});

/**
 * A job put back on the intake queue: by the janitor (its execution ended without a result), by the state
 * machine (no capacity: the account's vCPU or Fargate's capacity ran out), or by an operator (redrive).
 */
const requeueMessage = z.strictObject({
  sluice: z.literal('requeue'),
  jobId: z.string().regex(/^[0-9a-f]{32}$/),
  bucket: z.string().min(1),
  key: z.string().min(1),
  versionId: z.string(),
  sequencer: z.string(),
  round: z.number().int().min(1),
  failedRuns: z.number().int().min(0),
});
export type RequeueMessage = z.infer<typeof requeueMessage>;

/**
 * A requeue's message attribute: the execution whose lease on the job the message replaces (its sender releases the
 * lease after sending). Absent on uploads and on an operator's redrive.
 */
export const RETURNED_BY = 'returnedBy';

/**
 * A redrive's message attribute: the failure it redrives (the failed row's finishedAt). The admission takes a failed
 * row only for that failure: a redrive's message that outlives it (the job ran and failed again since) starts nothing.
 */
export const REDRIVE_OF = 'redriveOf';

/** How long the intake queue keeps a message (SQS's most, 14 days): a message sent longer ago than this is gone. */
export const INTAKE_RETENTION_SECONDS = 14 * 24 * 3600;

/**
 * The error of an execution that ran none of its jobs because they were admitted for another state machine than the
 * one running it: leased for another task size (a deploy changed task.cpu while a dispatcher still admitted at the
 * old size), or placed in no capacity class (a dispatcher of an earlier version, while a deploy rolls out). It fails
 * before any task runs, and the janitor re-queues its jobs without counting a failed run. The name says task size
 * because janitors already deployed know it by that name: one that met a new name would count a failed run.
 */
export const ADMITTED_FOR_ANOTHER_STATE_MACHINE = 'Sluice.AdmittedForAnotherTaskSize';

function inScope(scope: IntakeScope, bucket: string, key: string): string | undefined {
  if (bucket !== scope.bucketName) return `bucket "${bucket}" is not this pipeline's bucket "${scope.bucketName}"`;
  if (!key.startsWith(scope.inputPrefix)) return `key "${key}" is outside the input prefix "${scope.inputPrefix}"`;
  if (scope.inputSuffix && !key.endsWith(scope.inputSuffix)) return `key "${key}" does not end with "${scope.inputSuffix}"`;
  return undefined;
}

/** Turns an intake message body into a job, or says exactly why it is poison. Never throws. */
export function parseIntakeMessage(body: string | undefined, scope: IntakeScope): ParsedMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body ?? '');
  } catch {
    return { kind: 'poison', reason: 'body is not JSON' };
  }
  const requeued = requeueMessage.safeParse(parsed);
  if (requeued.success) {
    const { jobId, bucket, key, versionId, sequencer, round, failedRuns } = requeued.data;
    const outside = inScope(scope, bucket, key);
    if (outside) return { kind: 'poison', reason: outside };
    if (jobId !== jobIdOf(bucket, key, versionId, sequencer)) return { kind: 'poison', reason: 'requeued job id does not match its object' };
    return { kind: 'job', job: { jobId, bucket, key, versionId, sequencer, round, failedRuns } };
  }
  const event = s3ObjectCreated.safeParse(parsed);
  if (!event.success) {
    const first = event.error.issues[0];
    return { kind: 'poison', reason: `not an S3 Object Created event (${first.path.join('.') || 'body'}: ${first.message})` };
  }
  const { bucket, object } = event.data.detail;
  const outside = inScope(scope, bucket.name, object.key);
  if (outside) return { kind: 'poison', reason: outside };
  const versionId = object['version-id'] ?? '';
  return {
    kind: 'job',
    job: {
      jobId: jobIdOf(bucket.name, object.key, versionId, object.sequencer),
      bucket: bucket.name,
      key: object.key,
      versionId,
      sequencer: object.sequencer,
      round: 0,
      failedRuns: 0,
    },
  };
}
