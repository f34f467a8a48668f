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
 *   the batch records (one Scan of a table that holds only them): MAX_CONCURRENT_TASKS keeps a sweep within seconds
 *   of its 120 s timeout (200 calls).
 * - An execution's input carries its jobs: 40 × ~400 bytes is far below Step Functions' 256 KiB.
 */
const TRANSACT_WRITE_MAX_ITEMS = 100;
/** POOL and the batch record, besides one row per job. */
const ADMISSION_FIXED_ITEMS = 2;
const MAX_CONCURRENT_TASKS = 20_000;

/** What keeps a pool of this size from working, if anything: one sentence per limit it passes. */
export function poolProblems(budgetVcpu: number, taskVcpu: number, jobsPerExecution: number): string[] {
  const problems: string[] = [];
  const tasks = Math.floor(budgetVcpu / taskVcpu + 1e-9);
  if (tasks > MAX_CONCURRENT_TASKS) {
    problems.push(
      `${budgetVcpu} vCPU of ${taskVcpu}-vCPU tasks is ${tasks} concurrent tasks, over the ${MAX_CONCURRENT_TASKS} a janitor sweep can check ` +
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
