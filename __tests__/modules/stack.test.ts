import { stagePacks } from '../../environments';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { EcrRepository } from '@cdktf/provider-aws/lib/ecr-repository';
import { EcsCluster } from '@cdktf/provider-aws/lib/ecs-cluster';
import { EcsClusterCapacityProviders } from '@cdktf/provider-aws/lib/ecs-cluster-capacity-providers';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket';
import { S3BucketLifecycleConfiguration } from '@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration';
import { S3BucketNotification } from '@cdktf/provider-aws/lib/s3-bucket-notification';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue';
import { Subnet } from '@cdktf/provider-aws/lib/subnet';
import { Vpc } from '@cdktf/provider-aws/lib/vpc';
import { VpcEndpoint } from '@cdktf/provider-aws/lib/vpc-endpoint';
import { runTaskTimeoutSeconds } from '../../modules/run-jobs/timing';
import type { PolicyDocument } from '../../modules/iam';
import { decide } from '../support/iam';
import { STAGES, resourceNamed, resourcesOf, synthStage } from '../support/synth';

describe.each(STAGES)('stage %s', (stage) => {
  const { synthesized, json, config } = synthStage(stage);

  test("its settings output says what the summary prints: the budget, the task, and each route's share, limits and task", () => {
    const settings = (json.output as Record<string, { value: Record<string, unknown> }>).settings.value;
    expect(settings).toMatchObject({ stage, vcpuBudget: config.capacity.vcpuBudget, taskCpu: config.task.cpu });
    if (!config.routes) {
      expect(settings).not.toHaveProperty('routes');
      expect(settings.maxConcurrentTasks).toBe(Math.floor(config.capacity.vcpuBudget / (config.task.cpu / 1024)));
      return;
    }
    expect(settings.routes).toEqual(
      config.routes.map((r) =>
        expect.objectContaining({ name: r.name, inputPrefix: r.inputPrefix, share: r.share, taskVcpu: (r.task?.cpu ?? config.task.cpu) / 1024 }),
      ),
    );
    const smallest = Math.min(...config.routes.map((r) => r.task?.cpu ?? config.task.cpu)) / 1024;
    expect(settings.maxConcurrentTasks).toBe(Math.floor(config.capacity.vcpuBudget / smallest));
  });

  test('keeps its state in its own S3 backend with S3-native locking', () => {
    expect(json.terraform.backend?.s3).toEqual({
      bucket: config.backend.bucket,
      key: config.backend.key,
      region: config.backend.region,
      encrypt: true,
      use_lockfile: true,
    });
  });

  test('can only be applied to its own account, and tags everything', () => {
    const [provider] = json.provider!.aws;
    expect(provider.allowed_account_ids).toEqual([config.account.id]);
    expect(provider.region).toBe(config.account.region);
    expect(provider.default_tags).toEqual([{ tags: { ...config.tags, 'sluice:stage': stage } }]);
  });

  test('bucket: versioned, encrypted, private, TLS only, EventBridge on, results expire', () => {
    expect(synthesized).toHaveResourceWithProperties(S3Bucket, { bucket: `${config.namePrefix}-${config.account.id}-${config.account.region}` });
    expect(synthesized).toHaveResourceWithProperties(S3BucketVersioningA, { versioning_configuration: { status: 'Enabled' } });
    expect(synthesized).toHaveResourceWithProperties(S3BucketServerSideEncryptionConfigurationA, {
      rule: [{ apply_server_side_encryption_by_default: { sse_algorithm: 'AES256' }, bucket_key_enabled: true }],
    });
    expect(synthesized).toHaveResourceWithProperties(S3BucketPublicAccessBlock, {
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    expect(synthesized).toHaveResourceWithProperties(S3BucketNotification, { eventbridge: true });
    expect(synthesized).toHaveResourceWithProperties(S3BucketLifecycleConfiguration, {
      rule: expect.arrayContaining([
        expect.objectContaining({
          filter: [{ prefix: config.bucket.resultsPrefix }],
          expiration: [{ days: config.bucket.resultsRetentionDays }],
        }),
      ]),
    });
    const policy = JSON.parse(resourceNamed(json, 'aws_s3_bucket_policy', 'bucket').policy as string);
    expect(policy.Statement).toContainEqual(expect.objectContaining({ Effect: 'Deny', Action: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
  });

  test('intake: Object Created under the input prefix → encrypted 14-day queue with a DLQ', () => {
    const rule = resourcesOf(json, 'aws_cloudwatch_event_rule').find(([name]) => name.includes('object-created'))![1];
    expect(JSON.parse(rule.event_pattern as string)).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: {
        bucket: { name: [expect.stringContaining('aws_s3_bucket.')] },
        object: { key: [{ prefix: config.bucket.inputPrefix }] },
      },
    });
    expect(synthesized).toHaveResourceWithProperties(CloudwatchEventRule, { name: `${config.namePrefix}-object-created` });
    expect(synthesized).toHaveResourceWithProperties(SqsQueue, {
      name: `${config.namePrefix}-intake`,
      message_retention_seconds: 1209600,
      sqs_managed_sse_enabled: true,
    });
    const queue = resourceNamed(json, 'aws_sqs_queue', 'intake_queue');
    const redrive = JSON.parse(queue.redrive_policy as string);
    expect(redrive.maxReceiveCount).toBe(config.intake.maxReceiveCount);
    expect(redrive.deadLetterTargetArn).toMatch(/aws_sqs_queue\.intake_dead-letters.*\.arn/);
    expect(synthesized).toHaveResourceWithProperties(CloudwatchEventTarget, {
      retry_policy: {
        maximum_retry_attempts: config.intake.ruleRetryAttempts,
        maximum_event_age_in_seconds: config.intake.ruleMaxEventAgeSeconds,
      },
      dead_letter_config: { arn: expect.stringMatching(/aws_sqs_queue\.intake_rule-dead-letters.*\.arn/) },
    });
  });

  test('intake queue policy admits only the Object Created rule', () => {
    const policy = JSON.parse(resourceNamed(json, 'aws_sqs_queue_policy', 'intake_queue-policy').policy as string);
    const allows = policy.Statement.filter((s: { Effect: string }) => s.Effect === 'Allow');
    expect(allows).toEqual([
      expect.objectContaining({
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Condition: { ArnEquals: { 'aws:SourceArn': expect.stringMatching(/aws_cloudwatch_event_rule\.intake_object-created.*\.arn/) } },
      }),
    ]);
  });

  test('compute: cluster with Container Insights and both Fargate capacity providers', () => {
    expect(synthesized).toHaveResourceWithProperties(EcsCluster, {
      name: config.namePrefix,
      setting: [{ name: 'containerInsights', value: 'enabled' }],
    });
    expect(synthesized).toHaveResourceWithProperties(EcsClusterCapacityProviders, {
      capacity_providers: ['FARGATE', 'FARGATE_SPOT'],
      default_capacity_provider_strategy: config.task.capacityProviders.map((p) => ({
        capacity_provider: p.name,
        weight: p.weight,
        base: p.base,
      })),
    });
    expect(synthesized).toHaveResourceWithProperties(EcrRepository, {
      image_tag_mutability: 'IMMUTABLE',
      image_scanning_configuration: { scan_on_push: true },
    });
    expect(synthesized).toHaveResourceWithProperties(CloudwatchLogGroup, { retention_in_days: config.logRetentionDays });
  });

  test('task definition: size and image from config, read-only root, logs to its group', () => {
    expect(synthesized).toHaveResourceWithProperties(EcsTaskDefinition, {
      family: `${config.namePrefix}-worker`,
      cpu: String(config.task.cpu),
      memory: String(config.task.memoryMiB),
      network_mode: 'awsvpc',
      requires_compatibilities: ['FARGATE'],
    });
    const definition = resourceNamed(json, 'aws_ecs_task_definition', 'task-definition_');
    const [container] = JSON.parse(definition.container_definitions as string);
    const pin = config.image.digest ? `@${config.image.digest}` : `:${config.image.tag}`;
    expect(container.image).toMatch(new RegExp(`^\\$\\{aws_ecr_repository\\.[^}]+\\.repository_url\\}${pin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    expect(container.readonlyRootFilesystem).toBe(true);
    expect(container.mountPoints).toEqual([{ sourceVolume: 'scratch', containerPath: '/tmp', readOnly: false }]);
    expect(container.stopTimeout).toBe(config.task.stopTimeoutSeconds);
    // The worker stops itself at the task's timeout, and before its RunTask state's timeout: no task outlives its lease.
    expect(container.environment).toEqual([
      { name: 'RESULTS_PREFIX', value: config.bucket.resultsPrefix },
      { name: 'JOB_TIMEOUT_SECONDS', value: String(config.task.timeoutSeconds) },
      { name: 'RUN_TASK_TIMEOUT_SECONDS', value: String(runTaskTimeoutSeconds(config.task)) },
      // Where its start-up metric goes: the stage's own namespace, as the dashboard and sluice status read it.
      { name: 'METRICS_NAMESPACE', value: `Sluice/${config.namePrefix}` },
      // A stage that packs: where a packed task reads its objects and records their ends.
      ...(stagePacks(config) ? [{ name: 'BATCHES_TABLE_NAME', value: `${config.namePrefix}-batches` }] : []),
    ]);
    const definitionJson = JSON.parse(resourceNamed(json, 'aws_sfn_state_machine', 'state-machine').definition as string);
    expect(definitionJson.States.RunJobs.ItemProcessor.States.RunTask.TimeoutSeconds).toBe(runTaskTimeoutSeconds(config.task));
    expect(container.logConfiguration.logDriver).toBe('awslogs');
    expect(container.logConfiguration.options['awslogs-group']).toMatch(/aws_cloudwatch_log_group\.compute_logs/);
  });

  test('an image rollout keeps the previous task definition revision runnable', () => {
    // Replacing the revision must not deregister the old one: running executions retry RunTask with its ARN
    // (Spot interruptions, ECS API retries), and ECS refuses INACTIVE revisions.
    // So do every route's own (stg's urgent route has one).
    const definitions = resourcesOf(json, 'aws_ecs_task_definition');
    expect(definitions.length).toBe(1 + (config.routes ?? []).filter((route) => route.task).length);
    for (const [, definition] of definitions) expect(definition.skip_destroy).toBe(true);
  });

  test('task security group has no inbound rule and only HTTPS out: to its own endpoints when the stage made them', () => {
    expect(resourcesOf(json, 'aws_vpc_security_group_ingress_rule').filter(([name]) => name.startsWith('compute'))).toEqual([]);
    const egress = resourcesOf(json, 'aws_vpc_security_group_egress_rule').map(([, rule]) => rule);
    for (const rule of egress) expect([rule.ip_protocol, rule.from_port, rule.to_port]).toEqual(['tcp', 443, 443]);
    const destinations = egress.map((rule) => rule.prefix_list_id ?? rule.cidr_ipv4);
    // Security review M5: in a created network, S3 through its gateway endpoint and the VPC (the interface endpoints), not the internet.
    expect(destinations.length).toBe(config.network.kind === 'create' ? 2 : 1);
    expect(destinations).toEqual(
      config.network.kind === 'create'
        ? expect.arrayContaining([
            expect.stringMatching(/^\$\{aws_vpc_endpoint\.network_endpoint-s3_[A-F0-9]+\.prefix_list_id\}$/),
            expect.stringMatching(/^\$\{aws_vpc\.network_vpc_[A-F0-9]+\.cidr_block\}$/),
          ])
        : ['0.0.0.0/0'],
    );
  });

  if (config.network.kind === 'create') {
    test('the endpoints admit this account only: its buckets (and ECR’s layer bucket) through S3, its principals to ECR and logs', async () => {
      const account = config.account.id;
      const region = config.account.region;
      // Evaluated as a policy that must allow the request, without its Principal (every caller in the VPC).
      const policyOf = (fragment: string): PolicyDocument => {
        const policy = JSON.parse(String(resourceNamed(json, 'aws_vpc_endpoint', fragment).policy)) as PolicyDocument;
        return { ...policy, Statement: policy.Statement.map(({ Principal: _everyone, ...statement }) => statement) };
      };
      const s3 = policyOf('endpoint-s3');
      const put = (bucket: string, owner: string) =>
        decide(s3, { action: 's3:PutObject', resource: `arn:aws:s3:::${bucket}/x`, accountId: account, context: { 'aws:ResourceAccount': owner } });
      expect(await put(`sluice-${config.stage}-bucket`, account)).toBe('Allowed');
      expect(await put('attacker-bucket', '999999999999')).toBe('ImplicitlyDenied');
      expect(
        await decide(s3, {
          action: 's3:GetObject',
          resource: `arn:aws:s3:::prod-${region}-starport-layer-bucket/layer`,
          context: { 'aws:ResourceAccount': '000000000000' },
        }),
      ).toBe('Allowed');
      for (const service of ['ecr-api', 'ecr-dkr', 'logs']) {
        const policy = policyOf(`endpoint-${service}`);
        const call = (principalAccount: string) =>
          decide(policy, {
            action: 'logs:PutLogEvents',
            resource: `arn:aws:logs:${region}:${account}:log-group:x:log-stream:y`,
            context: { 'aws:PrincipalAccount': principalAccount },
          });
        expect(await call(account)).toBe('Allowed');
        expect(await call('999999999999')).toBe('ImplicitlyDenied');
      }
    });
  }

  test('network: a private VPC with endpoints when created, the given subnets otherwise', () => {
    if (config.network.kind === 'create') {
      expect(synthesized).toHaveResourceWithProperties(Vpc, { cidr_block: config.network.cidr, enable_dns_hostnames: true });
      for (const zone of config.network.availabilityZones) {
        expect(synthesized).toHaveResourceWithProperties(Subnet, { availability_zone: zone, map_public_ip_on_launch: false });
      }
      const services = resourcesOf(json, 'aws_vpc_endpoint').map(([, e]) => [e.service_name, e.vpc_endpoint_type]);
      const region = config.account.region;
      expect(services).toEqual(
        expect.arrayContaining([
          [`com.amazonaws.${region}.s3`, 'Gateway'],
          [`com.amazonaws.${region}.ecr.api`, 'Interface'],
          [`com.amazonaws.${region}.ecr.dkr`, 'Interface'],
          [`com.amazonaws.${region}.logs`, 'Interface'],
        ]),
      );
      expect(resourcesOf(json, 'aws_internet_gateway')).toEqual([]);
    } else {
      expect(synthesized).not.toHaveResource(Vpc);
      expect(synthesized).not.toHaveResource(VpcEndpoint);
      expect(json.resource?.aws_security_group).toBeDefined();
      const group = resourceNamed(json, 'aws_security_group', 'task-security-group');
      expect(group.vpc_id).toBe(config.network.vpcId);
    }
  });
});

test('every stage has its own state key', () => {
  const keys = STAGES.map((stage) => synthStage(stage).json.terraform.backend?.s3.key);
  expect(new Set(keys).size).toBe(STAGES.length);
});

test('a suffix filter narrows the rule to matching keys with a wildcard', () => {
  const base = synthStage('dev').config;
  const { json } = synthStage('dev', { ...base, bucket: { ...base.bucket, inputSuffix: '.csv' } });
  const rule = resourcesOf(json, 'aws_cloudwatch_event_rule').find(([name]) => name.includes('object-created'))![1];
  expect(JSON.parse(rule.event_pattern as string).detail.object.key).toEqual([{ wildcard: 'incoming/*.csv' }]);
});

test('importing the stack module synthesizes nothing', () => {
  jest.isolateModules(() => {
    /* eslint-disable @typescript-eslint/no-require-imports -- a fresh module registry: require() loads the module anew */
    const writes = jest.spyOn(require('node:fs'), 'writeFileSync');
    require('../../modules/stack');
    expect(writes).not.toHaveBeenCalled();
    writes.mockRestore();
    /* eslint-enable @typescript-eslint/no-require-imports */
  });
});
