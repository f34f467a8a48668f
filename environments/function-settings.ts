/**
 * What the stage's functions are set up with that `sluice` also needs: the stack and the CLI read them here, so
 * neither the CLI loads the constructs nor the constructs restate a setting.
 */
import type { ConfigurePoolSettings } from '../functions/environment';
import { vcpuOf } from './fargate';
import type { EnvironmentConfig } from './schema';

/** How often the janitor sweeps. */
export const JANITOR_PERIOD_MINUTES = 5;

/** What the pool's settings are checked against: the stage's task size, batch size and quota (the function's and `sluice resize`'s). */
export function configurePoolSettingsOf(config: EnvironmentConfig, tableName: string): ConfigurePoolSettings {
  return {
    tableName,
    taskVcpu: vcpuOf(config.task.cpu),
    jobsPerExecution: config.capacity.jobsPerExecution,
    accountVcpuQuota: config.capacity.accountVcpuQuota,
  };
}
