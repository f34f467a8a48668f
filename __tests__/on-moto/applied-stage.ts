import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { TEST_CREDENTIALS } from '../../verify/moto';

/** The stage `npm run verify:terraform` applied on moto, as its Terraform state describes it. */
export interface AppliedStage {
  readonly stage: string;
  /** What the emulated account's Service Quotas answer for the Fargate vCPU quotas. */
  readonly fargateVcpuQuota: number;
  readonly endpoint: string;
  readonly accountId: string;
  readonly region: string;
  readonly outputs: Record<string, any>;
  /** Each Lambda function's environment, by function name, exactly as applied. */
  readonly functions: Record<string, Record<string, string>>;
  readonly seed?: { functionName: string; input: unknown };
}

export function appliedStage(): AppliedStage {
  const file = process.env.SLUICE_ON_MOTO;
  if (!file) throw new Error('SLUICE_ON_MOTO is not set: these tests run from npm run verify:terraform, against the stage it applied');
  return JSON.parse(readFileSync(file, 'utf8')) as AppliedStage;
}

/** SDK client options for the emulator (self-signed certificate, path-style S3). */
export function clientConfig(stage: AppliedStage) {
  return {
    endpoint: stage.endpoint,
    region: stage.region,
    credentials: TEST_CREDENTIALS,
    forcePathStyle: true,
    requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ rejectUnauthorized: false, keepAlive: true }) }),
  };
}

export function functionEnvironment(stage: AppliedStage, suffix: string): Record<string, string> {
  const name = Object.keys(stage.functions).find((n) => n.endsWith(`-${suffix}`));
  if (!name) throw new Error(`no function *-${suffix} in the applied stage (functions: ${Object.keys(stage.functions).join(', ')})`);
  return stage.functions[name];
}
