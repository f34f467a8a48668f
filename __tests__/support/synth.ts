import { Testing } from 'cdktf';
import { ENVIRONMENT_INPUTS, validateEnvironment, type EnvironmentConfig } from '../../environments';
import { stackName } from '../../environments/names';
import { PipelineStack } from '../../modules/stack';
import { resourcesOf, type TerraformJson } from '../../synth/output';

export type StageName = keyof typeof ENVIRONMENT_INPUTS;
export const STAGES = Object.keys(ENVIRONMENT_INPUTS) as StageName[];

export function stageConfig(stage: StageName): EnvironmentConfig {
  return validateEnvironment(stage, ENVIRONMENT_INPUTS[stage]);
}

/** Synthesizes one stage in memory: the string for cdktf's matchers, the parsed JSON for the rest. */
export function synthStage(stage: StageName, config: EnvironmentConfig = stageConfig(stage)) {
  const stack = new PipelineStack(Testing.app(), stackName(stage), { config });
  const synthesized = Testing.synth(stack);
  return { stack, config, synthesized, json: JSON.parse(synthesized) as TerraformJson };
}

/** The one resource of a type whose logical name contains `fragment`. */
export function resourceNamed(json: TerraformJson, type: string, fragment: string): Record<string, unknown> {
  const matches = resourcesOf(json, type).filter(([name]) => name.includes(fragment));
  if (matches.length !== 1) {
    throw new Error(`expected one ${type} named *${fragment}*, found ${matches.map(([n]) => n).join(', ') || 'none'}`);
  }
  return matches[0][1];
}

// One concept, one place: the twin resolves synthesized definitions the same way.
export { resolveReferences, resourcesOf } from '../../synth/output';
