/**
 * A Terraform plan as a reviewer reads it, from `terraform show -json tfplan`: per resource what happens and why — a
 * replacement with the attributes that force it, not "destroy" — the attributes that change, IAM documents statement
 * by statement, the state machine's definition state by state. The text of `terraform plan` shows a JSON attribute
 * as a whole string removed and added; here only what differs inside it is named.
 */

/** The parts of Terraform's JSON plan representation (format 1.x) read here. */
export interface PlanJson {
  readonly format_version?: string;
  readonly resource_changes?: readonly ResourceChange[];
  readonly output_changes?: Readonly<Record<string, Change>>;
}

interface Change {
  readonly actions: readonly string[];
  readonly before?: unknown;
  readonly after?: unknown;
  readonly after_unknown?: unknown;
  readonly before_sensitive?: unknown;
  readonly after_sensitive?: unknown;
  readonly replace_paths?: ReadonlyArray<ReadonlyArray<string | number>>;
  /** Present when the resource is imported by this plan. */
  readonly importing?: unknown;
}

interface ResourceChange {
  readonly address: string;
  readonly mode: 'managed' | 'data';
  readonly type: string;
  readonly change: Change;
  readonly action_reason?: string;
}

export type Verb = 'create' | 'update' | 'replace' | 'delete' | 'read' | 'import' | 'forget' | 'no-op';

export interface ReviewedChange {
  readonly address: string;
  readonly type: string;
  readonly verb: Verb;
  /** Why, in words: what forces a replacement, why something goes, what a sluice resource's change means. */
  readonly why: readonly string[];
  /** What changes, one line per attribute (or statement, or state). */
  readonly changes: readonly string[];
  /** Whether data or running work can be lost: a real delete, or the replacement of something that holds data. */
  readonly destructive: boolean;
}

export interface PlanReview {
  readonly counts: Readonly<Record<Exclude<Verb, 'no-op'>, number>>;
  readonly changes: readonly ReviewedChange[];
  readonly outputs: readonly string[];
}

/** The verb of a change's actions; an unknown combination is an error (the comment then falls back to the plan's text). */
export function verbOf(actions: readonly string[]): Exclude<Verb, 'import'> {
  const key = (actions ?? []).join(',');
  if (key === 'create' || key === 'update' || key === 'delete' || key === 'read' || key === 'forget' || key === 'no-op') return key;
  if (key === 'delete,create' || key === 'create,delete') return 'replace';
  throw new Error(`unknown plan actions ${JSON.stringify(actions)}`);
}

/** Types whose replacement or deletion takes data or queued work with it. */
const HOLDS_DATA = new Set(['aws_s3_bucket', 'aws_dynamodb_table', 'aws_sqs_queue', 'aws_cloudwatch_log_group', 'aws_ecr_repository']);

/** String attributes that hold a JSON document (diffed inside, not as one string). */
const JSON_ATTRIBUTES = new Set(['policy', 'assume_role_policy', 'definition', 'container_definitions', 'event_pattern', 'dashboard_body', 'input']);

/** Attributes a plan always recomputes and a reviewer need not read. */
const NOISE = new Set(['tags_all', 'source_code_hash', 'last_modified', 'revision', 'version']);

const REASONS: Readonly<Record<string, string>> = {
  replace_because_cannot_update: 'an attribute that cannot change in place changes',
  replace_because_tainted: 'tainted by a failed apply',
  replace_by_request: 'replaced on request (-replace)',
  replace_by_triggers: 'replaced because a replace_triggered_by reference changed',
  delete_because_no_resource_config: 'no longer in the configuration',
  delete_because_no_module: 'its module is no longer in the configuration',
  delete_because_wrong_repetition: 'its count or for_each changed kind',
  delete_because_count_index: 'its count index is out of range',
  delete_because_each_key: 'its for_each key is gone',
  delete_because_no_move_target: 'a moved block points at an address that is not in the configuration',
  read_because_config_unknown: 'read at apply: its configuration depends on values known then',
  read_because_dependency_pending: 'read at apply: it depends on a change',
  read_because_check_nested: 'read for a check block',
};

