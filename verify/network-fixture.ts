/**
 * stg and prod run in an existing VPC (network.kind 'existing'): ids of resources the stage references but does not
 * own. On an emulator those do not exist, so the check creates a VPC with as many private subnets, by Terraform on
 * the same emulator, and puts their ids in place of the configured ones in the scratch copy — what a user does in
 * environments/<stage>.ts with their own ids. Nothing else of the stage changes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EnvironmentConfig } from '../environments';
import type { TerraformJson } from '../synth/output';
import { emulatorOverride } from './endpoints';
import { ScratchStack, type ProviderChoice } from '../synth/terraform';

export interface ExistingNetwork {
  readonly vpcId: string;
  readonly privateSubnetIds: readonly string[];
}

function networkFixture(config: EnvironmentConfig, providerVersion: string, subnets: number): TerraformJson {
  const zones = ['a', 'b', 'c', 'd', 'e', 'f'].slice(0, subnets).map((z) => `${config.account.region}${z}`);
  return {
    terraform: { required_providers: { aws: { source: 'hashicorp/aws', version: providerVersion } } },
    provider: { aws: [{ region: config.account.region, allowed_account_ids: [config.account.id] }] },
    resource: {
      aws_vpc: { existing: { cidr_block: '10.99.0.0/16', tags: { Name: `stand-in for ${config.stage}'s existing VPC` } } },
      aws_subnet: Object.fromEntries(
        zones.map((zone, i) => [`private_${i}`, { vpc_id: '${aws_vpc.existing.id}', cidr_block: `10.99.${i}.0/24`, availability_zone: zone }]),
      ),
    },
    output: {
      vpc_id: { value: '${aws_vpc.existing.id}' },
      subnet_ids: { value: zones.map((_, i) => `\${aws_subnet.private_${i}.id}`) },
    },
  };
}

/** Applies the stand-in network on the emulator and returns its ids. */
export function createStandInNetwork(
  config: EnvironmentConfig,
  endpoint: string,
  scratch: string,
  choice: ProviderChoice,
  env: NodeJS.ProcessEnv,
  log: (l: string) => void,
): ExistingNetwork {
  if (config.network.kind !== 'existing') throw new Error(`${config.stage} creates its own network`);
  const dir = join(scratch, `network-for-${config.stage}`);
  const json = networkFixture(config, choice.version, config.network.privateSubnetIds.length);
  const stack = ScratchStack.fromJson(`network-for-${config.stage}`, dir, json, env, log);
  stack.writeOverride(emulatorOverride(json, endpoint, { local: 'terraform.tfstate' }));
  stack.terraform(['init', '-input=false', '-no-color']);
  stack.terraform(['apply', '-input=false', '-no-color', '-auto-approve']);
  const outputs = stack.state().values?.outputs ?? {};
  return { vpcId: String(outputs.vpc_id.value), privateSubnetIds: outputs.subnet_ids.value as string[] };
}

/** Puts the stand-in ids in place of the configured ones in a scratch copy's cdk.tf.json (also inside the definition's JSON string). */
export function substituteNetwork(stackDir: string, config: EnvironmentConfig, network: ExistingNetwork): void {
  if (config.network.kind !== 'existing') return;
  const file = join(stackDir, 'cdk.tf.json');
  let text = readFileSync(file, 'utf8');
  const pairs: Array<[string, string]> = [
    [config.network.vpcId, network.vpcId],
    ...config.network.privateSubnetIds.map((id, i): [string, string] => [id, network.privateSubnetIds[i]]),
  ];
  for (const [configured, standIn] of pairs) {
    if (!text.includes(configured)) throw new Error(`${config.stage}: ${configured} does not appear in the synthesized stack`);
    text = text.split(configured).join(standIn);
  }
  writeFileSync(file, text);
}
