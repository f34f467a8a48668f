import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatReview, markdownText, reviewPlan, type PlanJson, type PlanReview } from './plan-review';

/**
 * The pull-request comment for one stage's `terraform plan` (and the drift report's summary): a heading that
 * says planned / no changes / error with the counts, and the full plan folded under <details>, cut to fit
 * GitHub's comment limit. A hidden marker lets the workflow find and update its own comment per stage.
 */

/** GitHub rejects issue and pull-request comments longer than this (characters). */
export const GITHUB_COMMENT_LIMIT = 65536;

type PlanKind = 'plan' | 'drift';
type PlanStatus = 'planned' | 'no-changes' | 'error';

interface PlanCounts {
  readonly import: number;
  readonly add: number;
  readonly change: number;
  readonly destroy: number;
}

interface PlanCommentInput {
  readonly stage: string;
  /** Everything `terraform init` and `terraform plan -no-color` printed; undefined when the job never got that far. */
  readonly planText: string | undefined;
  /** `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, anything else an error. */
  readonly exitCode: number;
  readonly kind?: PlanKind;
  readonly runUrl?: string;
  readonly commit?: string;
  /** Name of the run artifact that holds the full plan output. */
  readonly artifact?: string;
  /** `terraform show -json tfplan`, when the plan was saved: the comment then says per resource what and why. */
  readonly planJson?: PlanJson;
  /** Said under the heading, as a caution (e.g. the pull request changes its own workflows). */
  readonly caution?: string;
  readonly limit?: number;
}

export function commentMarker(stage: string, kind: PlanKind = 'plan'): string {
  return `<!-- sluice-${kind}:${stage} -->`;
}

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex -- ESC is what an ANSI colour code starts with
  return text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
}

const PLAN_LINE = /^Plan: (?:(\d+) to import, )?(\d+) to add, (\d+) to change, (\d+) to destroy\.\s*$/m;
const NO_CHANGES = /^No changes\./m;

/** The counts of "Plan: X to add, Y to change, Z to destroy." (or zeros for "No changes."); undefined if neither is there. */
export function parsePlanCounts(text: string): PlanCounts | undefined {
  const plain = stripAnsi(text);
  const match = PLAN_LINE.exec(plain);
  if (match) {
    return { import: Number(match[1] ?? 0), add: Number(match[2]), change: Number(match[3]), destroy: Number(match[4]) };
  }
  return NO_CHANGES.test(plain) ? { import: 0, add: 0, change: 0, destroy: 0 } : undefined;
}

export function planStatus(exitCode: number, text: string | undefined): PlanStatus {
  if (text === undefined) return 'error';
  if (exitCode === 2) return 'planned';
  if (exitCode === 0) {
    // Also right without -detailed-exitcode, where a plan with changes exits 0 too.
    const counts = parsePlanCounts(text);
    return counts && counts.import + counts.add + counts.change + counts.destroy > 0 ? 'planned' : 'no-changes';
  }
  return 'error';
}

function heading(input: PlanCommentInput, status: PlanStatus, counts: PlanCounts | undefined, review: PlanReview | undefined): string {
  const name = `sluice-${input.stage}`;
  const tally = review
    ? `${review.counts.create} to create, ${review.counts.update} to update, ${review.counts.replace} to replace, ${review.counts.delete} to destroy`
    : counts
      ? `${counts.import > 0 ? `${counts.import} to import, ` : ''}${counts.add} to add, ${counts.change} to change, ${counts.destroy} to destroy`
      : '';
  const drift = input.kind === 'drift';
  switch (status) {
    case 'planned':
      return drift ? `### ⚠️ ${name}: drift — ${tally}` : `### 📝 ${name}: planned — ${tally}`;
    case 'no-changes':
      return drift ? `### ✅ ${name}: no drift` : `### ✅ ${name}: no changes`;
    case 'error':
      return `### ❌ ${name}: error — \`terraform ${input.planText === undefined ? 'init/plan did not run' : `plan exited ${input.exitCode}`}\``;
  }
}

/** A fence longer than any backtick run in the text, so plan output can never close the code block. */
function fenceFor(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  return '`'.repeat(Math.max(3, longest + 1));
}

/**
 * Cuts `text` to at most `budget` characters: the head, a note of what was cut, and the tail from the summary
 * line ("Plan: …", "No changes.", or the last "Error:") on — the part a reviewer must not miss.
 */