export function reviewPlan(plan: PlanJson): PlanReview {
  const counts = { create: 0, update: 0, replace: 0, delete: 0, read: 0, import: 0, forget: 0 };
  const changes: ReviewedChange[] = [];
  for (const resource of plan.resource_changes ?? []) {
    const acted = verbOf(resource.change.actions);
    const verb = acted === 'no-op' && resource.change.importing ? 'import' : acted;
    if (verb === 'no-op') continue;
    counts[verb]++;
    changes.push(reviewResource(resource, verb));
  }
  const outputs = Object.entries(plan.output_changes ?? {})
    .filter(([, change]) => verbOf(change.actions) !== 'no-op')
    .map(([name, change]) =>
      isSensitive(change.before_sensitive, []) || isSensitive(change.after_sensitive, [])
        ? `${name}: (sensitive)`
        : `${name}: ${describeValueChange(change.before, change.after, unknownAt(change.after_unknown, []))}`,
    );
  return { counts, changes, outputs };
}

function reviewResource(resource: ResourceChange, verb: Verb): ReviewedChange {
  const { change, type } = resource;
  const before = (change.before ?? {}) as Record<string, unknown>;
  const after = (change.after ?? {}) as Record<string, unknown>;
  const why: string[] = [];
  if (resource.action_reason && REASONS[resource.action_reason]) why.push(REASONS[resource.action_reason]);
  const kept = before.skip_destroy === true || after.skip_destroy === true;
  if (verb === 'replace') {
    const forcing = (change.replace_paths ?? []).map((path) => path.join('.'));
    if (forcing.length > 0) why.push(`${forcing.join(', ')} cannot change in place`);
    if (type === 'aws_ecs_task_definition' && kept)
      why.push('a new revision; the old one stays registered (skip_destroy), for executions still retrying with it');
    if (type === 'aws_lambda_invocation') why.push('the function is invoked again (configure-pool: the pool is seeded from the new configuration)');
  }
  if (verb === 'delete' && kept) why.push('only forgotten: it stays in AWS (skip_destroy)');
  if (verb === 'forget') why.push('removed from the state only: it stays in AWS (a removed block)');
  if (verb === 'import') why.push('imported into the state');
  const changes = verb === 'update' || verb === 'replace' ? attributeChanges(before, after, change) : [];
  const destructive = (verb === 'delete' && !kept) || (verb === 'replace' && HOLDS_DATA.has(type));
  return { address: resource.address, type, verb, why, changes, destructive };
}

/** One line per changed attribute; JSON documents diffed inside; sensitive values never shown. */
function attributeChanges(before: Record<string, unknown>, after: Record<string, unknown>, change: Change): string[] {
  const lines: string[] = [];
  for (const key of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    if (NOISE.has(key)) continue;
    const unknown = unknownAt(change.after_unknown, [key]);
    if (!unknown && equal(before[key], after[key])) continue;
    if (isSensitive(change.before_sensitive, [key]) || isSensitive(change.after_sensitive, [key])) {
      lines.push(`${key}: (sensitive value changes)`);
      continue;
    }
    if (JSON_ATTRIBUTES.has(key) && typeof before[key] === 'string' && typeof after[key] === 'string') {
      lines.push(...jsonDocumentChanges(key, String(before[key]), String(after[key])));
      continue;
    }
    if (unknown && JSON_ATTRIBUTES.has(key)) {
      lines.push(`${key}: known after apply (it names a value this apply changes)`);
      continue;
    }
    lines.push(
      ...leafChanges(
        key,
        before[key],
        after[key],
        subtree(change.after_unknown, key),
        subtree(change.before_sensitive, key),
        subtree(change.after_sensitive, key),
      ),
    );
  }
  return lines;
}

function subtree(mask: unknown, key: string | number): unknown {
  if (mask === true) return true;
  if (Array.isArray(mask) && typeof key === 'number') return mask[key];
  return isObject(mask) ? mask[String(key)] : undefined;
}

