import { z } from 'zod';
import { githubOidcProviderArn, type GithubRepository } from './ci-roles';
import { stageBucketName } from './names';
import { partitionOf } from './partition';
import type { EnvironmentConfig } from './schema';
import { describeIssue } from './validate';

/**
 * What the bootstrap needs beyond the stage configs. Which stages live in which account, the state bucket
 * and its Region are NOT repeated here: they come from each stage's `account.id` and `backend`, and are
 * checked to agree (one state bucket per account).
 */

const oidcProvider = z.discriminatedUnion(
  'kind',
  [
    /** The bootstrap creates the account's GitHub OIDC provider. */
    z.strictObject({ kind: z.literal('create') }),
    /** The account already has one (IAM allows one provider per URL): use it. */
    z.strictObject({
      kind: z.literal('existing'),
      arn: z
        .string()
        .regex(
          /^arn:aws(-cn|-us-gov)?:iam::\d{12}:oidc-provider\/token\.actions\.githubusercontent\.com$/,
          'must be the ARN of the GitHub OIDC provider, arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com',
        ),
    }),
  ],
  "kind must be 'create' or 'existing'",
);

const bootstrapSchema = z.strictObject({
  github: z.strictObject({
    /** The user or organization that owns the repository. */
    owner: z
      .string()
      .regex(/^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/, 'must be a GitHub user or organization name (1–39 letters, digits, single dashes)'),
    repository: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'must be a GitHub repository name (1–100 letters, digits, . _ -)'),
    /** The branch rollouts are applied from (the deploy roles trust its environments, the workflow runs only on it). */
    mainBranch: z
      .string()
      .regex(/^[A-Za-z0-9._/-]{1,100}$/, 'must be a branch name')
      .default('main'),
    /**
     * The stages pull requests may plan, with the PR's own code holding their plan role. The others (prod) are
     * planned from the main branch only, by the rollout, before their reviewers approve the apply.
     */
    pullRequestPlans: z.array(z.string()),
    /** The stages whose apply waits for reviewers (`npm run check:github` checks their environments require some). */
    approvals: z.array(z.string()),
    /** For repositories whose OIDC subjects carry immutable ids (see environments/ci-roles.ts); `npm run check:github` prints them. */
    subjectIds: z.strictObject({ owner: z.number().int().positive(), repository: z.number().int().positive() }).optional(),
  }),
  /** Every account a stage deploys to, keyed by account id. */
  accounts: z.record(z.string(), z.strictObject({ oidcProvider })).superRefine((record, ctx) => {
    for (const key of Object.keys(record)) {
      if (!/^\d{12}$/.test(key)) ctx.addIssue({ code: 'custom', path: [key], message: `keys must be 12-digit AWS account ids (got ${JSON.stringify(key)})` });
    }
  }),
  state: z.strictObject({
    /** Days an overwritten state version is kept before it expires (the newest few are always kept). */
    noncurrentVersionRetentionDays: z
      .number()
      .int('must be a whole number from 1 to 3650')
      .min(1, 'must be a whole number from 1 to 3650')
      .max(3650, 'must be a whole number from 1 to 3650'),
    /** Overwritten versions kept regardless of age. */
    noncurrentVersionsKept: z
      .number()
      .int('must be a whole number from 1 to 100')
      .min(1, 'must be a whole number from 1 to 100')
      .max(100, 'must be a whole number from 1 to 100'),
  }),
});

export type BootstrapInput = z.input<typeof bootstrapSchema>;
/** One account's entry, as the schema gives it once parsed. */
type ParsedAccount = z.infer<typeof bootstrapSchema>['accounts'][string];

interface BootstrapStage {
  readonly stage: string;
  /** The stage's own Region (its resources), not necessarily the state bucket's. */
  readonly region: string;
  readonly stateKey: string;
  /** What the stage's resource names start with (its roles are `<namePrefix>-…`). */
  readonly namePrefix: string;
  /** The stage's worker image repository (its name need not start with the prefix). */
  readonly imageRepository: string;
  /** What `sluice smoke` touches in the stage: its bucket and prefixes (the canary's folder is `SMOKE_FOLDER`). */
  readonly smoke: { readonly bucket: string; readonly inputPrefix: string; readonly resultsPrefix: string };
  /** Whether pull requests may plan it (github.pullRequestPlans). */
  readonly pullRequestPlans: boolean;
}

/** One account's bootstrap: its state bucket, its OIDC provider, and a plan and a deploy role per stage in it. */
export interface BootstrapAccount {
  readonly accountId: string;
  readonly partition: string;
  /** The state bucket's Region (every stage's backend.region in this account), where the bootstrap is applied. */
  readonly region: string;
  readonly stateBucket: string;
  readonly oidcProvider: { readonly kind: 'create' } | { readonly kind: 'existing'; readonly arn: string };
  readonly stages: readonly BootstrapStage[];
}