export function truncatePlan(text: string, budget: number, artifact?: string): string {
  if (text.length <= budget) return text;
  const tailBudget = Math.floor(budget / 4);
  const summaryAt = Math.max(text.search(PLAN_LINE), text.search(NO_CHANGES), text.lastIndexOf('Error: '));
  const tailStart = summaryAt >= 0 ? summaryAt : Math.max(0, text.length - tailBudget);
  const tailCut = text.length - tailStart > tailBudget;
  const tail = tailCut ? `${text.slice(tailStart, tailStart + tailBudget)}\n… (the rest is in the artifact)` : text.slice(tailStart);
  const note = (cut: number, lines: number) =>
    `\n\n… ${cut.toLocaleString('en-US')} characters (${lines.toLocaleString('en-US')} lines) cut to fit GitHub's comment limit;` +
    ` the full plan is in this run's artifact${artifact ? ` \`${artifact}\`` : ''}. …\n\n`;
  // The note's length depends on the numbers in it: reserve room for the longest it can be.
  const reserve = note(text.length, text.length).length;
  const head = text.slice(0, Math.max(0, Math.min(budget - tail.length - reserve, tailStart)));
  const cut = text.slice(head.length, tailStart);
  return head + note(cut.length, cut.length === 0 ? 0 : cut.split('\n').length) + tail;
}

export function formatPlanComment(input: PlanCommentInput): string {
  const limit = input.limit ?? GITHUB_COMMENT_LIMIT;
  const text = input.planText === undefined ? undefined : stripAnsi(input.planText).replace(/\s+$/, '');
  const status = planStatus(input.exitCode, text);
  const counts = text === undefined ? undefined : parsePlanCounts(text);
  const review = status === 'planned' && input.planJson ? reviewOrNothing(input.planJson) : undefined;
  const lines = [commentMarker(input.stage, input.kind), heading(input, status, counts, review)];
  const about = [input.commit ? `commit \`${input.commit.slice(0, 12)}\`` : '', input.runUrl ? `[workflow run](${input.runUrl})` : '']
    .filter(Boolean)
    .join(' · ');
  if (about) lines.push('', about);
  if (input.caution) lines.push('', `> [!CAUTION]\n> ${markdownText(input.caution)}`);
  if (review) {
    // Replacements are not destroys: a warning only for what takes data or work with it.
    const destructive = review.changes.filter((c) => c.destructive);
    if (destructive.length > 0) {
      const named = destructive.slice(0, 20).map((c) => `${c.verb} ${markdownText(c.address)}`);
      const more = destructive.length > named.length ? `, and ${destructive.length - named.length} more` : '';
      lines.push('', `> [!WARNING]\n> ${destructive.length} change(s) delete data or running work: ${named.join(', ')}${more}.`);
    }
    const used = lines.join('\n').length;
    lines.push('', formatReview(review, Math.max(0, Math.floor(limit * 0.6) - used)));
  } else if (counts && counts.destroy > 0) lines.push('', `> [!WARNING]\n> ${counts.destroy} resource(s) will be destroyed. Check the plan before merging.`);
  if (text === undefined) {
    lines.push('', 'No plan output: the job failed before `terraform plan` ran (credentials, init or synth). See the workflow run.');
    return lines.join('\n');
  }
  const body = text.length > 0 ? text : '(terraform printed nothing)';
  const fence = fenceFor(body);
  const open = `<details><summary>${input.kind === 'drift' ? 'Drift plan' : 'Full plan'} (${body.split('\n').length} lines)</summary>\n\n${fence}text\n`;
  const close = `\n${fence}\n\n</details>`;
  const prefix = `${lines.join('\n')}\n\n`;
  const budget = limit - prefix.length - open.length - close.length;
  // Room for the full plan's head and summary, or a pointer to the artifact that holds it.
  if (budget < 1000) return `${prefix}The full plan did not fit: it is in this run's artifact${input.artifact ? ` \`${input.artifact}\`` : ''}.`;
  return prefix + open + truncatePlan(body, budget, input.artifact) + close;
}

/** The review of a plan Terraform wrote, or nothing (the comment then works from the text) if its JSON is not one read here. */
function reviewOrNothing(plan: PlanJson): PlanReview | undefined {
  try {
    return reviewPlan(plan);
  } catch {
    return undefined;
  }
}

/** The JSON plan, when the file is there and is one (a plan that failed saved none: the comment then works from the text). */
function readPlanJson(file: string | undefined): PlanJson | undefined {
  if (!file || !existsSync(file)) return undefined;
  try {
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanJson;
    return Array.isArray(plan.resource_changes) ? plan : undefined;
  } catch {
    return undefined;
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      stage: { type: 'string' },
      plan: { type: 'string' },
      'exit-code': { type: 'string' },
      kind: { type: 'string', default: 'plan' },
      'run-url': { type: 'string' },
      commit: { type: 'string' },
      artifact: { type: 'string' },
      'plan-json': { type: 'string' },
      caution: { type: 'string' },
    },
  });
  if (!values.stage || !values.plan || values['exit-code'] === undefined) {
    console.error(
      'usage: plan-comment --stage <stage> --plan <plan.txt> --exit-code <n> [--plan-json <plan.json>] [--kind plan|drift] [--run-url URL] [--commit SHA] [--artifact NAME]',
    );
    process.exit(64);
  }
  if (values.kind !== 'plan' && values.kind !== 'drift') throw new Error(`--kind must be plan or drift (got ${values.kind})`);
  const exitCode = Number.parseInt(values['exit-code'], 10);
  process.stdout.write(
    formatPlanComment({
      stage: values.stage,
      planText: existsSync(values.plan) ? readFileSync(values.plan, 'utf8') : undefined,
      exitCode: Number.isNaN(exitCode) ? 1 : exitCode,
      kind: values.kind,
      runUrl: values['run-url'],
      commit: values.commit,
      artifact: values.artifact,
      planJson: readPlanJson(values['plan-json']),
      caution: values.caution || undefined,
    }) + '\n',
  );
}

if (require.main === module) main();
