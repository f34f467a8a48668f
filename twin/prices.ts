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
  /**
   * aws.amazon.com/fargate/pricing — Linux/x86 On-Demand per vCPU-hour and per GB-hour (memory), billed per second
   * from the image pull's start to the task's stop, with a 1-minute minimum (/work/shared/AWS-FACTS.md).
   */
  fargatePerVcpuHour: 0.04048,
  fargatePerGbHour: 0.004445,
  fargateMinimumBilledSeconds: 60,
  /**
   * Fargate Spot: the pricing page shows a current price that moves with supply and demand, "up to 70%" off
   * On-Demand; the twin takes the full 70 % off (so Spot's figure is its cheapest case).
   */
  fargateSpotPerVcpuHour: 0.04048 * 0.3,
  fargateSpotPerGbHour: 0.004445 * 0.3,
} as const;
