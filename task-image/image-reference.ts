/**
 * What the ECS task definition needs from the task image, dependency-free so the compute module
 * can import it at synth time: the container name, the environment it sets, and the image URI
 * built from a stage's `image` config.
 */

export const WORKER_CONTAINER_NAME = 'worker';

/** Set once in the task definition's container environment. */
export const WORKER_STATIC_ENV = ['RESULTS_PREFIX'] as const;

/** Passed per job as container overrides (VERSION_ID may be empty: read the current version). */
export const WORKER_JOB_ENV = ['BUCKET', 'KEY', 'VERSION_ID', 'JOB_ID'] as const;

export interface WorkerImageConfig {
  /** `<account>.dkr.ecr.<region>.amazonaws.com/<name>` */
  repository: string;
  /** `sha256:<64 hex>`: the exact image; preferred. */
  digest?: string;
  /** A tag, when no digest is pinned (a tag can be moved; a digest cannot). */
  tag?: string;
}

const ECR_REPOSITORY = /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\/[a-z0-9]+(?:[._/-][a-z0-9]+)*$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * The image URI for the task definition: `<repository>@<digest>` when a digest is pinned,
 * otherwise `<repository>:<tag>`. `where` names the config in errors (e.g. "environments/dev.ts").
 */
export function workerImageUri(image: WorkerImageConfig, where: string): string {
  const problems: string[] = [];
  if (!ECR_REPOSITORY.test(image.repository)) {
    problems.push(`image.repository "${image.repository}" must be <12-digit account>.dkr.ecr.<region>.amazonaws.com/<name>`);
  }
  if (image.digest !== undefined && !DIGEST.test(image.digest)) {
    problems.push(`image.digest "${image.digest}" must be sha256:<64 lowercase hex>`);
  }
  if (image.tag !== undefined && !TAG.test(image.tag)) {
    problems.push(`image.tag "${image.tag}" is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})`);
  }
  if (image.digest === undefined && image.tag === undefined) {
    problems.push('image needs a digest (preferred) or a tag');
  }
  if (problems.length > 0) throw new Error(`${where}: ${problems.join('; ')}`);
  return image.digest !== undefined ? `${image.repository}@${image.digest}` : `${image.repository}:${image.tag}`;
}
