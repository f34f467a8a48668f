import type { TerraformJson } from '../synth/output';
import { GITHUB_COMMENT_LIMIT } from './plan-comment';

/**
 * Compares two synths, stack by stack and resource by resource, without credentials or state: what a reviewer
 * reads beside the plans. Pure functions; scripts/diff.ts does the git worktree and the synths.
 */

interface ChangedResource {
  readonly address: string;
  /** Attribute paths that differ, e.g. `tags.owner`, `policy{Statement.0.Action}` (inside a JSON string). */
  readonly attributes: readonly string[];
}

interface Move {
  readonly from: string;
  readonly to: string;
}

interface StackDiff {
  readonly stack: string;
  /** `added`/`removed`: the whole stack is new or gone. */
  readonly status: 'added' | 'removed' | 'changed' | 'unchanged';
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Resources the head's `moved` blocks rename: the same resource (and state) at a new address; a change to one is in `changed`, by its new address. */
  readonly moved: readonly Move[];
  readonly changed: readonly ChangedResource[];
  /** Resources whose only differences were noise (asset hashes and paths), folded away. */
  readonly noiseOnly: readonly string[];
}

/** Attributes that change with every build of an asset, not with what is deployed. */
const NOISE_KEYS = new Set(['source_code_hash', 'source_hash', 'filename', 'etag', 'output_base64sha256', 'output_md5']);

