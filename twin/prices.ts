/**
 * Prices for the cost estimate, US East (N. Virginia), on-demand list prices without free tiers, as published
 * on the AWS pricing pages below (read 2025; re-check before quoting a figure).
 */
export const PRICES = {
  asOf: '2025',
  region: 'us-east-1',
  /** aws.amazon.com/step-functions/pricing — Standard workflows, per state transition (retries count). */
  stepFunctionsPerTransition: 0.025 / 1000,
  /** aws.amazon.com/lambda/pricing — x86, per request and per GB-second. */
  lambdaPerRequest: 0.2 / 1_000_000,
  lambdaPerGbSecond: 0.0000166667,
  /** aws.amazon.com/dynamodb/pricing/on-demand — per write / read request unit (≤ 1 KB writes, ≤ 4 KB strongly consistent reads). */
  dynamodbPerWriteUnit: 0.625 / 1_000_000,
  dynamodbPerReadUnit: 0.125 / 1_000_000,
  /** aws.amazon.com/sqs/pricing — standard queue, per request (64 KB chunk). */
  sqsPerRequest: 0.4 / 1_000_000,
  /** aws.amazon.com/fargate/pricing — Linux/x86 per vCPU-hour (memory not included); Spot is cheaper. */
  fargatePerVcpuHour: 0.04048,
} as const;
