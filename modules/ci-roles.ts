import { partitionOf } from './iam';
import { stackName } from './stack';

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

export function roleArn(accountId: string, region: string, roleName: string): string {
  return `arn:${partitionOf(region)}:iam::${accountId}:role/${roleName}`;
}

export function githubOidcProviderArn(accountId: string, region: string): string {
  return `arn:${partitionOf(region)}:iam::${accountId}:oidc-provider/${GITHUB_OIDC_HOST}`;
}

/** GitHub's `sub` claim for a job of a pull_request-triggered workflow (no environment). */
export function pullRequestSubject(owner: string, repository: string): string {
  return `repo:${owner}/${repository}:pull_request`;
}

/** GitHub's `sub` claim for a job without an environment, run on a branch (push, schedule, dispatch). */
export function branchSubject(owner: string, repository: string, branch: string): string {
  return `repo:${owner}/${repository}:ref:refs/heads/${branch}`;
}

/** GitHub's `sub` claim for any job that declares `environment: <name>`, whatever the event or branch. */
export function environmentSubject(owner: string, repository: string, environment: string): string {
  return `repo:${owner}/${repository}:environment:${environment}`;
}

/** With `use_lockfile = true` the S3 backend locks by writing this object next to the state. */
export function stateLockKey(stateKey: string): string {
  return `${stateKey}.tflock`;
}
