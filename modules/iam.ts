/** IAM policy documents as typed values; serialized to JSON only where a resource takes a policy string. */

export interface PolicyStatement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Principal?: '*' | Readonly<Record<string, string | readonly string[]>>;
  /** One of Action and NotAction. */
  readonly Action?: string | readonly string[];
  readonly NotAction?: string | readonly string[];
  readonly Resource?: string | readonly string[];
  readonly NotResource?: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | boolean | readonly string[]>>>>;
}

export interface PolicyDocument {
  readonly Version: '2012-10-17';
  readonly Statement: readonly PolicyStatement[];
}

function policyDocument(...statements: PolicyStatement[]): PolicyDocument {
  return { Version: '2012-10-17', Statement: statements };
}

/** IAM takes one value or a list: one is written as itself. */
export function oneOrList(values: readonly string[]): string | readonly string[] {
  return values.length === 1 ? values[0] : values;
}

/** Token strings (resource references) inside survive JSON.stringify and render as Terraform interpolations. */
export function policyJson(...statements: PolicyStatement[]): string {
  return JSON.stringify(policyDocument(...statements));
}

/**
 * Trust policy for an AWS service, limited to this account and, where the service says which of its resources acts
 * (`sourceArn`: the state machine, the account's ECS tasks), to that resource (confused-deputy guard).
 */
export function serviceTrustPolicy(service: string, accountId: string, sourceArn?: string): string {
  return policyJson({
    Effect: 'Allow',
    Principal: { Service: service },
    Action: 'sts:AssumeRole',
    Condition: { StringEquals: { 'aws:SourceAccount': accountId }, ...(sourceArn ? { ArnLike: { 'aws:SourceArn': sourceArn } } : {}) },
  });
}

/** Deny any request that does not use TLS. */
export function denyInsecureTransport(resources: readonly string[]): PolicyStatement {
  return {
    Sid: 'DenyInsecureTransport',
    Effect: 'Deny',
    Principal: '*',
    Action: '*',
    Resource: resources,
    Condition: { Bool: { 'aws:SecureTransport': 'false' } },
  };
}

/**
 * Trust policy for GitHub Actions jobs through the account's GitHub OIDC provider: the token must be
 * meant for STS (`aud`) and come from one of the given `sub`jects (repository, context, workflow file and ref).
 * StringLike, for a pull request's number only: owner, repository, branch and file names cannot hold `*` or `?`, so
 * every other part matches exactly.
 */
export function githubActionsTrustPolicy(providerArn: string, oidcHost: string, audience: string, subjects: readonly string[]): string {
  return policyJson({
    Effect: 'Allow',
    Principal: { Federated: providerArn },
    Action: 'sts:AssumeRoleWithWebIdentity',
    Condition: {
      StringEquals: { [`${oidcHost}:aud`]: audience },
      StringLike: { [`${oidcHost}:sub`]: subjects.length === 1 ? subjects[0] : subjects },
    },
  });
}
