import { Testing } from 'cdktf';
import { loadBootstrap } from '../../environments/bootstrap-schema';
import { BootstrapStack, bootstrapStackName } from '../../modules/bootstrap';
import { stageInfo } from '../../scripts/stages';
import type { TerraformJson } from '../../scripts/synth-output';
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
  });
});
