import { parseArgs } from 'node:util';
import { loadBootstrap } from '../environments/bootstrap';
import { loadEnvironments } from '../environments';
import type { BootstrapConfig } from '../environments/bootstrap-schema';
import { OIDC_SUBJECT_CLAIM_KEYS } from '../environments/ci-roles';

/**
 * What the roles' trust rests on in GitHub, where no Terraform of this project reaches: checked with the GitHub API,
 *   GH_TOKEN=<token that may read the repository's administration> npm run check:github [-- --json]
 * - the repository's OIDC subject template is repo, context, job_workflow_ref (in that order: the roles trust subjects
 *   built that way; with GitHub's default template no role can be assumed, so a wrong template fails closed);
 * - every stage has its environment, deployable from the main branch only;
 * - the stages in github.approvals need a reviewer, who may not approve their own run, and admins cannot skip them.
 * Exit 0 when every check passes, 1 when one fails, 2 when it cannot ask (no token, no access).
 */

export interface Finding {
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly fix?: string;
}

/** A GET on the GitHub REST API: the parsed body, or undefined for 404. */
export type GithubGet = (path: string) => Promise<unknown>;

interface SubjectTemplate {
  readonly use_default?: boolean;
  readonly include_claim_keys?: readonly string[];
}

interface Environment {
  readonly protection_rules?: ReadonlyArray<{ readonly type: string; readonly prevent_self_review?: boolean; readonly reviewers?: readonly unknown[] }>;
  readonly deployment_branch_policy?: { readonly protected_branches: boolean; readonly custom_branch_policies: boolean } | null;
  readonly can_admins_bypass?: boolean;
}

interface BranchPolicies {
  readonly branch_policies?: ReadonlyArray<{ readonly name: string; readonly type?: string }>;
}

export function assessSubjectTemplate(repo: string, template: SubjectTemplate | undefined): Finding {
  const wanted = [...OIDC_SUBJECT_CLAIM_KEYS];
  const keys = template?.include_claim_keys ?? [];
  const ok = template !== undefined && template.use_default === false && JSON.stringify(keys) === JSON.stringify(wanted);
  return {
    check: 'OIDC subject template',
    ok,
    detail: template
      ? `use_default ${String(template.use_default)}, include_claim_keys ${JSON.stringify(keys)}; the roles trust subjects of ${JSON.stringify(wanted)}`
      : 'not readable',
    ...(ok
      ? {}
      : {
          fix:
            `gh api -X PUT repos/${repo}/actions/oidc/customization/sub -F use_default=false ` + wanted.map((k) => `-f 'include_claim_keys[]=${k}'`).join(' '),
        }),
  };
}

export function assessEnvironment(
  stage: string,
  mainBranch: string,
  needsApproval: boolean,
  environment: Environment | undefined,
  branchPolicies: BranchPolicies | undefined,
  repo: string,
): Finding[] {
  const settings = `https://github.com/${repo}/settings/environments`;
  if (environment === undefined) {
    return [{ check: `environment ${stage}`, ok: false, detail: 'does not exist', fix: `create it (${settings}), deployable from ${mainBranch} only` }];
  }
  const findings: Finding[] = [];
  const policy = environment.deployment_branch_policy;
  const branches = (branchPolicies?.branch_policies ?? []).map((p) => `${p.type ?? 'branch'}:${p.name}`);
  const mainOnly = policy?.custom_branch_policies === true && JSON.stringify(branches) === JSON.stringify([`branch:${mainBranch}`]);
  findings.push({
    check: `environment ${stage}: deployment branches`,
    ok: mainOnly,
    detail: policy
      ? `custom ${String(policy.custom_branch_policies)}, protected ${String(policy.protected_branches)}, rules ${JSON.stringify(branches)}`
      : 'any branch',
    ...(mainOnly ? {} : { fix: `${settings} → ${stage} → Deployment branches and tags: Selected branches and tags, exactly "${mainBranch}"` }),
  });
  if (!needsApproval) return findings;
  const reviewers = (environment.protection_rules ?? []).find((r) => r.type === 'required_reviewers');
  const reviewed = reviewers !== undefined && (reviewers.reviewers?.length ?? 0) > 0;
  findings.push({
    check: `environment ${stage}: reviewers`,
    ok: reviewed && reviewers.prevent_self_review === true && environment.can_admins_bypass !== true,
    detail: reviewed
      ? `${reviewers.reviewers!.length} reviewer(s), prevent self-review ${String(reviewers.prevent_self_review)}, admins may bypass ${String(environment.can_admins_bypass ?? 'unknown')}`
      : 'no required reviewers',
    fix: `${settings} → ${stage}: Required reviewers (at least one), Prevent self-review on, Allow administrators to bypass off`,
  });
  return findings;
}

export async function checkGithub(config: BootstrapConfig, stages: readonly string[], get: GithubGet): Promise<Finding[]> {
  const { owner, repository, mainBranch, approvals } = config.github;
  const repo = `${owner}/${repository}`;
  const findings = [assessSubjectTemplate(repo, (await get(`/repos/${repo}/actions/oidc/customization/sub`)) as SubjectTemplate | undefined)];
  const ids = (await get(`/repos/${repo}`)) as { id?: number; owner?: { id?: number } } | undefined;
  if (ids?.id !== undefined && ids.owner?.id !== undefined) {
    const configured = config.github.subjectIds;
    const matches = configured === undefined || (configured.owner === ids.owner.id && configured.repository === ids.id);
    findings.push({
      check: 'repository ids',
      ok: matches,
      detail:
        `owner ${ids.owner.id}, repository ${ids.id}` +
        (configured
          ? `; github.subjectIds is ${JSON.stringify(configured)}`
          : '; github.subjectIds unset (set it if this repository uses immutable OIDC subjects)'),
      ...(matches
        ? {}
        : { fix: `set github.subjectIds to { owner: ${ids.owner.id}, repository: ${ids.id} } in environments/bootstrap.ts and apply the bootstrap` }),
    });
  }
  for (const stage of stages) {
    const environment = (await get(`/repos/${repo}/environments/${encodeURIComponent(stage)}`)) as Environment | undefined;
    const branchPolicies = environment
      ? ((await get(`/repos/${repo}/environments/${encodeURIComponent(stage)}/deployment-branch-policies`)) as BranchPolicies | undefined)
      : undefined;
    findings.push(...assessEnvironment(stage, mainBranch, approvals.includes(stage), environment, branchPolicies, repo));
  }
  return findings;
}

function githubGet(token: string): GithubGet {
  return async (path) => {
    const response = await fetch(`https://api.github.com${path}`, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/vnd.github+json', 'X-GitHub-Api-Version': '2022-11-28' },
    });
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
  const token = process.env.GH_TOKEN ?? process.env.GITHUB_TOKEN;
  if (!token) {
    console.error('usage: GH_TOKEN=<token> npm run check:github [-- --json]   (a token that may read the repository’s environments and settings)');
    return 2;
  }
  const findings = await checkGithub(
    loadBootstrap(),
    loadEnvironments().map((c) => c.stage),
    githubGet(token),
  );
  if (values.json) console.log(JSON.stringify(findings, null, 2));
  else
    for (const f of findings) {
      console.log(`${f.ok ? 'ok  ' : 'FAIL'} ${f.check}: ${f.detail}`);
      if (!f.ok && f.fix) console.log(`     fix: ${f.fix}`);
    }
  return findings.every((f) => f.ok) ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`check:github could not ask GitHub: ${error.message}`);
      process.exit(2);
    },
  );
}
