import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function';
import { AssetType, Fn, TerraformAsset } from 'cdktf';
import { zipSync } from 'fflate';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../environments';
import { buildSync } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './project-root';
import { partitionOf } from '../environments/partition';
import { policyJson, serviceTrustPolicy, type PolicyStatement } from './iam';

interface NodeFunctionProps {
  readonly functionName: string;
  readonly description: string;
  /** Source file under functions/, exporting `handler`. */
  readonly entry: HandlerEntry;
  /** The stage: its account and Region (the function's ARN, its role's trust) and its log retention. */
  readonly config: EnvironmentConfig;
  readonly statements: readonly PolicyStatement[];
  readonly environment: Readonly<Record<string, string>>;
  readonly timeoutSeconds: number;
  readonly memoryMiB?: number;
  readonly reservedConcurrency?: number;
}

/** The Node.js major the functions run on (Lambda `nodejs<major>.x`); the tests run on the same one. */
export const LAMBDA_NODE_MAJOR = 22;

/** Every Lambda handler, bundled together in one esbuild run at synth. */
const HANDLER_ENTRIES = [
  'functions/dispatcher.ts',
  'functions/janitor.ts',
  'functions/configure-pool.ts',
  'functions/capacity.ts',
  'functions/finish-task.ts',
] as const;
type HandlerEntry = (typeof HANDLER_ENTRIES)[number];
let bundled: Map<string, string> | undefined;

const ZIP_EPOCH = new Date('1980-01-01T00:00:00Z');

function archivePath(outdir: string, entry: string): string {
  return join(outdir, `${bundleName(entry)}.zip`);
}

function bundleName(entry: string): string {
  return entry.replace(/^functions\//, '').replace(/\.ts$/, '');
}

/** Project sources the bundle was built from, with their digests, plus the lockfile's. */
function inputsDigest(inputs: readonly string[]): string {
  const hash = createHash('sha256');
  for (const input of [...inputs, 'package-lock.json'].sort()) {
    hash.update(input).update('\0');
    hash.update(existsSync(join(PROJECT_ROOT, input)) ? readFileSync(join(PROJECT_ROOT, input)) : 'missing').update('\0');
  }
  return hash.digest('hex');
}

/**
 * Bundles the handlers (once per process) into one folder each, which TerraformAsset zips. A bundle
 * whose project sources and lockfile are unchanged is reused: esbuild-ing the AWS SDK three times
 * would otherwise dominate synth time.
 */
function bundleHandler(entry: HandlerEntry): string {
  if (!bundled) {
    const outdir = join(PROJECT_ROOT, 'dist', 'functions');
    const manifestPath = join(outdir, 'inputs.json');
    const previous = existsSync(manifestPath) ? (JSON.parse(readFileSync(manifestPath, 'utf8')) as { inputs: string[]; digest: string }) : undefined;
    const upToDate =
      previous !== undefined && HANDLER_ENTRIES.every((e) => existsSync(archivePath(outdir, e))) && inputsDigest(previous.inputs) === previous.digest;
    if (!upToDate) {
      const result = buildSync({
        entryPoints: HANDLER_ENTRIES.map((e) => ({ in: join(PROJECT_ROOT, e), out: `${bundleName(e)}/index` })),
        outdir,
        bundle: true,
        platform: 'node',
        target: `node${LAMBDA_NODE_MAJOR}`,
        format: 'cjs',
        minify: true, // smaller archives, faster cold starts; names are kept for stack traces
        keepNames: true,
        legalComments: 'none',
        logLevel: 'error',
        metafile: true,
      });
      for (const e of HANDLER_ENTRIES) {
        // Fixed timestamps: the same bundle always makes the same zip, so a plan shows no false code change.
        const code = readFileSync(join(outdir, bundleName(e), 'index.js'));
        writeFileSync(archivePath(outdir, e), zipSync({ 'index.js': [code, { mtime: ZIP_EPOCH }] }, { level: 9 }));
      }
      const inputs = Object.keys(result.metafile!.inputs).filter((input) => !input.includes('node_modules/'));
      writeFileSync(manifestPath, JSON.stringify({ inputs, digest: inputsDigest(inputs) }, null, 2));
    }
    bundled = new Map(HANDLER_ENTRIES.map((e) => [e, archivePath(outdir, e)]));
  }
  return bundled.get(entry)!;
}

/** A Node.js 22 Lambda on arm64: bundled code, its own log group with retention, its own least-privilege role. */
export class NodeFunction extends Construct {
  readonly functionName: string;
  /** Built from the name, so policies and the state machine can name the function without a cycle. */
  readonly functionArn: string;
  /** The function resource's own ARN: depending on it orders a resource after the function exists. */
  readonly deployedArn: string;
  readonly roleArn: string;
  /** What the function may do; anything that invokes it during apply must depend on this. */
  readonly policy: IamRolePolicy;

  constructor(scope: Construct, id: string, props: NodeFunctionProps) {
    super(scope, id);
    const { functionName, config } = props;
    const { id: accountId, region } = config.account;
    const asset = new TerraformAsset(this, 'code', { path: bundleHandler(props.entry), type: AssetType.FILE });
    const logGroup = new CloudwatchLogGroup(this, 'logs', { name: `/aws/lambda/${functionName}`, retentionInDays: config.logRetentionDays });
    const role = new IamRole(this, 'role', {
      name: `${functionName}-fn`,
      description: props.description,
      assumeRolePolicy: serviceTrustPolicy('lambda.amazonaws.com', accountId),
    });
    this.policy = new IamRolePolicy(this, 'policy', {
      role: role.id,
      name: 'least-privilege',
      policy: policyJson(
        {
          Sid: 'OwnLogs',
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: `arn:${partitionOf(region)}:logs:${region}:${accountId}:log-group:/aws/lambda/${functionName}:*`,
        },
        ...props.statements,
      ),
    });
    const fn = new LambdaFunction(this, 'function', {
      functionName,
      description: props.description,
      role: role.arn,
      runtime: `nodejs${LAMBDA_NODE_MAJOR}.x`,
      architectures: ['arm64'],
      handler: 'index.handler',
      filename: asset.path,
      sourceCodeHash: Fn.filebase64sha256(asset.path), // reproducible zip: changes only with the code
      timeout: props.timeoutSeconds,
      memorySize: props.memoryMiB ?? 256,
      reservedConcurrentExecutions: props.reservedConcurrency,
      environment: { variables: { ...props.environment } },
      loggingConfig: { logFormat: 'JSON', logGroup: logGroup.name },
      dependsOn: [logGroup],
    });
    this.functionName = fn.functionName;
    this.functionArn = `arn:${partitionOf(region)}:lambda:${region}:${accountId}:function:${functionName}`;
    this.deployedArn = fn.arn;
    this.roleArn = role.arn;
  }
}
