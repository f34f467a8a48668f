/**
 * What bounds a pool, with the DynamoDB and Step Functions limits behind each number. A lease lives on its job's ledger
 * row and a release on one of RELEASE_SHARDS counters (functions/limiter.ts), so no item grows with the pool: the
 * bounds are per transaction, per partition, per sweep and per execution input. SDK-free: the stage schema uses it at synth.
 * - An admission is one TransactWriteItems: POOL + one row per job + the batch record. DynamoDB takes at most 100
 *   items per transaction ("Transactions: TransactWriteItems"): jobsPerExecution ≤ 98. The inline Map runs at most
 *   40 iterations at once, and jobsPerExecution ≤ mapMaxConcurrency, so 42 items at most.
 * - One partition takes 1,000 write units a second. POOL is written by admissions (at most one per launch, 2 units
 *   each: a transactional write of an item under 1 KB, ≤ 40 units/s at Fargate's 20 launches/s), by a dispatcher
 *   run's record of its last look (1 unit, at most one per run, and runs go one at a time), once a minute by the
 *   capacity reader and by the state machine's hold after a vCPU-limit error (one per such error). Releases go to
 *   RELEASE_SHARDS shards: ≤ 40 units/s in all. Neither is near the limit, whatever the budget.
 * - Every janitor sweep reads the ledger row of every lease the live batches hold (BatchGetItem, 100 keys a call), and
 *   the batch records (one Scan of a table that holds only them). A lease is a job's: with packing
 *   (functions/packing.ts) a task holds one per object. MAX_CONCURRENT_LEASES keeps a sweep within seconds of its
 *   120 s timeout (200 calls).
 * - An execution's input carries its jobs: 40 × ~400 bytes is far below Step Functions' 256 KiB.
 */
const TRANSACT_WRITE_MAX_ITEMS = 100;
/** POOL and the batch record, besides one row per job. */
const ADMISSION_FIXED_ITEMS = 2;
/** The most jobs (objects) one admission leases: one transaction holds them all. */
export const MAX_JOBS_PER_ADMISSION = TRANSACT_WRITE_MAX_ITEMS - ADMISSION_FIXED_ITEMS;
const MAX_CONCURRENT_LEASES = 20_000;

/**
 * What keeps a pool of this size from working, if anything: one sentence per limit it passes. `objectsPerTask`: the
 * most objects a task of the stage runs (a lease each).
 */
export function poolProblems(budgetVcpu: number, taskVcpu: number, jobsPerExecution: number, objectsPerTask = 1): string[] {
  const problems: string[] = [];
  const tasks = Math.floor(budgetVcpu / taskVcpu + 1e-9);
  if (tasks * objectsPerTask > MAX_CONCURRENT_LEASES) {
    const packed = objectsPerTask > 1 ? ` of ${objectsPerTask} objects each, ${tasks * objectsPerTask} leases` : '';
    problems.push(
      `${budgetVcpu} vCPU of ${taskVcpu}-vCPU tasks is ${tasks} concurrent tasks${packed}, over the ${MAX_CONCURRENT_LEASES} leases a janitor sweep can check ` +
        `(it reads each lease's ledger row, 100 per BatchGetItem)`,
    );
  }
  if (jobsPerExecution + ADMISSION_FIXED_ITEMS > TRANSACT_WRITE_MAX_ITEMS) {
    problems.push(
      `an admission of ${jobsPerExecution} jobs writes ${jobsPerExecution + ADMISSION_FIXED_ITEMS} items in one transaction, over DynamoDB's ${TRANSACT_WRITE_MAX_ITEMS}`,
    );
  }
  return problems;
}