/**
 * Paths under `path` whose values differ, `a → b`; a nested object is walked, a long list said in one line. The masks
 * (`after_unknown`, `*_sensitive`) are walked with the values: a nested unknown is "known after apply", not a removal.
 */
function leafChanges(path: string, before: unknown, after: unknown, unknown: unknown, beforeSensitive?: unknown, afterSensitive?: unknown): string[] {
  if (beforeSensitive === true || afterSensitive === true) return [`${path}: (sensitive value changes)`];
  if (unknown === true) return [`${path}: ${short(before)} → (known after apply)`];
  if (isObject(before) && isObject(after)) {
    return [...new Set([...Object.keys(before), ...Object.keys(after)])]
      .sort()
      .filter((k) => !equal(before[k], after[k]) || subtree(unknown, k) === true)
      .flatMap((k) => leafChanges(`${path}.${k}`, before[k], after[k], subtree(unknown, k), subtree(beforeSensitive, k), subtree(afterSensitive, k)));
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length && before.length <= 8) {
    return before.flatMap((item, i) =>
      equal(item, after[i]) && subtree(unknown, i) !== true
        ? []
        : leafChanges(`${path}[${i}]`, item, after[i], subtree(unknown, i), subtree(beforeSensitive, i), subtree(afterSensitive, i)),
    );
  }
  if (isSensitive(beforeSensitive, []) || isSensitive(afterSensitive, [])) return [`${path}: (sensitive value changes)`];
  return [`${path}: ${describeValueChange(before, after, false)}`];
}

/** Whether a sensitivity mask marks `path`, or anything under it, as sensitive. */
function isSensitive(mask: unknown, path: readonly (string | number)[]): boolean {
  let node = mask;
  for (const part of path) {
    if (node === true) return true;
    node = subtree(node, part);
  }
  return containsTrue(node);
}

function containsTrue(node: unknown): boolean {
  if (node === true) return true;
  if (Array.isArray(node)) return node.some(containsTrue);
  return isObject(node) && Object.values(node).some(containsTrue);
}

function describeValueChange(before: unknown, after: unknown, unknown: boolean): string {
  if (unknown) return `${short(before)} → (known after apply)`;
  if (before === undefined || before === null) return `(none) → ${short(after)}`;
  if (after === undefined || after === null) return `${short(before)} → (none)`;
  return `${short(before)} → ${short(after)}`;
}

