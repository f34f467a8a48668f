import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliConfig, type ProviderChoice } from '../synth/terraform';
import { TEST_CREDENTIALS } from './moto';

/** Terraform's environment for every stack: the CLI config (provider source, shared plugin cache) and moto's test credentials; of this shell only PATH and HOME. */
export function terraformEnvironment(scratch: string, choice: ProviderChoice): NodeJS.ProcessEnv {
  const cliConfigFile = join(scratch, 'terraform.rc');
  writeFileSync(cliConfigFile, cliConfig(choice, join(scratch, 'plugin-cache')));
  mkdirSync(join(scratch, 'plugin-cache'), { recursive: true });
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TF_CLI_CONFIG_FILE: cliConfigFile,
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    CHECKPOINT_DISABLE: '1',
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}
