import type { PolicyDocument, PolicyStatement } from '../../modules/iam';
import type { Decision } from './iam';

/**
 * Evaluates a role trust policy for sts:AssumeRoleWithWebIdentity with the token's claims as context keys.
 *
 * Why not iam-simulate's decide(): @cloud-copilot/iam-simulate 0.1.173 only accepts the context keys its action
 * data lists for sts:AssumeRoleWithWebIdentity, and for GitHub that list has the newer claims (`:ref`,
 * `:environment`, …) but not `token.actions.githubusercontent.com:sub` or `:aud`. It drops them as
 * "ignoredContextKeys", so every condition on them fails as missing and every request is denied
 * (bootstrap.test.ts pins this, so the day it changes these tests can move to decide()).
 *
 * This evaluator implements IAM's rules for exactly what trust policies here use and throws on anything else:
 * Allow/Deny, Principal.Federated, Action, and StringEquals / StringLike on single-valued keys
 * (every operator and key must match, any listed value matches, a missing key never matches; Deny wins).
 */
export function assumeRoleWithWebIdentity(trust: PolicyDocument, provider: string, claims: Readonly<Record<string, string>>): Decision {
  const matching = trust.Statement.filter((s) => actionMatches(s) && principalMatches(s, provider) && conditionsMatch(s, claims));
  if (matching.some((s) => s.Effect === 'Deny')) return 'ExplicitlyDenied';
  return matching.some((s) => s.Effect === 'Allow') ? 'Allowed' : 'ImplicitlyDenied';
}

function actionMatches(statement: PolicyStatement): boolean {
  return [statement.Action].flat().some((a) => a === '*' || a === 'sts:*' || a === 'sts:AssumeRoleWithWebIdentity');
}

function principalMatches(statement: PolicyStatement, provider: string): boolean {
  const principal = statement.Principal;
  if (principal === undefined || principal === '*') throw new Error(`unsupported principal ${JSON.stringify(principal)}`);
  return [principal.Federated ?? []].flat().includes(provider);
}

function glob(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}

function conditionsMatch(statement: PolicyStatement, claims: Readonly<Record<string, string>>): boolean {
  return Object.entries(statement.Condition ?? {}).every(([operator, byKey]) =>
    Object.entries(byKey).every(([key, expected]) => {
      const actual = Object.entries(claims).find(([claim]) => claim.toLowerCase() === key.toLowerCase())?.[1];
      if (actual === undefined) return false;
      const values = [expected].flat().map(String);
      switch (operator) {
        case 'StringEquals':
          return values.includes(actual);
        case 'StringLike':
          return values.some((value) => glob(value).test(actual));
        default:
          throw new Error(`assumeRoleWithWebIdentity does not evaluate ${operator}; extend it or use decide()`);
      }
    }),
  );
}
