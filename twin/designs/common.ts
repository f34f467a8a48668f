import type { World } from '../world';

/**
 * RunTask parameters as the baselines write them: their execution input is the S3 event itself. The worker
 * reads BUCKET and KEY; JOB_ID is the key, so the twin can attribute tasks.
 */
export function runTaskParameters(world: World) {
  const stage = world.stage;
  const env = [
    { Name: 'BUCKET', 'Value.$': '$.detail.bucket.name' },
    { Name: 'KEY', 'Value.$': '$.detail.object.key' },
    { Name: 'JOB_ID', 'Value.$': '$.detail.object.key' },
  ];
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
