/** One stage synthesized outside `main.ts`: to a folder with its assets (for Terraform), or in memory (for reading). */
import { join } from 'node:path';
import { App, Testing } from 'cdktf';
import type { EnvironmentConfig } from '../environments';
import { stackName } from '../environments/names';
import { PipelineStack } from '../modules/stack';
import type { TerraformJson } from './output';

/** Writes the stage's stack (cdk.tf.json and the functions' bundles) under `outdir`; answers the stack's folder. */
export function synthesizeStageTo(config: EnvironmentConfig, outdir: string): string {
  const app = new App({ outdir });
  new PipelineStack(app, stackName(config.stage), { config });
  app.synth();
  return join(outdir, 'stacks', stackName(config.stage));
}

/** The stage's Terraform JSON, synthesized in memory. */
export function synthesizeStageJson(config: EnvironmentConfig): TerraformJson {
  return JSON.parse(Testing.synth(new PipelineStack(Testing.app(), stackName(config.stage), { config }))) as TerraformJson;
}
