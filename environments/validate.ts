import { z } from 'zod';
import { EnvironmentConfig, environmentSchema } from './schema';

/** A configuration that must not reach a plan; its message names the stage, each field and what is allowed. */
export class ConfigError extends Error {
  constructor(
    readonly environment: string,
    readonly problems: readonly string[],
  ) {
    super(`Invalid configuration for environment "${environment}":\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value: unknown = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** The field's path; a route's field names its route too: `routes.1.share (route 'bulk')`. */
function fieldOf(input: unknown, path: readonly PropertyKey[]): string {
  const field = path.length > 0 ? path.map(String).join('.') : '(root)';
  const routeName = path[0] === 'routes' && typeof path[1] === 'number' ? valueAt(input, ['routes', path[1], 'name']) : undefined;
  return typeof routeName === 'string' ? `${field} (route '${routeName}')` : field;
}

/** One zod issue as `field: what is allowed (got …)`; shared by the stage and bootstrap validators. */
export function describeIssue(input: unknown, issue: z.core.$ZodIssue): string {
  const field = fieldOf(input, issue.path);
  const got = valueAt(input, issue.path);
  if (got === undefined && issue.code !== 'unrecognized_keys' && issue.code !== 'custom') {
    return `${field}: is required and ${issue.message}`;
  }
  const shown = got === undefined || typeof got === 'object' ? '' : ` (got ${JSON.stringify(got)})`;
  return `${field}: ${issue.message}${shown}`;
}

/** Validates one stage's configuration; `name` is how the stage is called in errors (its file name). */
export function validateEnvironment(name: string, input: unknown): EnvironmentConfig {
  const result = environmentSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      name,
      result.error.issues.map((issue) => describeIssue(input, issue)),
    );
  }
  if (result.data.stage !== name) {
    throw new ConfigError(name, [`stage: must equal the environment's name "${name}" (got ${JSON.stringify(result.data.stage)})`]);
  }
  return result.data;
}

/** Validates every stage, then what must differ between stages. */
export function validateEnvironments(inputs: Readonly<Record<string, unknown>>): EnvironmentConfig[] {
  const configs = Object.entries(inputs).map(([name, input]) => validateEnvironment(name, input));
  const seen = new Map<string, string>();
  for (const config of configs) {
    const checks: Array<[string, string]> = [
      ['backend.key', `${config.backend.bucket}/${config.backend.key}`],
      ['namePrefix', `${config.account.id}/${config.account.region}/${config.namePrefix}`],
    ];
    for (const [field, identity] of checks) {
      const owner = seen.get(`${field}=${identity}`);
      if (owner) {
        throw new ConfigError(config.stage, [
          `${field}: must differ from environment "${owner}"'s (both are ${JSON.stringify(identity)}); two stages would share ${field === 'backend.key' ? 'one Terraform state' : 'resource names'}`,
        ]);
      }
      seen.set(`${field}=${identity}`, config.stage);
    }
  }
  return configs;
}
