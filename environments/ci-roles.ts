import { partitionOf } from './partition';
import { stackName } from './names';

/**
 * Names shared by the bootstrap stack (which creates the roles) and the workflows (which assume them):
 * one convention, here. The workflows get the ARNs from `npm run stages -- --json`.
 */

/** GitHub Actions' OIDC issuer host; IAM condition keys are prefixed with it. An account has one provider per URL. */
export const GITHUB_OIDC_HOST = 'token.actions.githubusercontent.com';
/** The audience aws-actions/configure-aws-credentials requests. */
export const GITHUB_OIDC_AUDIENCE = 'sts.amazonaws.com';

export function planRoleName(stage: string): string {
  return `${stackName(stage)}-plan`;
}

export function deployRoleName(stage: string): string {
  return `${stackName(stage)}-deploy`;
}

/** The rollout's smoke test after an apply (`sluice smoke`): a canary in, its job's record and result out. */
export function smokeRoleName(stage: string): string {
  return `${stackName(stage)}-smoke`;
}

export function roleArn(accountId: string, region: string, roleName: string): string {
  return `arn:${partitionOf(region)}:iam::${accountId}:role/${roleName}`;
}

export function githubOidcProviderArn(accountId: string, region: string): string {
  return `arn:${partitionOf(region)}:iam::${accountId}:oidc-provider/${GITHUB_OIDC_HOST}`;
}

/**
 * The claims the repository's OIDC subject is made of. GitHub's default `sub` (`repo:<o>/<r>:environment:prod`)
 * is the same for any job that names the environment, from any branch or workflow file; AWS evaluates no other
 * GitHub claim. With the repository's subject template set to these keys (REST
 * `PUT /repos/{owner}/{repo}/actions/oidc/customization/sub`, checked by `npm run check:github`), the `sub` also
 * names the workflow file and the ref it ran from, so a role can trust exactly main's `apply-stage.yml`. Until the
 * template is set, no role here can be assumed: the trust fails closed.
 */
export const OIDC_SUBJECT_CLAIM_KEYS = ['repo', 'context', 'job_workflow_ref'] as const;

/** The workflows that assume the roles, by file name under `.github/workflows/`. */
export const WORKFLOW_FILES = { pullRequest: 'pull-request.yml', applyStage: 'apply-stage.yml', drift: 'drift.yml' } as const;

/** The repository whose workflows assume the roles. */
export interface GithubRepository {
  readonly owner: string;
  readonly repository: string;
  readonly mainBranch: string;
  /**
   * Set for repositories whose OIDC subjects carry immutable ids (`repo:<owner>@<id>/<repo>@<id>`: repositories
   * created since GitHub's change of July 2026, or opted in); `npm run check:github` prints them.
   */
  readonly subjectIds?: { readonly owner: number; readonly repository: number };
}

/** The `sub` of a job in `workflow` (the reusable workflow's own file, if called), with GitHub's `context` part. */
function subject(github: GithubRepository, context: string, workflow: string, ref: string): string {
  const { owner, repository, subjectIds } = github;
  const repo = subjectIds ? `${owner}@${subjectIds.owner}/${repository}@${subjectIds.repository}` : `${owner}/${repository}`;
  return `repo:${repo}:${context}:job_workflow_ref:${owner}/${repository}/.github/workflows/${workflow}@${ref}`;
}

/** A plan job of a pull request (any pull request: `*` stands for its number; StringLike). */
export function pullRequestPlanSubject(github: GithubRepository): string {
  return subject(github, 'pull_request', WORKFLOW_FILES.pullRequest, 'refs/pull/*/merge');
}

/** A job without an environment in `workflow`, run from the main branch (the rollout's plan, the drift check). */
export function mainBranchSubject(github: GithubRepository, workflow: string): string {
  return subject(github, `ref:refs/heads/${github.mainBranch}`, workflow, `refs/heads/${github.mainBranch}`);
}

/** The rollout's apply job: the stage's environment, in main's `apply-stage.yml`, and nothing else. */
export function applySubject(github: GithubRepository, stage: string): string {
  return subject(github, `environment:${stage}`, WORKFLOW_FILES.applyStage, `refs/heads/${github.mainBranch}`);
}

/**
 * The permissions boundary every role a stage creates must carry (the bootstrap creates it; the deploy role may
 * create roles only with it): what the stage's functions, state machine and tasks can ever be given.
 */
export function workloadBoundaryName(stage: string): string {
  return `${stackName(stage)}-workload-boundary`;
}

export function policyArn(accountId: string, region: string, policyName: string): string {
  return `arn:${partitionOf(region)}:iam::${accountId}:policy/${policyName}`;
}

/** With `use_lockfile = true` the S3 backend locks by writing this object next to the state. */
export function stateLockKey(stateKey: string): string {
  return `${stateKey}.tflock`;
}