function short(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (text === undefined) return '(none)';
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

/** A JSON attribute: an IAM document statement by statement, a state machine state by state, anything else by path. */
function jsonDocumentChanges(key: string, beforeText: string, afterText: string): string[] {
  let before: unknown;
  let after: unknown;
  try {
    before = JSON.parse(beforeText);
    after = JSON.parse(afterText);
  } catch {
    return [`${key}: ${describeValueChange(beforeText, afterText, false)}`];
  }
  if (equal(before, after)) return [`${key}: same document, reformatted`];
  if (isPolicy(before) || isPolicy(after)) return statementChanges(key, before, after);
  if (isObject(before) && isObject(after) && isObject(before.States) && isObject(after.States)) return stateChanges(key, before, after);
  return leafChanges(key, before, after, undefined);
}

function isPolicy(value: unknown): value is { Statement: unknown } {
  return isObject(value) && 'Statement' in value;
}

function statementChanges(key: string, before: unknown, after: unknown): string[] {
  const byId = (document: unknown) => {
    const statements = isPolicy(document) ? [document.Statement].flat() : [];
    return new Map(statements.map((s, i) => [isObject(s) && typeof s.Sid === 'string' ? s.Sid : `#${i}`, s]));
  };
  const was = byId(before);
  const is = byId(after);
  const lines: string[] = [];
  for (const [id, statement] of is) {
    if (!was.has(id)) lines.push(`${key}: + statement ${id}: ${short(statement)}`);
    else if (!equal(was.get(id), statement)) lines.push(...leafChanges(`${key}: statement ${id}`, was.get(id), statement, undefined));
  }
  for (const [id, statement] of was) if (!is.has(id)) lines.push(`${key}: - statement ${id}: ${short(statement)}`);
  return lines;
}

/** Every state of a definition, nested ones (Map, Parallel) by their path. */
function statesOf(definition: Record<string, unknown>, prefix = ''): Map<string, Record<string, unknown>> {
  const states = new Map<string, Record<string, unknown>>();
  for (const [name, state] of Object.entries((definition.States ?? {}) as Record<string, unknown>)) {
    if (!isObject(state)) continue;
    const path = `${prefix}${name}`;
    const { ItemProcessor, Iterator, Branches, ...own } = state;
    states.set(path, own);
    for (const inner of [ItemProcessor, Iterator].filter(isObject)) for (const [p, s] of statesOf(inner, `${path}/`)) states.set(p, s);
    if (Array.isArray(Branches)) Branches.filter(isObject).forEach((b, i) => statesOf(b, `${path}[${i}]/`).forEach((s, p) => states.set(p, s)));
  }
  return states;
}

function stateChanges(key: string, before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const was = statesOf(before);
  const is = statesOf(after);
  const lines: string[] = [];
  for (const field of ['StartAt', 'TimeoutSeconds', 'Comment'])
    if (!equal(before[field], after[field])) lines.push(`${key}: ${field}: ${describeValueChange(before[field], after[field], false)}`);
  for (const [name, state] of is) {
    if (!was.has(name)) lines.push(`${key}: + state ${name} (${String(state.Type)})`);
    else if (!equal(was.get(name), state)) lines.push(...leafChanges(`${key}: state ${name}`, was.get(name), state, undefined));
  }
  for (const [name, state] of was) if (!is.has(name)) lines.push(`${key}: - state ${name} (${String(state.Type)})`);
  return lines;
}

/** Whether `after_unknown` marks `path` (or all of it) as known only after apply. */
function unknownAt(afterUnknown: unknown, path: readonly string[]): boolean {
  let node = afterUnknown;
  for (const part of path) {
    if (node === true) return true;
    if (!isObject(node)) return false;
    node = node[part];
  }
  return node === true;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (isObject(value))
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sorted(value[k])]),
    );
  return value;
}

const SYMBOL: Readonly<Record<Exclude<Verb, 'no-op'>, string>> = {
  create: '+',
  update: '~',
  replace: '±',
  delete: '−',
  read: '⇣',
  import: '⇢',
  forget: '∅',
};

/**
 * Text from a plan, safe in a Markdown table cell: a pull request chooses resource keys and values, so nothing in them
 * may open a tag, a link, a mention, a code span or a new line. Every character Markdown or HTML could read as syntax
 * becomes an HTML entity.
 */
export function markdownText(text: string): string {
  return text.replace(/[\r\n\u2028\u2029]+/g, ' ').replace(/[&<>"'`|\\[\]!@*_~#=+\-:(){}]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Markdown for the review (a table, then the outputs), within `budget` characters: what does not fit is counted. */
export function formatReview(review: PlanReview, budget: number): string {
  const rows = review.changes.map((c) => {
    const what = [...c.why, ...c.changes].map(markdownText);
    return `| ${SYMBOL[c.verb as Exclude<Verb, 'no-op'>]} ${c.verb}${c.destructive ? ' ⚠️' : ''} | ${markdownText(c.address)} | ${what.join('<br>') || '&nbsp;'} |`;
  });
  const outputs = review.outputs.length > 0 ? `\n\nOutputs: ${review.outputs.map(markdownText).join('; ')}` : '';
  const parts = ['| | resource | what changes, and why |', '| --- | --- | --- |'];
  let used = parts.join('\n').length + Math.min(outputs.length, budget / 4) + 100;
  let hidden = 0;
  for (const row of rows) {
    if (used + row.length + 1 > budget) {
      hidden++;
      continue;
    }
    parts.push(row);
    used += row.length + 1;
  }
  if (hidden > 0) parts.push('', `… ${hidden} more change(s) did not fit: see the full plan.`);
  return parts.join('\n') + (outputs.length <= budget / 4 ? outputs : '\n\nOutputs change: see the full plan.');
}
