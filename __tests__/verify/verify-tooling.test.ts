import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emulatorOverride, endpointServices } from '../../verify/endpoints';
import { substituteNetwork } from '../../verify/network-fixture';
import { notOnlyMoves, summarizeMovePlan } from '../../verify/moves';
import { chooseProvider, cliConfig, pinnedAwsProvider } from '../../synth/terraform';
import { STAGES, stageConfig, synthStage } from '../support/synth';

describe('npm run verify:terraform: its own tooling', () => {
  test.each(STAGES)('%s: every resource type has an emulator endpoint (none would reach real AWS)', (stage) => {
    const { json } = synthStage(stage);
    expect(endpointServices(json)).toEqual(expect.arrayContaining(['dynamodb', 'events', 'iam', 'lambda', 's3', 'sfn', 'sqs', 'sts']));
  });

  test('an unknown resource type is an error, not a silent trip to AWS', () => {
    expect(() => endpointServices({ terraform: {}, resource: { aws_kinesis_stream: { s: {} } } })).toThrow(
      /no emulator endpoint is known for aws_kinesis_stream/,
    );
  });

  test('the override keeps the stage S3 backend (lockfile included), on the emulator', () => {
    const { json } = synthStage('dev');
    const override = emulatorOverride(json, 'https://127.0.0.1:1', 's3') as { terraform: { backend: { s3: Record<string, unknown> } } };
    expect(override.terraform.backend.s3).toMatchObject({
      ...json.terraform.backend!.s3,
      endpoints: { s3: 'https://127.0.0.1:1', sts: 'https://127.0.0.1:1', iam: 'https://127.0.0.1:1' },
      use_lockfile: true,
    });
  });

  describe('choosing the hashicorp/aws provider', () => {
    let root: string;
    const mirror = (name: string, versions: string[]) => {
      const dir = join(root, name);
      const platform = `${process.platform}_${process.arch === 'x64' ? 'amd64' : process.arch}`;
      for (const v of versions) mkdirSync(join(dir, 'registry.terraform.io', 'hashicorp', 'aws', v, platform), { recursive: true });
      return dir;
    };
    beforeAll(() => (root = mkdtempSync(join(tmpdir(), 'sluice-mirror-'))));
    afterAll(() => rmSync(root, { recursive: true, force: true }));

    test('the pin, from a mirror that has it', () => {
      const dir = mirror('with-pin', ['5.100.0', '6.25.0']);
      expect(chooseProvider('6.25.0', [dir], () => false)).toEqual({ pinned: '6.25.0', version: '6.25.0', mirror: dir });
    });

    test('the pin, from the registry, when no mirror has it', () => {
      const dir = mirror('old-only', ['5.100.0']);
      expect(chooseProvider('6.25.0', [dir], () => true)).toEqual({ pinned: '6.25.0', version: '6.25.0' });
    });

    test('otherwise the newest mirrored version, said plainly', () => {
      const dir = mirror('two-old', ['5.99.0', '5.100.0']);
      const choice = chooseProvider('6.25.0', [dir], () => false);
      expect(choice).toMatchObject({
        version: '5.100.0',
        mirror: dir,
        note: expect.stringMatching(/6\.25\.0 .*not installable here.*checked with 5\.100\.0; the synthesized configuration is unchanged/),
      });
      expect(cliConfig(choice, '/cache')).toContain(`path    = ${JSON.stringify(dir)}`);
    });

    test('no mirror and no registry is an error naming what to set', () => {
      expect(() => chooseProvider('6.25.0', [join(root, 'nothing')], () => false)).toThrow(/SLUICE_TF_PROVIDER_MIRROR/);
    });

    test('the pin is read from the synthesized stack: the version the provider bindings were generated for', () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const bindings = require('@cdktf/provider-aws/package.json') as { cdktf: { provider: { version: string } } };
      expect(bindings.cdktf.provider.version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(pinnedAwsProvider(synthStage('dev').json)).toBe(bindings.cdktf.provider.version);
    });
  });

  test("a stage in an existing VPC gets the stand-in network's ids everywhere, the state machine's definition included", () => {
    const { json } = synthStage('prod');
    const dir = mkdtempSync(join(tmpdir(), 'sluice-network-'));
    writeFileSync(join(dir, 'cdk.tf.json'), JSON.stringify(json));
    const config = stageConfig('prod');
    if (config.network.kind !== 'existing') throw new Error('prod runs in an existing VPC');
    const standIn = { vpcId: 'vpc-standin', privateSubnetIds: config.network.privateSubnetIds.map((_, i) => `subnet-standin${i}`) };
    substituteNetwork(dir, config, standIn);
    const text = readFileSync(join(dir, 'cdk.tf.json'), 'utf8');
    for (const id of [config.network.vpcId, ...config.network.privateSubnetIds]) expect(text).not.toContain(id);
    const substituted = JSON.parse(text);
    const definition = JSON.parse(Object.values(substituted.resource.aws_sfn_state_machine as Record<string, { definition: string }>)[0].definition);
    expect(definition.States.RunJobs.ItemProcessor.States.RunTask.Parameters.NetworkConfiguration.AwsvpcConfiguration.Subnets).toEqual(
      standIn.privateSubnetIds,
    );
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('npm run verify:moves: what a plan against the applied stage does', () => {
  const change = (address: string, actions: string[], previous?: string, values?: { before: Record<string, unknown>; after: Record<string, unknown> }) => ({
    address,
    change: { actions, ...values },
    ...(previous ? { previous_address: previous } : {}),
  });

  test('moves only: resources at new addresses, nothing else done', () => {
    const summary = summarizeMovePlan({
      resource_changes: [change('aws_iam_role.admission_role', ['no-op'], 'aws_iam_role.dispatch_role'), change('aws_sqs_queue.intake_queue', ['no-op'])],
    });
    expect(summary).toEqual({
      moved: ['aws_iam_role.dispatch_role → aws_iam_role.admission_role'],
      create: [],
      update: [],
      codeUpdate: [],
      delete: [],
      noOp: 2,
    });
    expect(notOnlyMoves(summary)).toBeUndefined();
  });

  test('a moved resource that is also updated, a replacement, or no move at all is not a pure move', () => {
    const summary = summarizeMovePlan({
      resource_changes: [
        change('aws_lambda_function.admission_fn', ['update'], 'aws_lambda_function.dispatch_fn'),
        change('aws_lambda_permission.p', ['delete', 'create']),
      ],
    });
    expect(notOnlyMoves(summary)).toBe('create: aws_lambda_permission.p; update: aws_lambda_function.admission_fn; delete: aws_lambda_permission.p');
    expect(notOnlyMoves(summarizeMovePlan({ resource_changes: [change('aws_sqs_queue.q', ['no-op'])] }))).toBe('it moves nothing');
  });

  test('a function given only a new bundle is a release of its code, reported apart; any other attribute changed is an update', () => {
    const bundle = {
      before: { filename: 'assets/a/1.zip', source_code_hash: 'h1', timeout: 300 },
      after: { filename: 'assets/a/2.zip', source_code_hash: 'h2', timeout: 300 },
    };
    const retimed = { before: { filename: 'assets/a/1.zip', timeout: 300 }, after: { filename: 'assets/a/2.zip', timeout: 120 } };
    const summary = summarizeMovePlan({
      resource_changes: [
        change('aws_lambda_function.admission_fn', ['update'], 'aws_lambda_function.dispatch_fn', bundle),
        change('aws_lambda_function.janitor_fn', ['update'], 'aws_lambda_function.dispatch_janitor_fn', retimed),
      ],
    });
    expect(summary.codeUpdate).toEqual(['aws_lambda_function.admission_fn']);
    expect(summary.update).toEqual(['aws_lambda_function.janitor_fn']);
    expect(notOnlyMoves(summary)).toBe('update: aws_lambda_function.janitor_fn');
    expect(
      notOnlyMoves(
        summarizeMovePlan({ resource_changes: [change('aws_lambda_function.admission_fn', ['update'], 'aws_lambda_function.dispatch_fn', bundle)] }),
      ),
    ).toBeUndefined();
  });
});
