import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  compareFlavours,
  NOT_REWRITTEN,
  PACKAGE_SWAPS,
  PROVIDER_SOURCE_PATH,
  PROVIDER_VERSION_PATH,
  rewriteImports,
  SOURCE_FILE,
  variantPackageJson,
} from '../../scripts/cdk-terrain';
import type { TerraformJson } from '../../synth/output';

const ROOT = join(__dirname, '..', '..');
/** Installed, built or scratch output, not the project's sources. */
const GENERATED = /(^|\/)(node_modules|cdktf\.out|dist|\.gen|coverage|sim-out|\.probe|bootstrap-state)(\/|$)/;
const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
/** In the variant's own scratch copy (npm run check:cdk-terrain runs this suite there) package.json is the variant's. */
const inVariant = Boolean(packageJson.dependencies?.cdktn);

describe('the CDK Terrain variant, derived from this project', () => {
  test('package.json: each CDKTF package swapped for its CDK Terrain counterpart at an exact version, nothing else touched', () => {
    const original = {
      name: 'x',
      scripts: { test: 'jest' },
      dependencies: { cdktf: '0.21.0', constructs: '10.4.2', zod: '4.0.0' },
      devDependencies: { 'cdktf-cli': '0.21.0', '@cdktf/provider-aws': '21.22.1' },
    };
    expect(variantPackageJson(original)).toEqual({
      name: 'x',
      scripts: { test: 'jest' },
      dependencies: { cdktn: '0.24.0', constructs: '10.7.2', zod: '4.0.0' },
      devDependencies: { '@cdktn/provider-aws': '25.7.0', 'cdktn-cli': '0.24.0' },
    });
    const { cdktf: _dropped, ...rest } = original.dependencies;
    expect(() => variantPackageJson({ ...original, dependencies: rest })).toThrow(/no longer depends on cdktf: update PACKAGE_SWAPS/);
  });

  (inVariant ? test.skip : test)('the committed variants/cdk-terrain/package.json is what package.json derives (re-lock after a dependency change)', () => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'variants', 'cdk-terrain', 'package.json'), 'utf8'));
    expect(committed).toEqual(variantPackageJson(packageJson));
    const lock = JSON.parse(readFileSync(join(ROOT, 'variants', 'cdk-terrain', 'package-lock.json'), 'utf8'));
    for (const { name, version } of Object.values(PACKAGE_SWAPS)) expect(lock.packages[`node_modules/${name}`]?.version).toBe(version);
  });

  test('imports: cdktf, its subpaths and the AWS provider are rewritten; other mentions of cdktf are left alone', () => {
    const source = [
      "import { App, TerraformStack } from 'cdktf';",
      "import type {} from 'cdktf/lib/testing/adapters/jest';",
      "import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket';",
      'const { Testing } = require("cdktf");',
      "const outdir = join('cdktf.out', 'stacks'); // cdktf 0.21's S3Backend",
    ].join('\n');
    expect(rewriteImports('a.ts', source)).toBe(
      [
        "import { App, TerraformStack } from 'cdktn';",
        "import type {} from 'cdktn/lib/testing/adapters/jest';",
        "import { S3Bucket } from '@cdktn/provider-aws/lib/s3-bucket';",
        'const { Testing } = require("cdktn");',
        "const outdir = join('cdktf.out', 'stacks'); // cdktf 0.21's S3Backend",
      ].join('\n'),
    );
  });

  test('an import the rewrite does not know is an error, not a half-converted file', () => {
    expect(() => rewriteImports('modules/x.ts', "import { Provider } from '@cdktf/provider-null/lib/provider';")).toThrow(
      'modules/x.ts: an import of @cdktf/provider-null/lib/provider that scripts/cdk-terrain.ts cannot rewrite',
    );
  });

  test("every source file of this project converts (the check's scratch copy would)", () => {
    // Walked, not listed by git: the check's scratch copy, where this suite runs too, is no git checkout.
    const files = (readdirSync(ROOT, { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => SOURCE_FILE.test(f) && !GENERATED.test(f));
    expect(files.length).toBeGreaterThan(50);
    let converted = 0;
    for (const file of files.filter((f) => !NOT_REWRITTEN.has(f))) {
      const source = readFileSync(join(ROOT, file), 'utf8');
      if (rewriteImports(file, source) !== source) converted++;
    }
    // In the variant itself every import is already on cdktn.
    if (inVariant) expect(converted).toBe(0);
    else expect(converted).toBeGreaterThan(20);
  });
});

describe('comparing the two syntheses', () => {
  const stack = (awsVersion: string, bucketName = 'b', source = awsVersion === '6.25.0' ? 'aws' : 'hashicorp/aws'): TerraformJson =>
    ({
      '//': { metadata: { version: awsVersion === '6.25.0' ? '0.21.0' : '0.24.0' } },
      terraform: { required_providers: { aws: { source, version: awsVersion } } },
      resource: { aws_s3_bucket: { b: { bucket: bucketName } } },
    }) as unknown as TerraformJson;

  test('the provider version, and `aws` spelled `hashicorp/aws`, are the expected difference; the generator metadata is not compared', () => {
    const [difference] = compareFlavours(new Map([['s', stack('6.25.0')]]), new Map([['s', stack('6.66.0')]]));
    expect(difference).toEqual({ stack: 's', provider: { cdktf: 'aws 6.25.0', cdkTerrain: 'hashicorp/aws 6.66.0' }, unexpected: [] });
  });

  test('another provider source is not the same provider', () => {
    const [difference] = compareFlavours(new Map([['s', stack('6.25.0')]]), new Map([['s', stack('6.66.0', 'b', 'someone/aws')]]));
    expect(difference.unexpected).toEqual([PROVIDER_SOURCE_PATH]);
  });

  test('any other difference, or a stack only one flavour synthesizes, is reported', () => {
    const differences = compareFlavours(
      new Map([
        ['s', stack('6.25.0')],
        ['only-cdktf', stack('6.25.0')],
      ]),
      new Map([['s', stack('6.66.0', 'renamed')]]),
    );
    expect(differences).toEqual([
      { stack: 'only-cdktf', unexpected: ['only synthesized by CDKTF'] },
      { stack: 's', provider: { cdktf: 'aws 6.25.0', cdkTerrain: 'hashicorp/aws 6.66.0' }, unexpected: ['resource.aws_s3_bucket.b.bucket'] },
    ]);
    expect(PROVIDER_VERSION_PATH).toBe('terraform.required_providers.aws.version');
  });
});
