import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The part of a synthesized `cdk.tf.json` the scripts and tests read. */
export interface TerraformJson {
  terraform: { backend?: Record<string, Record<string, unknown>>; required_providers?: Record<string, unknown> };
  provider?: Record<string, Array<Record<string, unknown>>>;
  resource?: Record<string, Record<string, Record<string, unknown>>>;
  data?: Record<string, Record<string, Record<string, unknown>>>;
  output?: Record<string, { value: unknown; description?: string }>;
  /** Terraform `moved` blocks: a resource now at `to` was at `from` (its state moves with it). */
  moved?: Array<{ from: string; to: string }>;
}

interface SynthesizedStack {
  readonly name: string;
  readonly path: string;
  readonly json: TerraformJson;
}

/** Reads every stack of the last synth, as listed by cdktf's manifest (so stale folders are ignored). */
export function readSynthesizedStacks(outdir = 'cdktf.out'): SynthesizedStack[] {
  const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')) as {
    stacks: Record<string, { name: string; synthesizedStackPath: string }>;
  };
  return Object.values(manifest.stacks).map((stack) => {
    const path = join(outdir, stack.synthesizedStackPath);
    return { name: stack.name, path, json: JSON.parse(readFileSync(path, 'utf8')) as TerraformJson };
  });
}

/** All resources of one Terraform type, by their logical name. */
export function resourcesOf(json: TerraformJson, type: string): Array<[string, Record<string, unknown>]> {
  return Object.entries(json.resource?.[type] ?? {});
}

/** Resource counts by Terraform type, sorted by type. */
export function resourceCounts(json: TerraformJson): Array<[string, number]> {
  return Object.entries(json.resource ?? {})
    .map(([type, byName]) => [type, Object.keys(byName).length] as [string, number])
    .sort(([a], [b]) => a.localeCompare(b));
}

/**
 * Replaces Terraform interpolations `${type.name.attribute}` with concrete values, the way apply would,
 * so policies and definitions can be evaluated by local engines.
 */
export function resolveReferences(
  text: string,
  json: TerraformJson,
  resolve: (type: string, name: string, attribute: string, resource: Record<string, unknown>, json: TerraformJson) => string | undefined = () => undefined,
): string {
  return text.replace(/\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)\}/g, (whole, type: string, name: string, attribute: string) => {
    const resource = json.resource?.[type]?.[name];
    if (!resource) return whole;
    const custom = resolve(type, name, attribute, resource, json);
    if (custom !== undefined) return custom;
    if (attribute in resource && typeof resource[attribute] === 'string') return resource[attribute] as string;
    if (type === 'aws_s3_bucket' && attribute === 'arn') return `arn:aws:s3:::${String(resource.bucket)}`;
    return `${type}.${name}.${attribute}`;
  });
}
