import { ENVIRONMENT_INPUTS, validateEnvironment, type EnvironmentConfig, type EnvironmentInput } from '../../environments';

/**
 * dev with two routes: `default` (the stage's own prefix, intake queue and rule, the stage's task) and `bulk` beside it
 * (a queue and rule of its own, and a smaller, shorter task of its own: half a vCPU, 15 minutes at most).
 */
export const ROUTED_DEV = {
  ...ENVIRONMENT_INPUTS.dev,
  routes: [
    { name: 'default', inputPrefix: 'incoming/', share: 3, priority: 1 },
    { name: 'bulk', inputPrefix: 'bulk/', inputSuffix: '.csv', share: 1, maxVcpu: 2, task: { cpu: 512, memoryMiB: 1024, timeoutSeconds: 900 } },
  ],
} satisfies EnvironmentInput;

export function routedDevConfig(): EnvironmentConfig {
  return validateEnvironment('dev', ROUTED_DEV);
}
