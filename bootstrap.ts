import { join, relative } from 'node:path';
import { App } from 'cdktf';
import { loadBootstrap } from './environments/bootstrap';
import { BootstrapStack, bootstrapStackName } from './modules/bootstrap';

/**
 * Builds the bootstrap App: one BootstrapStack per account (state bucket, GitHub OIDC, plan/deploy roles), then synth().
 * Separate from main.ts: applied once per account by an admin, with local state. See docs/rolling-out.md.
 *   npm run synth:bootstrap   →  cdktf.out/bootstrap/stacks/sluice-bootstrap-<account>
 */
const BOOTSTRAP_OUTDIR = join('cdktf.out', 'bootstrap');
/** Local state lives outside cdktf.out (which is rebuilt and git-ignored), in bootstrap-state/<stack>.tfstate. */
const BOOTSTRAP_STATE_DIR = join(__dirname, 'bootstrap-state');

const app = new App({ outdir: process.env.CDKTF_OUTDIR ?? BOOTSTRAP_OUTDIR });
const config = loadBootstrap();
for (const account of config.accounts) {
  const name = bootstrapStackName(account.accountId);
  const stackDir = join(app.outdir, 'stacks', name);
  new BootstrapStack(app, name, {
    config,
    account,
    localStatePath: relative(stackDir, join(BOOTSTRAP_STATE_DIR, `${name}.tfstate`)),
  });
}
app.synth();