/** True if a difference at this path (last key) between these values is build noise. */
function isNoise(path: readonly string[], before: unknown, after: unknown): boolean {
  const key = path[path.length - 1];
  if (key !== undefined && NOISE_KEYS.has(key)) return true;
  const isAsset = (value: unknown) => typeof value === 'string' && /(^|\/)assets\//.test(value);
  return isAsset(before) && isAsset(after);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseJsonObject(value: unknown): unknown {
  if (typeof value !== 'string' || !/^\s*[[{]/.test(value)) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function render(path: readonly string[]): string {
  return path.join('.');
}

/** Paths (outside cdktf's `//` metadata) where two values differ; JSON strings (policies, ASL) are compared inside. */
export function changedAttributes(before: unknown, after: unknown, path: readonly string[] = []): { real: string[]; noise: string[] } {
  const out = { real: [] as string[], noise: [] as string[] };
  const visit = (a: unknown, b: unknown, at: readonly string[], shown: string): void => {
    if (at[at.length - 1] === '//') return;
    if (isObject(a) && isObject(b)) {
      for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
        if (key === '//') continue;
        visit(a[key], b[key], [...at, key], shown ? `${shown}.${key}` : key);
      }
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++) visit(a[i], b[i], [...at, String(i)], `${shown}.${i}`);
      return;
    }
    if (JSON.stringify(a) === JSON.stringify(b)) return;
    const [innerA, innerB] = [parseJsonObject(a), parseJsonObject(b)];
    if (innerA !== undefined && innerB !== undefined) {
      const inner = changedAttributes(innerA, innerB);
      out.real.push(...inner.real.map((p) => `${shown}{${p}}`));
      out.noise.push(...inner.noise.map((p) => `${shown}{${p}}`));
      return;
    }
    (isNoise(at, a, b) ? out.noise : out.real).push(shown);
  };
  visit(before, after, path, render(path));
  return out;
}

/** Every resource and data source of a stack by Terraform address, and its providers, outputs and terraform block. */
function blocksOf(json: TerraformJson | undefined): Map<string, Record<string, unknown>> {
  const blocks = new Map<string, Record<string, unknown>>();
  for (const [prefix, section] of [
    ['', json?.resource],
    ['data.', json?.data],
  ] as const) {
    for (const [type, byName] of Object.entries(section ?? {})) {
      for (const [name, body] of Object.entries(byName)) blocks.set(`${prefix}${type}.${name}`, body);
    }
  }
  // Not resources, but a reviewer wants them too: provider settings (default tags, allowed accounts), outputs, backend.
  for (const [name, configs] of Object.entries(json?.provider ?? {}))
    configs.forEach((body, i) => blocks.set(`provider.${name}${configs.length > 1 ? `[${i}]` : ''}`, body));
  for (const [name, body] of Object.entries(json?.output ?? {})) blocks.set(`output.${name}`, body as Record<string, unknown>);
  if (json?.terraform) blocks.set('terraform', json.terraform as Record<string, unknown>);
  return blocks;
}

/** The head's `moved` blocks that rename a resource of the base to one of the head. */
function movesBetween(before: ReadonlyMap<string, unknown>, after: ReadonlyMap<string, unknown>, head: TerraformJson | undefined): Move[] {
  return (head?.moved ?? [])
    .filter(({ from, to }) => before.has(from) && !before.has(to) && after.has(to) && !after.has(from))
    .map(({ from, to }) => ({ from, to }))
    .sort((a, b) => a.to.localeCompare(b.to));
}

/** The base's blocks as the head names them: moved resources at their new address, and references to them renamed. */
function renamedByMoves(blocks: Map<string, Record<string, unknown>>, moves: readonly Move[]): Map<string, Record<string, unknown>> {
  if (moves.length === 0) return blocks;
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // A whole address only: not a longer name it begins, not the same name under `data.`.
  const pattern = new RegExp(`(?<![\\w.-])(${moves.map((m) => escape(m.from)).join('|')})(?![\\w-])`, 'g');
  const to = new Map(moves.map((m) => [m.from, m.to]));
  const renamed = new Map<string, Record<string, unknown>>();
  for (const [address, body] of blocks) {
    const text = JSON.stringify(body).replace(pattern, (from) => to.get(from)!);
    renamed.set(to.get(address) ?? address, JSON.parse(text) as Record<string, unknown>);
  }
  return renamed;
}

export function diffStack(stack: string, base: TerraformJson | undefined, head: TerraformJson | undefined): StackDiff {
  const after = blocksOf(head);
  const asBase = blocksOf(base);
  const moved = movesBetween(asBase, after, head);
  const before = renamedByMoves(asBase, moved);
  const added = [...after.keys()].filter((a) => !before.has(a)).sort();
  const removed = [...before.keys()].filter((a) => !after.has(a)).sort();
  const changed: ChangedResource[] = [];
  const noiseOnly: string[] = [];
  for (const address of [...after.keys()].filter((a) => before.has(a)).sort()) {
    const { real, noise } = changedAttributes(before.get(address), after.get(address));
    if (real.length > 0) changed.push({ address, attributes: real });
    else if (noise.length > 0) noiseOnly.push(address);
  }
  const differences = added.length + removed.length + moved.length + changed.length;
  const status = base === undefined ? 'added' : head === undefined ? 'removed' : differences > 0 ? 'changed' : 'unchanged';
  return { stack, status, added, removed, moved, changed, noiseOnly };
}

/** One StackDiff per stack in either synth, in the head's order, then stacks only the base had. */
export function diffSynths(base: ReadonlyMap<string, TerraformJson>, head: ReadonlyMap<string, TerraformJson>): StackDiff[] {
  const names = [...head.keys(), ...[...base.keys()].filter((name) => !head.has(name))];
  return names.map((name) => diffStack(name, base.get(name), head.get(name)));
}

function headline(diff: StackDiff): string {
  const moved = diff.moved.length > 0 ? `, ${diff.moved.length} moved` : '';
  const counts = `${diff.added.length} added, ${diff.removed.length} removed, ${diff.changed.length} changed${moved}`;
  switch (diff.status) {
    case 'added':
      return `${diff.stack}: new stack — ${counts}`;
    case 'removed':
      return `${diff.stack}: stack removed — ${counts}`;
    case 'unchanged':
      return `${diff.stack}: no change`;
    case 'changed':
      return `${diff.stack}: ${counts}`;
  }
}

function noiseLine(diff: StackDiff): string | undefined {
  return diff.noiseOnly.length > 0 ? `(${diff.noiseOnly.length} resource(s) differ only in asset hashes/paths: folded)` : undefined;
}

export function formatDiffText(diffs: readonly StackDiff[], baseRef: string): string {
  const lines = [`synth diff against ${baseRef}`];
  for (const diff of diffs) {
    lines.push('', headline(diff));
    for (const address of diff.added) lines.push(`  + ${address}`);
    for (const address of diff.removed) lines.push(`  - ${address}`);
    for (const { from, to } of diff.moved) lines.push(`  > ${from} → ${to}`);
    for (const { address, attributes } of diff.changed) lines.push(`  ~ ${address}`, ...attributes.map((a) => `      ${a}`));
    const noise = noiseLine(diff);
    if (noise) lines.push(`  ${noise}`);
  }
  return lines.join('\n');
}

export const DIFF_MARKER = '<!-- sluice-diff -->';

/** The pull-request comment: one section per stack, cut to GitHub's limit (whole lines, with a note). */
export function formatDiffMarkdown(diffs: readonly StackDiff[], baseRef: string, limit = GITHUB_COMMENT_LIMIT): string {
  const changedStacks = diffs.filter((d) => d.status !== 'unchanged').length;
  const header = [
    DIFF_MARKER,
    `### 🔎 synth diff against \`${baseRef}\`: ${changedStacks === 0 ? 'no stack changes' : `${changedStacks} stack(s) change`}`,
    '',
    'Resources added (+), removed (-), moved (>) and changed (~) with the changed attributes, from the synthesized Terraform alone (no state, no credentials). Asset hashes and paths are folded.',
  ];
  const body: string[] = [];
  for (const diff of diffs) {
    body.push('', `#### ${headline(diff)}`);
    if (diff.status === 'unchanged' && diff.noiseOnly.length === 0) continue;
    const items = [
      ...diff.added.map((a) => `+ ${a}`),
      ...diff.removed.map((a) => `- ${a}`),
      ...diff.moved.map(({ from, to }) => `> ${from} → ${to}`),
      ...diff.changed.flatMap(({ address, attributes }) => [`~ ${address}`, ...attributes.map((a) => `    ${a}`)]),
    ];
    if (items.length > 0) body.push('', '```diff', ...items, '```');
    const noise = noiseLine(diff);
    if (noise) body.push('', noise);
  }
  let text = [...header, ...body].join('\n');
  if (text.length <= limit) return text;
  const note = "\n\n… cut to fit GitHub's comment limit; run `npm run diff -- --base <ref>` for all of it.";
  const closeFence = '\n```';
  text = text.slice(0, limit - note.length - closeFence.length);
  text = text.slice(0, text.lastIndexOf('\n')); // whole lines only
  const insideFence = (text.match(/^```/gm) ?? []).length % 2 === 1;
  return text + (insideFence ? closeFence : '') + note;
}
