import type { EnvironmentInput } from './schema';

/** Development: a new account's default Fargate quota (6 vCPU), a VPC of its own, cheap Spot tasks. */
export const dev = {
  stage: 'dev',
  account: { id: '111111111111', region: 'eu-west-1' },
  allowDestroy: true, // a scratch stage: terraform destroy takes its data with it
  namePrefix: 'sluice-dev',
  tags: { project: 'sluice', stage: 'dev', owner: 'platform' },
  bucket: {
    inputPrefix: 'incoming/',
    resultsPrefix: 'results/',
    resultsRetentionDays: 14,
    noncurrentVersionRetentionDays: 14,
  },
  capacity: {
    accountVcpuQuota: 6,
    vcpuBudget: 4,
    launchRatePerSecond: 2,
    launchBurst: 4,
    mapMaxConcurrency: 10,
    jobsPerExecution: 10,
    batchWindowSeconds: 1,
    capacityRetryDelaySeconds: 60,
  },
  task: {
    cpu: 1024,
    memoryMiB: 2048,
    architecture: 'X86_64',
    capacityProviders: [{ name: 'FARGATE_SPOT', weight: 1, base: 0 }],
    stopTimeoutSeconds: 30,
    timeoutSeconds: 3600,
    ephemeralStorageGiB: 21,
  },
  retry: {
    ecsApi: { intervalSeconds: 2, maxAttempts: 8, backoffRate: 2, maxDelaySeconds: 60 },
    taskFailed: { intervalSeconds: 10, maxAttempts: 2, backoffRate: 2, maxDelaySeconds: 120 },
  },
  intake: { maxReceiveCount: 5, ruleRetryAttempts: 185, ruleMaxEventAgeSeconds: 86400, backlogAlarmAgeSeconds: 3600 },
  network: { kind: 'create', cidr: '10.42.0.0/16', availabilityZones: ['eu-west-1a', 'eu-west-1b'] },
  // Tags are immutable in ECR: each push gets a new one (or pin the digest, as stg and prod do).
  image: { repository: 'sluice-dev-worker', tag: '2026-11-28.1' },
  logRetentionDays: 14,
  alarmEmail: 'sluice-dev-alarms@example.com',
  alarms: { reclaimedLeasesAbove: 0, failedJobsAbove: 0 },
  backend: { bucket: 'sluice-tfstate-111111111111', key: 'sluice/dev.tfstate', region: 'eu-west-1' },
} satisfies EnvironmentInput;
