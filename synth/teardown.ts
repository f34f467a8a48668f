/** What a stage's teardown synthesizes and checks: `npm run teardown` (scripts/teardown.ts) and verify/ use it. */
import { join } from 'node:path';
import type { EnvironmentConfig } from '../environments';
import { synthesizeStageTo } from './stage';

const TEARDOWN_OUTDIR = join('cdktf.out', 'teardown');

/** The attributes allowDestroy sets, per resource type: what the lifting plan may change, and nothing else. */
const PROTECTION_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = {
  aws_dynamodb_table: ['deletion_protection_enabled'],
  aws_s3_bucket: ['force_destroy'],
  aws_ecr_repository: ['force_delete'],
};

export function synthesizeForTeardown(config: EnvironmentConfig, outdir = TEARDOWN_OUTDIR): string {
  return synthesizeStageTo({ ...config, allowDestroy: true }, outdir);
}

interface PlannedChange {
  address: string;
  type: string;
  change: { actions: string[]; before: Record<string, unknown> | null; after: Record<string, unknown> | null };
}

/** Every reason the plan (`terraform show -json`) is more than lifting protection; empty when it is only that. */
export function beyondProtection(plan: { resource_changes?: PlannedChange[] }): string[] {
  const problems: string[] = [];
  for (const rc of plan.resource_changes ?? []) {
    const actions = rc.change.actions;
    if (actions.length === 1 && (actions[0] === 'no-op' || actions[0] === 'read')) continue;
    const allowed = PROTECTION_ATTRIBUTES[rc.type];
    if (!allowed || actions.length !== 1 || actions[0] !== 'update') {
      problems.push(`${rc.address}: ${actions.join('+')}`);
      continue;
    }
    const before = rc.change.before ?? {};
    const after = rc.change.after ?? {};
    const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
    const others = changed.filter((key) => !allowed.includes(key));
    if (others.length > 0) problems.push(`${rc.address}: also changes ${others.join(', ')}`);
  }
  return problems;
}
