/**
 * The limiter is one DynamoDB item holding a lease per running task, so DynamoDB's limits on one item bound
 * the pool (Amazon DynamoDB developer guide):
 * - an item is at most 400 KB ("Service, account, and table quotas");
 * - an item lives in one partition, and a partition takes at most 1,000 write units per second whatever the
 *   table's capacity ("Understanding DynamoDB warm throughput": "each individual partition is limited to 1,000
 *   write units per second");
 * - a write costs one write unit per KB of the larger of the item before and after it ("Read/write capacity
 *   mode": 1 WRU per write of up to 1 KB).
 * Sizes follow "Item sizes and formats": names count, strings are UTF-8 bytes, a number is at most 21 bytes
 * (about half its digits + 1), a map is 3 bytes + 1 per element. SDK-free: the stage schema uses it at synth.
 */
export const DYNAMODB_ITEM_MAX_BYTES = 400 * 1024;
export const PARTITION_WRITE_UNITS_PER_SECOND = 1000;

/**
 * One lease at most, rounded up: its job id as the map key (32) + a map (3 + 4 elements) of `vcpu` (4 + 3),
 * `execution` (9 + an execution name of at most 48: "batch10-" and 40 hex digits), `admittedAt` and `expiresAt`
 * (10 and 9 + two 13-digit epoch milliseconds, 8 each) = 138 bytes.
 */
export const LEASE_MAX_BYTES = 150;
/** The counters, rounded up: pk "POOL", budgetVcpu, ratePerSecond, burst, inUseVcpu, tat, updatedAt (ISO), the leases map. */
export const POOL_COUNTERS_MAX_BYTES = 150;

/** Writes on the pool item per launch, at most: the admission that took the lease and the release that gives it back. */
export const POOL_WRITES_PER_LAUNCH = 2;

export interface PoolItemLoad {
  /** Leases held at most: the budget over one task's vCPU. */
  readonly maxLeases: number;
  readonly maxItemBytes: number;
  /** Write units per second on the pool item when launches run at the limiter's rate with every lease held. */
  readonly writeUnitsPerSecond: number;
}

export function poolItemLoad(budgetVcpu: number, taskVcpu: number, launchRatePerSecond: number): PoolItemLoad {
  const maxLeases = Math.floor(budgetVcpu / taskVcpu + 1e-9);
  const maxItemBytes = POOL_COUNTERS_MAX_BYTES + maxLeases * LEASE_MAX_BYTES;
  const writeUnitsPerSecond = POOL_WRITES_PER_LAUNCH * launchRatePerSecond * Math.ceil(maxItemBytes / 1024);
  return { maxLeases, maxItemBytes, writeUnitsPerSecond };
}

/** What keeps a pool of this size from working, if anything: one sentence per limit it passes. */
export function poolItemProblems(budgetVcpu: number, taskVcpu: number, launchRatePerSecond: number): string[] {
  const load = poolItemLoad(budgetVcpu, taskVcpu, launchRatePerSecond);
  const held = `${load.maxLeases} leases (${budgetVcpu} vCPU / ${taskVcpu} vCPU per task) make the limiter's DynamoDB item up to ${kb(load.maxItemBytes)}`;
  const problems: string[] = [];
  if (load.maxItemBytes > DYNAMODB_ITEM_MAX_BYTES) {
    problems.push(`${held}, over DynamoDB's 400 KB item limit`);
  }
  if (load.writeUnitsPerSecond > PARTITION_WRITE_UNITS_PER_SECOND) {
    problems.push(
      `${held}; at ${launchRatePerSecond} launches/s its admissions and releases need ${load.writeUnitsPerSecond} write units/s, ` +
        `over the ${PARTITION_WRITE_UNITS_PER_SECOND} one DynamoDB partition takes`,
    );
  }
  return problems;
}

function kb(bytes: number): string {
  return `${Math.ceil(bytes / 1024)} KB`;
}
