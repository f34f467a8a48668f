import { validateBootstrap, type BootstrapConfig, type BootstrapInput } from './bootstrap-schema';
import { loadEnvironments } from './index';

/**
 * Applied once per account by an admin (`npm run synth:bootstrap`, see docs/rolling-out.md).
 * The state bucket of each account and the stages in it come from environments/<stage>.ts (`account.id`, `backend`).
 */
export const bootstrap = {
  github: {
    owner: 'example-org',
    repository: 'sluice',
    mainBranch: 'main',
    // prod is planned on main only: a pull request's own code never holds a prod credential.
    pullRequestPlans: ['dev', 'stg'],
    approvals: ['prod'],
  },
  accounts: {
    '111111111111': { oidcProvider: { kind: 'create' } },
    '222222222222': { oidcProvider: { kind: 'create' } },
    '333333333333': { oidcProvider: { kind: 'create' } },
  },
  state: { noncurrentVersionRetentionDays: 90, noncurrentVersionsKept: 10 },
} satisfies BootstrapInput;

/** The shipped bootstrap configuration, validated against the shipped stages. */
export function loadBootstrap(): BootstrapConfig {
  return validateBootstrap(bootstrap, loadEnvironments());
}
