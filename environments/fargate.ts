/**
 * Fargate task sizes, from the ECS task definition docs ("Task CPU and memory"):
 * each CPU value accepts memory in a range with a fixed step.
 */
const FARGATE_MEMORY_BY_CPU: Readonly<Record<number, { minMiB: number; maxMiB: number; stepMiB: number }>> = {
  256: { minMiB: 512, maxMiB: 2048, stepMiB: 512 },
  512: { minMiB: 1024, maxMiB: 4096, stepMiB: 1024 },
  1024: { minMiB: 2048, maxMiB: 8192, stepMiB: 1024 },
  2048: { minMiB: 4096, maxMiB: 16384, stepMiB: 1024 },
  4096: { minMiB: 8192, maxMiB: 30720, stepMiB: 1024 },
  8192: { minMiB: 16384, maxMiB: 61440, stepMiB: 4096 },
  16384: { minMiB: 32768, maxMiB: 122880, stepMiB: 8192 },
};

export const FARGATE_CPU_UNITS = Object.keys(FARGATE_MEMORY_BY_CPU).map(Number);

/** The 256-CPU size also accepts 512 MiB, which its 512-step range already includes. */
export function fargateMemoryChoices(cpu: number): number[] {
  const range = FARGATE_MEMORY_BY_CPU[cpu];
  if (!range) return [];
  const choices: number[] = [];
  for (let mib = range.minMiB; mib <= range.maxMiB; mib += range.stepMiB) choices.push(mib);
  return choices;
}

export function describeMemoryRange(cpu: number): string {
  const range = FARGATE_MEMORY_BY_CPU[cpu];
  return `${range.minMiB}–${range.maxMiB} MiB in steps of ${range.stepMiB}`;
}

export function vcpuOf(cpuUnits: number): number {
  return cpuUnits / 1024;
}

/** Fargate's documented launch ceiling (tasks/s, On-Demand and Spot each); sluice stays strictly below it. */
export const FARGATE_LAUNCHES_PER_SECOND = 20;
/** ECS stop timeout ceiling on Fargate (seconds). */
export const FARGATE_MAX_STOP_TIMEOUT_SECONDS = 120;
/** Inline Map runs at most 40 iterations concurrently. */
export const INLINE_MAP_MAX_CONCURRENCY = 40;
