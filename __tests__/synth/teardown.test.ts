import { Testing } from 'cdktf';
import { stackName } from '../../environments/names';
import { PipelineStack } from '../../modules/stack';
import { beyondProtection } from '../../synth/teardown';
import type { TerraformJson } from '../../synth/output';
import { resourceNamed, stageConfig } from '../support/synth';

const update = (type: string, before: Record<string, unknown>, after: Record<string, unknown>) => ({
  address: `${type}.x`,
  type,
  change: { actions: ['update'], before, after },
});

describe('teardown: the lifting plan may only lift protection', () => {
  test('prod synthesized for teardown differs from prod only in the protection attributes', () => {
    const prod = stageConfig('prod');
    const synth = (allowDestroy: boolean) =>
      JSON.parse(Testing.synth(new PipelineStack(Testing.app(), stackName('prod'), { config: { ...prod, allowDestroy } }))) as TerraformJson;
    const kept = synth(false);
    const lifted = synth(true);
    expect(resourceNamed(kept, 'aws_dynamodb_table', 'table').deletion_protection_enabled).toBe(true);
    expect(resourceNamed(lifted, 'aws_dynamodb_table', 'table').deletion_protection_enabled).toBe(false);
    expect(resourceNamed(lifted, 'aws_s3_bucket', 'bucket_private').force_destroy).toBe(true);
    expect(resourceNamed(lifted, 'aws_ecr_repository', 'repository').force_delete).toBe(true);
    const strip = (json: TerraformJson) =>
      JSON.stringify(json, (key, value) => (['deletion_protection_enabled', 'force_destroy', 'force_delete'].includes(key) ? undefined : value));
    expect(strip(lifted)).toBe(strip(kept));
  });

  test('a plan that only flips the three flags passes', () => {
    expect(
      beyondProtection({
        resource_changes: [
          update('aws_dynamodb_table', { name: 't', deletion_protection_enabled: true }, { name: 't', deletion_protection_enabled: false }),
          update('aws_s3_bucket', { force_destroy: false }, { force_destroy: true }),
          update('aws_ecr_repository', { force_delete: false }, { force_delete: true }),
          { address: 'aws_sqs_queue.q', type: 'aws_sqs_queue', change: { actions: ['no-op'], before: {}, after: {} } },
        ],
      }),
    ).toEqual([]);
  });

  test('anything else pending is refused, each named', () => {
    expect(
      beyondProtection({
        resource_changes: [
          update(
            'aws_dynamodb_table',
            { deletion_protection_enabled: true, billing_mode: 'PAY_PER_REQUEST' },
            { deletion_protection_enabled: false, billing_mode: 'PROVISIONED' },
          ),
          update('aws_lambda_function', { memory_size: 256 }, { memory_size: 512 }),
          { address: 'aws_sqs_queue.q', type: 'aws_sqs_queue', change: { actions: ['delete', 'create'], before: {}, after: {} } },
        ],
      }),
    ).toEqual(['aws_dynamodb_table.x: also changes billing_mode', 'aws_lambda_function.x: update', 'aws_sqs_queue.q: delete+create']);
  });
});
