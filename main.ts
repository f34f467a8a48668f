import { App } from 'cdktf';
import { loadEnvironments } from './environments';
import { stackName } from './environments/names';
import { PipelineStack } from './modules/stack';

const app = new App();
for (const config of loadEnvironments()) {
  new PipelineStack(app, stackName(config.stage), { config });
}
app.synth();
