import { dev } from './dev';
import { prod } from './prod';
import { stg } from './stg';
import { validateEnvironments } from './validate';

export type { EnvironmentConfig, EnvironmentInput } from './schema';
export { inputPrefixesOf, objectsPerTaskOf, routeCpuOf, routeRoomProblems, routeTimeoutOf, routeVcpuOf, stagePacks } from './schema';
export { ConfigError, validateEnvironment, validateEnvironments } from './validate';

/** Every stage, in rollout order. Add a stage: write environments/<stage>.ts and list it here. */
export const ENVIRONMENT_INPUTS = { dev, stg, prod } as const;

export function loadEnvironments() {
  return validateEnvironments(ENVIRONMENT_INPUTS);
}
