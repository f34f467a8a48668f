/**
 * npm run check:github against answers shaped as GitHub's REST reference documents them (github/docs
 * src/rest/data/fpt-2022-11-28: "Get the customization template for an OIDC subject claim for a repository", "Get an
 * environment", "List deployment branch policies"); no GitHub is reachable from here.
 */
import { loadBootstrap } from '../../environments/bootstrap';
import { checkGithub, type GithubGet } from '../../scripts/check-github';

const config = loadBootstrap();
const repo = 'example-org/sluice';

/** A repository set up as docs/rolling-out.md asks. */
function configured(): Record<string, unknown> {
  const environment = (reviewed: boolean) => ({
    id: 1,
    name: 'x',
    protection_rules: [
      ...(reviewed
        ? [{ id: 3, type: 'required_reviewers', prevent_self_review: true, reviewers: [{ type: 'Team', reviewer: { id: 9, slug: 'platform' } }] }]
        : []),
      { id: 4, type: 'branch_policy' },
    ],
    deployment_branch_policy: { protected_branches: false, custom_branch_policies: true },
    can_admins_bypass: false,
  });
  const mainOnly = () => ({ total_count: 1, branch_policies: [{ id: 361471, node_id: 'x', name: 'main', type: 'branch' }] });
  return {
    [`/repos/${repo}/actions/oidc/customization/sub`]: { use_default: false, include_claim_keys: ['repo', 'context', 'job_workflow_ref'] },
    [`/repos/${repo}`]: { id: 5678, owner: { id: 1234 } },
    [`/repos/${repo}/environments/dev`]: environment(false),
    [`/repos/${repo}/environments/dev/deployment-branch-policies`]: mainOnly(),
    [`/repos/${repo}/environments/stg`]: environment(false),
    [`/repos/${repo}/environments/stg/deployment-branch-policies`]: mainOnly(),
    [`/repos/${repo}/environments/prod`]: environment(true),
    [`/repos/${repo}/environments/prod/deployment-branch-policies`]: mainOnly(),
  };
}

const getFrom =
  (answers: Record<string, unknown>): GithubGet =>
  async (path) =>
    structuredClone(answers[path]);
const failing = async (answers: Record<string, unknown>) =>
  (await checkGithub(config, ['dev', 'stg', 'prod'], getFrom(answers))).filter((f) => !f.ok).map((f) => `${f.check}: ${f.detail}`);

test('a repository set up as documented passes every check', async () => {
  expect(await failing(configured())).toEqual([]);
});

test("GitHub's default subject template fails, with the command that sets the one the roles trust", async () => {
  const answers = configured();
  answers[`/repos/${repo}/actions/oidc/customization/sub`] = { use_default: true };
  const [finding] = (await checkGithub(config, [], getFrom(answers))).filter((f) => !f.ok);
  expect(finding.check).toBe('OIDC subject template');
  expect(finding.fix).toBe(
    `gh api -X PUT repos/${repo}/actions/oidc/customization/sub -F use_default=false -f 'include_claim_keys[]=repo' -f 'include_claim_keys[]=context' -f 'include_claim_keys[]=job_workflow_ref'`,
  );
});

test('the right keys in another order fail too: the subject is built in the listed order', async () => {
  const answers = configured();
  answers[`/repos/${repo}/actions/oidc/customization/sub`] = { use_default: false, include_claim_keys: ['repo', 'job_workflow_ref', 'context'] };
  expect(await failing(answers)).toEqual([expect.stringMatching(/^OIDC subject template:/)]);
});

test.each([
  ['a missing environment', (a: Record<string, any>) => delete a[`/repos/${repo}/environments/stg`], /^environment stg: does not exist/],
  [
    'an environment any branch may deploy from',
    (a: Record<string, any>) => (a[`/repos/${repo}/environments/prod`].deployment_branch_policy = null),
    /^environment prod: deployment branches: any branch/,
  ],
  [
    'protected branches instead of main',
    (a: Record<string, any>) => (a[`/repos/${repo}/environments/dev`].deployment_branch_policy = { protected_branches: true, custom_branch_policies: false }),
    /^environment dev: deployment branches: custom false/,
  ],
  [
    'a second branch rule',
    (a: Record<string, any>) => a[`/repos/${repo}/environments/prod/deployment-branch-policies`].branch_policies.push({ name: 'release/*', type: 'branch' }),
    /^environment prod: deployment branches: .*branch:release\/\*/,
  ],
  [
    'prod without reviewers',
    (a: Record<string, any>) => (a[`/repos/${repo}/environments/prod`].protection_rules = [{ id: 4, type: 'branch_policy' }]),
    /^environment prod: reviewers: no required reviewers/,
  ],
  [
    'prod whose reviewers may approve their own run',
    (a: Record<string, any>) => (a[`/repos/${repo}/environments/prod`].protection_rules[0].prevent_self_review = false),
    /^environment prod: reviewers: .*prevent self-review false/,
  ],
  [
    'prod that admins may skip',
    (a: Record<string, any>) => (a[`/repos/${repo}/environments/prod`].can_admins_bypass = true),
    /^environment prod: reviewers: .*admins may bypass true/,
  ],
])('%s fails', async (_what, change, message) => {
  const answers = configured() as Record<string, any>;
  change(answers);
  expect(await failing(answers)).toEqual([expect.stringMatching(message)]);
});

test('subject ids configured for another repository fail; unset, they are reported for the user to set', async () => {
  const wrong = { ...config, github: { ...config.github, subjectIds: { owner: 1, repository: 2 } } };
  const findings = await checkGithub(wrong, [], getFrom(configured()));
  expect(findings.find((f) => f.check === 'repository ids')).toMatchObject({ ok: false, fix: expect.stringContaining('{ owner: 1234, repository: 5678 }') });
  const unset = await checkGithub(config, [], getFrom(configured()));
  expect(unset.find((f) => f.check === 'repository ids')).toMatchObject({ ok: true, detail: expect.stringContaining('owner 1234, repository 5678') });
});