export interface BootstrapConfig {
  readonly github: GithubRepository & { readonly pullRequestPlans: readonly string[]; readonly approvals: readonly string[] };
  readonly state: { readonly noncurrentVersionRetentionDays: number; readonly noncurrentVersionsKept: number };
  readonly accounts: readonly BootstrapAccount[];
}

class BootstrapConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid bootstrap configuration (environments/bootstrap.ts):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'BootstrapConfigError';
  }
}

/** What is wrong with one account's stages together: one state bucket, prefixes apart, the OIDC provider in the account. */
function accountProblems(id: string, account: ParsedAccount, inAccount: readonly EnvironmentConfig[]): string[] {
  const problems: string[] = [];
  const [first] = inAccount;
  for (const other of inAccount.slice(1)) {
    for (const field of ['bucket', 'region'] as const) {
      if (other.backend[field] !== first.backend[field]) {
        problems.push(
          `environments/${other.stage}.ts backend.${field}: must equal environments/${first.stage}.ts backend.${field} ` +
            `(${JSON.stringify(first.backend[field])}): account ${id} has one state bucket (got ${JSON.stringify(other.backend[field])})`,
        );
      }
    }
  }
  // A stage's deploy role may edit only roles named with its prefix: no other stage's names may start with it.
  for (const a of inAccount)
    for (const b of inAccount)
      if (a !== b && b.namePrefix.startsWith(`${a.namePrefix}-`))
        problems.push(
          `environments/${b.stage}.ts namePrefix: must not start with "${a.namePrefix}-" (stage ${a.stage}'s prefix, same account ${id}): ` +
            `each stage's deploy role may change only the roles named with its own prefix (got ${JSON.stringify(b.namePrefix)})`,
        );
  const region = first.backend.region;
  if (account.oidcProvider.kind === 'existing' && account.oidcProvider.arn !== githubOidcProviderArn(id, region)) {
    problems.push(
      `accounts.${id}.oidcProvider.arn: must be the provider in account ${id}, ${githubOidcProviderArn(id, region)} (got ${JSON.stringify(account.oidcProvider.arn)})`,
    );
  }
  return problems;
}

/** One account as the bootstrap stack builds it: its state bucket, OIDC provider and stages. */
function bootstrapAccount(
  id: string,
  account: ParsedAccount,
  stages: { inAccount: readonly EnvironmentConfig[]; pullRequestPlans: readonly string[] },
): BootstrapAccount {
  const [first] = stages.inAccount;
  const region = first.backend.region;
  return {
    accountId: id,
    partition: partitionOf(region),
    region,
    stateBucket: first.backend.bucket,
    oidcProvider: account.oidcProvider,
    stages: stages.inAccount.map((s) => ({
      stage: s.stage,
      region: s.account.region,
      stateKey: s.backend.key,
      namePrefix: s.namePrefix,
      imageRepository: s.image.repository,
      smoke: { bucket: stageBucketName(s), inputPrefix: s.bucket.inputPrefix, resultsPrefix: s.bucket.resultsPrefix },
      pullRequestPlans: stages.pullRequestPlans.includes(s.stage),
    })),
  };
}

/** Validates the bootstrap input against its schema and against the (already validated) stages. */
export function validateBootstrap(input: unknown, stages: readonly EnvironmentConfig[]): BootstrapConfig {
  const parsed = bootstrapSchema.safeParse(input);
  if (!parsed.success) {
    throw new BootstrapConfigError(parsed.error.issues.map((issue) => describeIssue(input, issue)));
  }
  const { github, accounts, state } = parsed.data;
  const problems: string[] = [];
  for (const field of ['pullRequestPlans', 'approvals'] as const)
    github[field].forEach((name, i) => {
      if (!stages.some((s) => s.stage === name))
        problems.push(`github.${field}.${i}: must name a stage (${stages.map((s) => s.stage).join(', ')}) (got ${JSON.stringify(name)})`);
    });

  const stagesByAccount = new Map<string, EnvironmentConfig[]>();
  for (const stage of stages) {
    stagesByAccount.set(stage.account.id, [...(stagesByAccount.get(stage.account.id) ?? []), stage]);
  }
  for (const [id, inAccount] of stagesByAccount) {
    if (!(id in accounts)) {
      problems.push(`accounts: must list account ${id} (stage ${inAccount.map((s) => s.stage).join(', ')} deploys there)`);
    }
  }

  const result: BootstrapAccount[] = [];
  for (const [id, account] of Object.entries(accounts)) {
    const inAccount = stagesByAccount.get(id) ?? [];
    if (inAccount.length === 0) {
      problems.push(`accounts.${id}: no stage deploys to this account (stages are in ${[...stagesByAccount.keys()].join(', ')}); remove it`);
      continue;
    }
    problems.push(...accountProblems(id, account, inAccount));
    result.push(bootstrapAccount(id, account, { inAccount, pullRequestPlans: github.pullRequestPlans }));
  }
  if (problems.length > 0) throw new BootstrapConfigError(problems);
  return { github, state, accounts: result };
}
