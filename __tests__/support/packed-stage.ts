import { ENVIRONMENT_INPUTS, validateEnvironment, type EnvironmentConfig, type EnvironmentInput } from '../../environments';
import { ROUTED_DEV } from './routed-stage';

/** dev packing 4 objects a task (functions/packing.ts). */
export const PACKED_DEV = { ...ENVIRONMENT_INPUTS.dev, packing: { objectsPerTask: 4 } } satisfies EnvironmentInput;

export function packedDevConfig(): EnvironmentConfig {
  return validateEnvironment('dev', PACKED_DEV);
}

/** dev with routes (ROUTED_DEV) where bulk packs 10 objects a task and default runs one. */
export function packedRoutedDevConfig(): EnvironmentConfig {
  return validateEnvironment('dev', {
    ...ROUTED_DEV,
    routes: ROUTED_DEV.routes.map((route) => (route.name === 'bulk' ? { ...route, packing: { objectsPerTask: 10 } } : route)),
  });
}
