import { Testing } from 'cdktf';
import { loadBootstrap } from '../../environments/bootstrap';
import { BootstrapStack, bootstrapStackName } from '../../modules/bootstrap';
import { validateEnvironment, ENVIRONMENT_INPUTS } from '../../environments';
import { imagePushCommands } from '../../scripts/image-commands';
import { stageInfo } from '../../scripts/stages';
import type { TerraformJson } from '../../synth/output';
import { STAGES, stageConfig } from '../support/synth';

describe('npm run stages -- --json (what the workflows assume)', () => {
  const bootstrap = loadBootstrap();

  test.each(STAGES)('%s: the role ARNs are the roles the bootstrap creates in the stage’s account', (stage) => {
    const info = stageInfo(stageConfig(stage));
    expect(info).toMatchObject({ stage, stack: `sluice-${stage}`, stackDir: `cdktf.out/stacks/sluice-${stage}` });
    const account = bootstrap.accounts.find((a) => a.stages.some((s) => s.stage === stage))!;
    expect(account.accountId).toBe(info.account);
    const stack = new BootstrapStack(Testing.app(), bootstrapStackName(account.accountId), { config: bootstrap, account, localStatePath: 'x.tfstate' });
    const roles = (JSON.parse(Testing.synth(stack)) as TerraformJson).resource!.aws_iam_role;
    const arnOf = (name: unknown) => `arn:aws:iam::${account.accountId}:role/${String(name)}`;
    expect(arnOf(roles[`${stage}-plan-role`].name)).toBe(info.planRoleArn);
    expect(arnOf(roles[`${stage}-deploy-role`].name)).toBe(info.deployRoleArn);
    expect(arnOf(roles[`${stage}-smoke-role`].name)).toBe(info.smokeRoleArn);
    // The pull-request workflow plans exactly the stages whose plan role trusts pull requests.
    expect(String(roles[`${stage}-plan-role`].assume_role_policy).includes(':pull_request:')).toBe(info.pullRequestPlans);
    expect(info.pullRequestPlans).toBe(stage !== 'prod');
  });
});

describe('npm run image:commands (the image pushed for a stage)', () => {
  test.each(STAGES)('%s: built for the platform its tasks run, pushed to its own account’s repository', (stage) => {
    const config = stageConfig(stage);
    const commands = imagePushCommands(config, 't1').join('\n');
    expect(commands).toContain('--platform linux/amd64');
    expect(commands).toContain(`-t ${config.account.id}.dkr.ecr.${config.account.region}.amazonaws.com/${config.image.repository}:t1 `);
  });

  test('an ARM64 stage gets an arm64 image', () => {
    const arm = validateEnvironment('dev', { ...ENVIRONMENT_INPUTS.dev, task: { ...ENVIRONMENT_INPUTS.dev.task, architecture: 'ARM64' } });
    expect(imagePushCommands(arm, 't1').join('\n')).toContain('--platform linux/arm64');
  });
});
