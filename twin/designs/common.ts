import type { EnvironmentConfig } from '../../environments';
import type { World } from '../world';

/** A Task state's RunTask parameters as the baselines would write them (the worker reads BUCKET and KEY). */
export function runTaskParameters(world: World, stage: EnvironmentConfig, env: Array<Record<string, string>>) {
  return {
    Cluster: world.cluster,
    TaskDefinition: world.taskDefinition,
    CapacityProviderStrategy: stage.task.capacityProviders.map((p) => ({ CapacityProvider: p.name, Weight: p.weight, Base: p.base })),
    NetworkConfiguration: { AwsvpcConfiguration: { Subnets: ['subnet-0123456789abcdef0'], AssignPublicIp: 'DISABLED' } },
    Overrides: { ContainerOverrides: [{ Name: 'worker', Environment: env }] },
  };
}

/** RunTask .sync retried 3 times at 3 s, backoff 2 — the retry the problem starts from. */
export const NAIVE_RETRY = [
  { ErrorEquals: ['ECS.AmazonECSException', 'AmazonECS.Unknown', 'States.TaskFailed'], IntervalSeconds: 3, MaxAttempts: 3, BackoffRate: 2 },
];

export const jobIdOfKey = (object: { key: string }) => object.key;
