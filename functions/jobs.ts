/** What a job is, where it comes from, and the names derived from it. */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export interface Job {
  readonly jobId: string;
  readonly bucket: string;
  readonly key: string;
  /** The object version; '' when the bucket was unversioned at upload (then `sequencer` identifies it). */
  readonly versionId: string;
  readonly sequencer: string;
  /** Admissions this job had before (0 on first sight): every re-queue, for whatever reason, adds one. Names derive from it. */
  readonly round: number;
  /** Executions that ended without running the job to a result (the janitor fails the job once they reach the limit). */
  readonly failedRuns: number;
}

/** What the state machine receives per job. */
export interface JobInput extends Job {
  readonly vcpu: number;
  /** The released counter its release adds to (functions/limiter.ts: RELEASED#<n>). */
  readonly releaseShard: string;
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
 * Execution names are unique per state machine for 90 days, so the name of a batch is a digest of its
 * jobs and their round: a redelivered batch gets the same name (and StartExecution is idempotent);
 * a re-queued job (next round) gets a new one.
 */
export function executionNameFor(jobs: readonly Pick<Job, 'jobId' | 'round'>[]): string {
  if (jobs.length === 0) throw new Error('an execution needs at least one job');
  if (jobs.length === 1) return `job-${jobs[0].jobId}-r${jobs[0].round}`;
  const members = jobs.map((j) => `${j.jobId}:${j.round}`).sort();
  return `batch${jobs.length}-${createHash('sha256').update(members.join(',')).digest('hex').slice(0, 40)}`;
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
