import { ENVIRONMENT_INPUTS } from '../environments';
import { stackName } from '../environments/names';
import type { RouteSummary, StageSettings } from '../modules/stack';
import { readSynthesizedStacks, resourceCounts } from '../synth/output';

/** One route: where its uploads come from, how it shares the budget, and its task. */
function routeLine(r: RouteSummary): string {
  const limits = [r.maxVcpu !== undefined ? `cap ${r.maxVcpu} vCPU` : '', r.reservedVcpu !== undefined ? `reserve ${r.reservedVcpu} vCPU` : ''].filter(Boolean);
  return (
    `route ${r.name}: ${r.inputPrefix} · share ${r.share}, priority ${r.priority}${limits.length > 0 ? `, ${limits.join(', ')}` : ''}` +
    ` · task ${r.taskVcpu} vCPU / ${r.taskMemoryMiB} MiB${objectsOf(r)}`
  );
}

/** A task's objects, where it runs more than one (a stage or route that packs). */
function objectsOf(settings: { readonly objectsPerTask?: number }): string {
  return settings.objectsPerTask !== undefined ? `, ${settings.objectsPerTask} objects a task` : '';
}

/** Prints, per synthesized stage, what `terraform apply` would create and the settings that matter. */
function main(): void {
  // Rollout order (dev → stg → prod), not the manifest's alphabetical one.
  const order = Object.keys(ENVIRONMENT_INPUTS).map(stackName);
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  const stacks = readSynthesizedStacks().sort((a, b) => rank(a.name) - rank(b.name));
  for (const stack of stacks) {
    const settings = stack.json.output?.settings?.value as StageSettings | undefined;
    const counts = resourceCounts(stack.json);
    const total = counts.reduce((sum, [, n]) => sum + n, 0);
    console.log(`\n${stack.name}  →  ${stack.path}`);
    if (settings) {
      console.log(
        `  account ${settings.account} in ${settings.region}\n` +
          `  vCPU budget ${settings.vcpuBudget} of the account's ${settings.accountVcpuQuota}` +
          ` · task ${settings.taskVcpu} vCPU / ${settings.taskMemoryMiB} MiB${objectsOf(settings)} (at most ${settings.maxConcurrentTasks} at once)` +
          ` · launches ${settings.launchRatePerSecond}/s · Map concurrency ${settings.mapMaxConcurrency}` +
          ` · ${settings.capacityProviders}`,
      );
      for (const route of settings.routes ?? []) console.log(`  ${routeLine(route)}`);
    }
    console.log(`  ${total} resources to create:`);
    const width = Math.max(...counts.map(([type]) => type.length));
    for (const [type, count] of counts) console.log(`    ${type.padEnd(width)}  ${count}`);
  }
  console.log(
    `\n${stacks.length} stage(s) synthesized. Plan one: terraform -chdir=cdktf.out/stacks/<stack> init && terraform -chdir=cdktf.out/stacks/<stack> plan`,
  );
}

main();
