import type { EnvironmentInput } from './schema';

/** Staging: production's shape at a fifth of its budget, in the staging account's existing VPC, with two routes. */
export const stg = {
  stage: 'stg',
  account: { id: '222222222222', region: 'eu-west-1' },
  allowDestroy: false,
  namePrefix: 'sluice-stg',
  tags: { project: 'sluice', stage: 'stg', owner: 'platform' },
  bucket: {
    inputPrefix: 'incoming/',
    resultsPrefix: 'results/',
    resultsRetentionDays: 30,
    noncurrentVersionRetentionDays: 14,
  },
  capacity: {
    accountVcpuQuota: 100,
    vcpuBudget: 20,
    launchRatePerSecond: 5,
    launchBurst: 10,
    mapMaxConcurrency: 20,
    jobsPerExecution: 20,
    batchWindowSeconds: 1,
    capacityRetryDelaySeconds: 60,
  },
  task: {
    cpu: 1024,
    memoryMiB: 2048,
    architecture: 'X86_64',
    capacityProviders: [
      { name: 'FARGATE', weight: 1, base: 0 },
      { name: 'FARGATE_SPOT', weight: 3, base: 0 },
    ],
    stopTimeoutSeconds: 60,
    timeoutSeconds: 3600,
    ephemeralStorageGiB: 21,
  },
  retry: {
    ecsApi: { intervalSeconds: 2, maxAttempts: 10, backoffRate: 2, maxDelaySeconds: 120 },
    taskFailed: { intervalSeconds: 10, maxAttempts: 2, backoffRate: 2, maxDelaySeconds: 120 },
  },
  intake: { maxReceiveCount: 5, ruleRetryAttempts: 185, ruleMaxEventAgeSeconds: 86400, backlogAlarmAgeSeconds: 3600 },
  // Routes, tried here before production: the stage's own prefix keeps its queue and rule (route `default`); urgent
  // uploads beside it are admitted first, never hold more than a quarter of the budget, and run on smaller tasks of
  // their own; small files (seconds of work each) run ten to a task, so each pays Fargate's start-up once per ten.
  routes: [
    { name: 'default', inputPrefix: 'incoming/', share: 3 },
    { name: 'urgent', inputPrefix: 'urgent/', share: 1, priority: 1, maxVcpu: 5, task: { cpu: 512, memoryMiB: 1024 } },
    { name: 'small', inputPrefix: 'small/', share: 1, packing: { objectsPerTask: 10 } },
  ],
  network: {
    kind: 'existing',
    vpcId: 'vpc-0a1b2c3d4e5f60718',
    privateSubnetIds: ['subnet-0a1b2c3d4e5f60001', 'subnet-0a1b2c3d4e5f60002'],
  },
  image: { repository: 'sluice-worker', digest: 'sha256:0000000000000000000000000000000000000000000000000000000000000000' },
  logRetentionDays: 30,
  alarmEmail: 'sluice-stg-alarms@example.com',
  alarms: { reclaimedLeasesAbove: 0, failedJobsAbove: 0 },
  backend: { bucket: 'sluice-tfstate-222222222222', key: 'sluice/stg.tfstate', region: 'eu-west-1' },
} satisfies EnvironmentInput;
