/**
 * CDK Terrain, the maintained fork of CDKTF (archived 2025-12-10), as a variant of this project that is derived,
 * never hand-kept: the same sources with their imports rewritten (IMPORT_REWRITES), the same package.json with
 * the CDK packages swapped (PACKAGE_SWAPS), and that variant's own lockfile, committed in variants/cdk-terrain/.
 * Everything that differs between the two flavours is in this file.
 */
import { changedAttributes } from './stack-diff';
import type { TerraformJson } from '../synth/output';

/** The CDKTF packages and what replaces each in CDK Terrain, exact versions (constructs: cdktn's peer range ≥ 10.6 < 10.8). */
export const PACKAGE_SWAPS: Record<string, { readonly name: string; readonly version: string }> = {
  cdktf: { name: 'cdktn', version: '0.24.0' },
  'cdktf-cli': { name: 'cdktn-cli', version: '0.24.0' },
  '@cdktf/provider-aws': { name: '@cdktn/provider-aws', version: '25.7.0' },
  constructs: { name: 'constructs', version: '10.7.2' },
};

/** Module specifiers, as written in an import: `cdktf`, `cdktf/lib/…`, `@cdktf/provider-aws/lib/…`. */
const IMPORT_REWRITES: ReadonlyArray<readonly [RegExp, string]> = [
  [/(['"])cdktf(['"/])/g, '$1cdktn$2'],
  [/(['"])@cdktf\/provider-aws(['"/])/g, '$1@cdktn/provider-aws$2'],
];
/** An import or require of a CDKTF module, after the rewrite: none may be left. */
const CDKTF_SPECIFIER = /(from\s+|require\(\s*|import\(\s*)(['"])(cdktf|@cdktf\/[^'"]+)(['"/])/;

/** The files the rewrite reads: sources, by extension. */
export const SOURCE_FILE = /\.(ts|mts|cts|js|mjs|cjs)$/;
/** The files that describe the rewrite: they name both flavours' packages on purpose and are copied as they are. */
export const NOT_REWRITTEN = new Set(['scripts/cdk-terrain.ts', 'scripts/check-cdk-terrain.ts', '__tests__/scripts/cdk-terrain.test.ts']);

/** The attribute the two flavours differ in: the AWS provider's version constraint. */
export const PROVIDER_VERSION_PATH = 'terraform.required_providers.aws.version';
/** And how they spell its source: `aws` and `hashicorp/aws` are one provider (registry.terraform.io/hashicorp/aws). */
export const PROVIDER_SOURCE_PATH = 'terraform.required_providers.aws.source';

function fullSource(source: string): string {
  return source.includes('/') ? source.replace(/^registry\.terraform\.io\//, '') : `hashicorp/${source}`;
}

type PackageJson = { dependencies?: Record<string, string>; devDependencies?: Record<string, string>; [key: string]: unknown };

/** The variant's package.json: this one with each CDKTF package replaced by its CDK Terrain counterpart. */
export function variantPackageJson(original: PackageJson): PackageJson {
  const swap = (deps: Record<string, string> | undefined) => {
    if (!deps) return deps;
    const out: Record<string, string> = {};
    for (const [name, version] of Object.entries(deps)) {
      const replacement = PACKAGE_SWAPS[name];
      if (replacement) out[replacement.name] = replacement.version;
      else out[name] = version;
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
  };
  const missing = Object.keys(PACKAGE_SWAPS).filter((name) => !original.dependencies?.[name] && !original.devDependencies?.[name]);
  if (missing.length > 0) throw new Error(`package.json no longer depends on ${missing.join(', ')}: update PACKAGE_SWAPS in scripts/cdk-terrain.ts`);
  return { ...original, dependencies: swap(original.dependencies), devDependencies: swap(original.devDependencies) };
}

/** A source file with its CDKTF imports pointed at CDK Terrain; throws if a CDKTF specifier is left over. */
export function rewriteImports(file: string, source: string): string {
  let out = source;
  for (const [pattern, replacement] of IMPORT_REWRITES) out = out.replace(pattern, replacement);
  const left = out.match(CDKTF_SPECIFIER);
  if (left) throw new Error(`${file}: an import of ${left[3]} that scripts/cdk-terrain.ts cannot rewrite`);
  return out;
}

interface FlavourDifference {
  readonly stack: string;
  /** The AWS provider each flavour synthesizes (source and version), when they differ: the expected difference. */
  readonly provider?: { readonly cdktf: string; readonly cdkTerrain: string };
  /** Anything else: stacks present in one flavour only, or attribute paths that differ. Must be empty. */
  readonly unexpected: readonly string[];
}

/** Stack by stack: what the CDK Terrain synthesis changes against the CDKTF one (`//` metadata is not compared). */
export function compareFlavours(cdktf: ReadonlyMap<string, TerraformJson>, cdkTerrain: ReadonlyMap<string, TerraformJson>): FlavourDifference[] {
  const names = [...new Set([...cdktf.keys(), ...cdkTerrain.keys()])].sort();
  return names.map((stack) => {
    const a = cdktf.get(stack);
    const b = cdkTerrain.get(stack);
    if (!a || !b) return { stack, unexpected: [`only synthesized by ${a ? 'CDKTF' : 'CDK Terrain'}`] };
    const { real, noise } = changedAttributes(a, b);
    const aws = (json: TerraformJson) => (json.terraform.required_providers as Record<string, { source?: string; version?: string }> | undefined)?.aws ?? {};
    const sameProvider = fullSource(String(aws(a).source)) === fullSource(String(aws(b).source));
    const expected = new Set([PROVIDER_VERSION_PATH, ...(sameProvider ? [PROVIDER_SOURCE_PATH] : [])]);
    const unexpected = [...real, ...noise].filter((path) => !expected.has(path));
    const spelled = (json: TerraformJson) => `${String(aws(json).source)} ${String(aws(json).version)}`;
    const provider = real.some((path) => expected.has(path)) ? { cdktf: spelled(a), cdkTerrain: spelled(b) } : undefined;
    return { stack, provider, unexpected };
  });
}

export function formatFlavourDifferences(differences: readonly FlavourDifference[]): string {
  return differences
    .map((d) => {
      const provider = d.provider ? `provider ${d.provider.cdktf} → ${d.provider.cdkTerrain}` : 'provider unchanged';
      const rest = d.unexpected.length === 0 ? 'nothing else differs' : `ALSO DIFFERS:\n${d.unexpected.map((p) => `      ${p}`).join('\n')}`;
      return `  ${d.stack}: ${provider}; ${rest}`;
    })
    .join('\n');
}
