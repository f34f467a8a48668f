import { parseArgs } from 'node:util';
import { loadEnvironments, type EnvironmentConfig } from '../environments';
import { containerPlatformOf } from '../task-image/image-reference';

/**
 * The commands that build and push the worker image for one stage, with the platform its task definition
 * runs (X86_64 → linux/amd64, ARM64 → linux/arm64) and the stage's own registry and repository:
 *   npm run -s image:commands -- --stage prod --tag 2026-12-01.1
 * They need Docker with buildx and AWS CLI credentials for the stage's account, so they are printed, not run.
 */
export function imagePushCommands(config: EnvironmentConfig, tag: string): string[] {
  const { id, region } = config.account;
  const domain = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  const platform = containerPlatformOf(config.task.architecture);
  const image = `${id}.dkr.ecr.${region}.${domain}/${config.image.repository}:${tag}`;
  return [
    `# sluice-${config.stage}: ${config.task.architecture} tasks run ${platform} images`,
    `aws ecr get-login-password --region ${region} | docker login --username AWS --password-stdin ${id}.dkr.ecr.${region}.${domain}`,
    `docker buildx build --platform ${platform} --provenance=false --push --metadata-file sluice-image.json -f task-image/Dockerfile -t ${image} .`,
    `jq -r '."containerimage.digest"' sluice-image.json   # pin it: image.digest in environments/${config.stage}.ts`,
  ];
}

const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

function main(): void {
  const usage = 'usage: npm run -s image:commands -- --stage <stage> [--tag <tag>]';
  let values: { stage?: string; tag?: string };
  try {
    ({ values } = parseArgs({ options: { stage: { type: 'string' }, tag: { type: 'string' } } }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    process.exit(2);
  }
  const stages = loadEnvironments();
  const config = stages.find((s) => s.stage === values.stage);
  if (!config) {
    console.error(
      `${values.stage === undefined ? 'no --stage given' : `no stage "${values.stage}"`}; stages: ${stages.map((s) => s.stage).join(', ')}\n${usage}`,
    );
    process.exit(2);
  }
  const tag = values.tag ?? new Date().toISOString().slice(0, 10);
  if (!TAG_PATTERN.test(tag)) {
    console.error(`--tag ${JSON.stringify(tag)} is not a Docker tag (letters, digits, _ . -, at most 128)\n${usage}`);
    process.exit(2);
  }
  console.log(imagePushCommands(config, tag).join('\n'));
}

if (require.main === module) main();
