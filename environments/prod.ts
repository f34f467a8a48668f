import type { EnvironmentInput } from './schema';

/** Production: 100 of the account's 400 Fargate vCPU, half the tasks On-Demand and half Spot. */
export const prod = {
  stage: 'prod',
  account: { id: '333333333333', region: 'eu-west-1' },
  allowDestroy: false,
  namePrefix: 'sluice-prod',
  tags: { project: 'sluice', stage: 'prod', owner: 'platform' },
  bucket: {
    inputPrefix: 'incoming/',
    resultsPrefix: 'results/',
    resultsRetentionDays: 90,
    noncurrentVersionRetentionDays: 30,
  },
  capacity: {
    accountVcpuQuota: 400,
    vcpuBudget: 100,
    launchRatePerSecond: 10,
    launchBurst: 20,
    mapMaxConcurrency: 40,
    jobsPerExecution: 40,
    batchWindowSeconds: 1,
    capacityRetryDelaySeconds: 60,
  },
  task: {
    cpu: 1024,
    memoryMiB: 2048,
    architecture: 'X86_64',
    capacityProviders: [
      { name: 'FARGATE', weight: 1, base: 0 },
      { name: 'FARGATE_SPOT', weight: 1, base: 0 },
    ],
    stopTimeoutSeconds: 120,
    timeoutSeconds: 3600,
    ephemeralStorageGiB: 21,
  },
  retry: {
    ecsApi: { intervalSeconds: 2, maxAttempts: 10, backoffRate: 2, maxDelaySeconds: 120 },
    taskFailed: { intervalSeconds: 10, maxAttempts: 2, backoffRate: 2, maxDelaySeconds: 120 },
  },
  intake: { maxReceiveCount: 5, ruleRetryAttempts: 185, ruleMaxEventAgeSeconds: 86400, backlogAlarmAgeSeconds: 1800 },
  network: {
    kind: 'existing',
    vpcId: 'vpc-0f1e2d3c4b5a69788',
    privateSubnetIds: ['subnet-0f1e2d3c4b5a60001', 'subnet-0f1e2d3c4b5a60002', 'subnet-0f1e2d3c4b5a60003'],
  },
  image: { repository: 'sluice-worker', digest: 'sha256:0000000000000000000000000000000000000000000000000000000000000000' },
  logRetentionDays: 365,
  alarmEmail: 'sluice-prod-alarms@example.com',
  alarms: { reclaimedLeasesAbove: 0, failedJobsAbove: 10 },
  backend: { bucket: 'sluice-tfstate-333333333333', key: 'sluice/prod.tfstate', region: 'eu-west-1' },
} satisfies EnvironmentInput;
