import { objectsPerTaskOf, routeCpuOf, stagePacks } from '../../environments';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { DynamodbTable } from '@cdktf/provider-aws/lib/dynamodb-table';
import { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function';
import { LambdaFunctionEventInvokeConfig } from '@cdktf/provider-aws/lib/lambda-function-event-invoke-config';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission';
import { SfnStateMachine } from '@cdktf/provider-aws/lib/sfn-state-machine';
import { configurePoolSettingsFromEnv } from '../../functions/environment';
import type { PolicyDocument } from '../../modules/iam';
import { LAMBDA_NODE_MAJOR } from '../../modules/node-function';
import { leaseSeconds } from '../../modules/run-jobs/timing';
import { fakeAttribute } from '../../twin/synthesized-stage';
import { decide } from '../support/iam';
import { STAGES, resolveReferences, resourceNamed, resourcesOf, synthStage } from '../support/synth';

test('the tests run on the Node.js major the Lambda functions are deployed on', () => {
  expect(Number(process.versions.node.split('.')[0])).toBe(LAMBDA_NODE_MAJOR);
  expect(LAMBDA_NODE_MAJOR).toBe(22);
});

describe.each(STAGES)('stage %s pipeline resources', (stage) => {
  const { stack, synthesized, json, config } = synthStage(stage);
  const prefix = config.namePrefix;

  test('state table: on demand, point-in-time recovery, TTL, deletion protected unless the stage allows destroy', () => {
    expect(synthesized).toHaveResourceWithProperties(DynamodbTable, {
      name: `${prefix}-state`,
      billing_mode: 'PAY_PER_REQUEST',
      hash_key: 'pk',
      point_in_time_recovery: { enabled: true },
      ttl: { attribute_name: 'ttl', enabled: true },
      deletion_protection_enabled: !config.allowDestroy,
    });
  });

  test('allowDestroy decides whether destroy may take the data: table, bucket versions, images', () => {
    expect(resourceNamed(json, 'aws_s3_bucket', 'bucket_private').force_destroy).toBe(config.allowDestroy);
    expect(resourceNamed(json, 'aws_ecr_repository', 'repository').force_delete).toBe(config.allowDestroy);
    expect({ dev: true, stg: false, prod: false }[stage]).toBe(config.allowDestroy);
  });

  test('the limiter is seeded from the stage config at deploy', () => {
    const [[, seed]] = resourcesOf(json, 'aws_lambda_invocation');
    expect(JSON.parse(seed.input as string)).toEqual({
      budgetVcpu: config.capacity.vcpuBudget,
      ratePerSecond: config.capacity.launchRatePerSecond,
      burst: config.capacity.launchBurst,
    });
  });

  test('the seed runs only once configure-pool may write the pool (its role policy exists)', () => {
    // Without this, a first apply can invoke the function before IAM has its policy: AccessDenied mid-apply.
    const [[, seed]] = resourcesOf(json, 'aws_lambda_invocation');
    const [[policyName]] = resourcesOf(json, 'aws_iam_role_policy').filter(([name]) => name.includes('configure-pool'));
    expect(seed.depends_on).toContain(`aws_iam_role_policy.${policyName}`);
  });

  test('the state machine role trusts Step Functions acting for this state machine only (review L1)', () => {
    const trust = JSON.parse(String(resourceNamed(json, 'aws_iam_role', 'pipeline_role').assume_role_policy));
    expect(trust.Statement[0].Condition).toEqual({
      StringEquals: { 'aws:SourceAccount': config.account.id },
      ArnLike: { 'aws:SourceArn': `arn:aws:states:${config.account.region}:${config.account.id}:stateMachine:${config.namePrefix}-jobs` },
    });
  });

  test('Standard state machine logging to CloudWatch, timing out with its leases', () => {
    expect(synthesized).toHaveResourceWithProperties(SfnStateMachine, {
      name: `${prefix}-jobs`,
      type: 'STANDARD',
      logging_configuration: {
        include_execution_data: true,
        level: 'ERROR',
        log_destination: expect.stringMatching(/aws_cloudwatch_log_group\.pipeline_logs.*\.arn\}:\*$/),
      },
    });
    const definition = JSON.parse(resourceNamed(json, 'aws_sfn_state_machine', 'state-machine').definition as string);
    expect(definition.TimeoutSeconds).toBe(leaseSeconds(config));
    expect(definition.States.RunJobs.MaxConcurrency).toBe(config.capacity.mapMaxConcurrency);
    const states = definition.States.RunJobs.ItemProcessor.States;
    // RunTask's own errors are told apart first; throttling is retried by its copy, with full jitter.
    expect(states.RunTask.Retry).toBeUndefined();
    expect(states.RunTaskWhileThrottled.Retry).toEqual([
      expect.objectContaining({
        ErrorEquals: ['ECS.AmazonECSException', 'AmazonECS.Unknown', 'ECS.InvalidParameterException'],
        JitterStrategy: 'FULL',
        MaxDelaySeconds: config.retry.ecsApi.maxDelaySeconds,
      }),
    ]);
    if (stagePacks(config)) {
      // A stage that packs hands each task's end to the finisher, which writes each object's result (modules/packing tests).
      expect(states.FinishJob.Resource).toBe('arn:aws:states:::lambda:invoke');
    } else {
      // The result and the lease's release: one transaction through the AWS SDK integration.
      expect(states.FinishJob.Resource).toBe('arn:aws:states:::aws-sdk:dynamodb:transactWriteItems');
      expect(states.FinishJob.Parameters.TransactItems).toHaveLength(2);
      expect(states.ReturnForCapacity.Parameters.DelaySeconds).toBe(config.capacity.capacityRetryDelaySeconds);
    }
    expect(definition.States.RunJobs.End).toBe(true);
  });

  test('Lambdas: Node.js 22 on arm64, own log groups; one dispatcher and one janitor at a time', () => {
    for (const name of ['dispatcher', 'janitor', 'configure-pool']) {
      expect(synthesized).toHaveResourceWithProperties(LambdaFunction, {
        function_name: `${prefix}-${name}`,
        runtime: `nodejs${LAMBDA_NODE_MAJOR}.x`,
        architectures: ['arm64'],
        logging_config: { log_format: 'JSON', log_group: expect.stringMatching(/aws_cloudwatch_log_group\.(admission|janitor)_/) },
      });
    }
    expect(resourceNamed(json, 'aws_lambda_function', 'dispatcher_function').reserved_concurrent_executions).toBe(1);
    expect(resourceNamed(json, 'aws_lambda_function', 'janitor_function').reserved_concurrent_executions).toBe(1);
    expect(synthesized).toHaveResourceWithProperties(LambdaFunctionEventInvokeConfig, { maximum_event_age_in_seconds: 60, maximum_retry_attempts: 0 });
    const dispatcher = resourceNamed(json, 'aws_lambda_function', 'dispatcher_function');
    expect(dispatcher.source_code_hash).toMatch(/^\$\{filebase64sha256\("assets\/.*\.zip"\)\}$/);
    expect((dispatcher.environment as { variables: Record<string, string> }).variables).toMatchObject({
      TASK_VCPU: String(config.task.cpu / 1024),
      JOBS_PER_EXECUTION: String(config.capacity.jobsPerExecution),
      LEASE_SECONDS: String(leaseSeconds(config)),
      INPUT_PREFIX: config.bucket.inputPrefix,
    });
    // configure-pool knows a task's vCPU (with routes, the smallest any route runs), so an operator cannot set a
    // budget the pool item cannot hold.
    const configure = resourceNamed(json, 'aws_lambda_function', 'configure-pool_function');
    expect(configurePoolSettingsFromEnv((configure.environment as { variables: Record<string, string> }).variables)).toEqual({
      tableName: expect.stringContaining('aws_dynamodb_table.'),
      taskVcpu: Math.min(...(config.routes ?? [{}]).map((route) => routeCpuOf(config.task, route) / 1024)),
      jobsPerExecution: config.capacity.jobsPerExecution,
      accountVcpuQuota: config.capacity.accountVcpuQuota,
      // A stage that packs: the most objects a task runs, a lease each (the sweep's bound counts them).
      ...(stagePacks(config) ? { objectsPerTask: Math.max(...(config.routes ?? [undefined]).map((route) => objectsPerTaskOf(config, route))) } : {}),
    });
  });

  test('the janitor gives back a never-started batch only after the run that admitted it can no longer start it', () => {
    const dispatcher = resourceNamed(json, 'aws_lambda_function', 'dispatcher_function');
    const janitor = resourceNamed(json, 'aws_lambda_function', 'janitor_function');
    const grace = Number((janitor.environment as { variables: Record<string, string> }).variables.START_GRACE_SECONDS);
    expect(grace).toBeGreaterThan(Number(dispatcher.timeout));
  });

  test('the dispatcher is woken by uploads, every minute, and the janitor by ended executions and a schedule; the capacity reader every minute', () => {
    const targets = resourcesOf(json, 'aws_cloudwatch_event_target').map(([, t]) => t);
    const toFunction = (fn: string) => targets.filter((t) => new RegExp(`^\\$\\{aws_lambda_function\\.([a-z-]+_)?${fn}_function_`).test(String(t.arn)));
    expect(
      toFunction('dispatcher')
        .map((t) => JSON.parse(t.input as string).reason)
        .sort(),
    ).toEqual([...Array.from({ length: config.routes?.length ?? 1 }, () => 'object-created'), 'schedule']);
    // Each route's rule wakes it. The schedule sends a constant; the execution-ended rule passes the event (with input set, EventBridge would
    // pass nothing of it, and the janitor could not tell which execution ended).
    const janitorTargets = toFunction('janitor');
    expect(janitorTargets.filter((t) => t.input !== undefined).map((t) => JSON.parse(t.input as string).reason)).toEqual(['schedule']);
    const onEnd = janitorTargets.find((t) => t.input === undefined)!;
    expect(onEnd.rule).toMatch(/aws_cloudwatch_event_rule\.janitor_janitor-on-execution-end-rule/);
    const uploadTarget = toFunction('dispatcher').find((t) => JSON.parse(t.input as string).reason === 'object-created')!;
    expect(uploadTarget.rule).toMatch(/aws_cloudwatch_event_rule\.intake_object-created/);
    // Each trigger lives with its rule: the upload rule's targets (and the dispatcher's permission) are the intake's.
    expect(stack.intake.node.tryFindChild('dispatch-on-upload-target')).toBeInstanceOf(CloudwatchEventTarget);
    expect(stack.intake.node.tryFindChild('dispatch-on-upload-permission')).toBeInstanceOf(LambdaPermission);
    const ended = resourceNamed(json, 'aws_cloudwatch_event_rule', 'janitor-on-execution-end');
    expect(JSON.parse(ended.event_pattern as string).detail.status).toEqual(['FAILED', 'TIMED_OUT', 'ABORTED']);
    expect(toFunction('capacity').map((t) => JSON.parse(t.input as string).reason)).toEqual(['schedule']);
    expect(resourceNamed(json, 'aws_cloudwatch_event_rule', 'capacity-every-minute').schedule_expression).toBe('rate(1 minute)');
    // One for each rule that invokes a function: each route's upload rule among them.
    expect(resourcesOf(json, 'aws_lambda_permission')).toHaveLength(4 + (config.routes?.length ?? 1));
  });
});

describe('least privilege, simulated against the synthesized policies (dev)', () => {
  const { json, config } = synthStage('dev');
  const account = config.account.id;
  const region = config.account.region;
  const tableArn = `arn:aws:dynamodb:${region}:${account}:table/${config.namePrefix}-state`;
  // References become the twin's stand-ins for what apply would know (dev's account and Region).
  const resolve = (text: string) => resolveReferences(text, json, fakeAttribute);
  const policyOf = (fragment: string): PolicyDocument => JSON.parse(resolve(resourceNamed(json, 'aws_iam_role_policy', fragment).policy as string));
  const cluster = `arn:aws:ecs:${region}:${account}:cluster/${config.namePrefix}`;

  test('state machine role: RunTask on the worker family in this cluster, PassRole only the two task roles to ECS tasks', async () => {
    const policy = policyOf('pipeline_policy');
    const family = `arn:aws:ecs:${region}:${account}:task-definition/${config.namePrefix}-worker:3`;
    expect(await decide(policy, { action: 'ecs:RunTask', resource: family, context: { 'ecs:cluster': cluster } })).toBe('Allowed');
    expect(await decide(policy, { action: 'ecs:RunTask', resource: family, context: { 'ecs:cluster': `${cluster}-other` } })).toBe('ImplicitlyDenied');
    expect(
      await decide(policy, {
        action: 'ecs:RunTask',
        resource: `arn:aws:ecs:${region}:${account}:task-definition/other:1`,
        context: { 'ecs:cluster': cluster },
      }),
    ).toBe('ImplicitlyDenied');
    const taskRole = `arn:aws:iam::${account}:role/${config.namePrefix}-task`;
    expect(await decide(policy, { action: 'iam:PassRole', resource: taskRole, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } })).toBe('Allowed');
    expect(await decide(policy, { action: 'iam:PassRole', resource: taskRole, context: { 'iam:PassedToService': 'lambda.amazonaws.com' } })).toBe(
      'ImplicitlyDenied',
    );
    expect(
      await decide(policy, {
        action: 'iam:PassRole',
        resource: `arn:aws:iam::${account}:role/admin`,
        context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' },
      }),
    ).toBe('ImplicitlyDenied');
    const managedRule = `arn:aws:events:${region}:${account}:rule/StepFunctionsGetEventsForECSTaskRule`;
    expect(await decide(policy, { action: 'events:PutRule', resource: managedRule })).toBe('Allowed');
    expect(await decide(policy, { action: 'events:PutRule', resource: `arn:aws:events:${region}:${account}:rule/anything` })).toBe('ImplicitlyDenied');
  });

  test('state machine role: only the ledger rows, released counters and the pool (the vCPU-limit hold), only UpdateItem; back to its own queue', async () => {
    const policy = policyOf('pipeline_policy');
    const update = (keys: string[]) => decide(policy, { action: 'dynamodb:UpdateItem', resource: tableArn, context: { 'dynamodb:LeadingKeys': keys } });
    expect(await update(['POOL'])).toBe('Allowed');
    expect(await update(['JOB#0123'])).toBe('Allowed');
    expect(await update(['RELEASED#17'])).toBe('Allowed');
    expect(await update(['SOMETHING-ELSE'])).toBe('ImplicitlyDenied');
    expect(await decide(policy, { action: 'dynamodb:DeleteItem', resource: tableArn, context: { 'dynamodb:LeadingKeys': ['POOL'] } })).toBe('ImplicitlyDenied');
    expect(await decide(policy, { action: 'dynamodb:Scan', resource: tableArn })).toBe('ImplicitlyDenied');
    expect(await decide(policy, { action: 'sqs:SendMessage', resource: `arn:aws:sqs:${region}:${account}:${config.namePrefix}-intake` })).toBe('Allowed');
    expect(await decide(policy, { action: 'sqs:SendMessage', resource: `arn:aws:sqs:${region}:${account}:${config.namePrefix}-intake-dlq` })).toBe(
      'ImplicitlyDenied',
    );
  });

  test('dispatcher role: takes from the intake queue, puts messages back there, sends poison to its DLQ, starts only this state machine', async () => {
    const policy = policyOf('admission_dispatcher_policy');
    const queue = `arn:aws:sqs:${region}:${account}:${config.namePrefix}-intake`;
    const dlq = `arn:aws:sqs:${region}:${account}:${config.namePrefix}-intake-dlq`;
    expect(await decide(policy, { action: 'sqs:ReceiveMessage', resource: queue })).toBe('Allowed');
    expect(await decide(policy, { action: 'sqs:SendMessage', resource: dlq })).toBe('Allowed');
    expect(await decide(policy, { action: 'sqs:SendMessage', resource: queue })).toBe('Allowed');
    expect(await decide(policy, { action: 'sqs:SendMessage', resource: `${queue}-other` })).toBe('ImplicitlyDenied');
    expect(await decide(policy, { action: 'sqs:PurgeQueue', resource: queue })).toBe('ImplicitlyDenied');
    const machine = `arn:aws:states:${region}:${account}:stateMachine:${config.namePrefix}-jobs`;
    expect(await decide(policy, { action: 'states:StartExecution', resource: machine })).toBe('Allowed');
    expect(await decide(policy, { action: 'states:StartExecution', resource: `${machine}-other` })).toBe('ImplicitlyDenied');
  });

  test('dispatcher role: admissions (pool, rows, released counters for a give-back) and batch records; no scan, no delete of rows', async () => {
    const policy = policyOf('admission_dispatcher_policy');
    const batchesArn = `arn:aws:dynamodb:${region}:${account}:table/${config.namePrefix}-batches`;
    const on = (action: string, keys: string[]) => decide(policy, { action, resource: tableArn, context: { 'dynamodb:LeadingKeys': keys } });
    expect(await on('dynamodb:UpdateItem', ['POOL'])).toBe('Allowed');
    expect(await on('dynamodb:UpdateItem', ['JOB#1'])).toBe('Allowed');
    expect(await on('dynamodb:BatchGetItem', ['RELEASED#3'])).toBe('Allowed');
    expect(await on('dynamodb:DeleteItem', ['JOB#1'])).toBe('ImplicitlyDenied');
    expect(await decide(policy, { action: 'dynamodb:Scan', resource: tableArn })).toBe('ImplicitlyDenied');
    expect(await decide(policy, { action: 'dynamodb:PutItem', resource: batchesArn })).toBe('Allowed');
    expect(await decide(policy, { action: 'dynamodb:DeleteItem', resource: batchesArn })).toBe('Allowed');
  });

  test('janitor role: scans only the batches table; repairs only counters (it re-checks them all)', async () => {
    const policy = policyOf('janitor_policy');
    const batchesArn = `arn:aws:dynamodb:${region}:${account}:table/${config.namePrefix}-batches`;
    expect(await decide(policy, { action: 'dynamodb:Scan', resource: batchesArn })).toBe('Allowed');
    expect(await decide(policy, { action: 'dynamodb:Scan', resource: tableArn })).toBe('ImplicitlyDenied');
    const on = (action: string, keys: string[]) => decide(policy, { action, resource: tableArn, context: { 'dynamodb:LeadingKeys': keys } });
    expect(await on('dynamodb:ConditionCheckItem', ['POOL'])).toBe('Allowed');
    expect(await on('dynamodb:UpdateItem', ['POOL'])).toBe('Allowed'); // a repair that raises admitted
    expect(await on('dynamodb:UpdateItem', ['RELEASED#0'])).toBe('Allowed');
    expect(await on('dynamodb:PutItem', ['POOL'])).toBe('ImplicitlyDenied');
    const machine = `arn:aws:states:${region}:${account}:stateMachine:${config.namePrefix}-jobs`;
    expect(await decide(policy, { action: 'states:ListExecutions', resource: machine })).toBe('Allowed');
    expect(await decide(policy, { action: 'states:StopExecution', resource: `${machine.replace(':stateMachine:', ':execution:')}:x` })).toBe(
      'ImplicitlyDenied',
    );
  });

  test('capacity reader role: only the Fargate quotas the stage uses, the usage metric, and the pool', async () => {
    const policy = policyOf('admission_capacity_policy');
    const quota = (code: string) => `arn:aws:servicequotas:${region}:${account}:fargate/${code}`;
    expect(await decide(policy, { action: 'servicequotas:GetServiceQuota', resource: quota('L-36FBB829') })).toBe('Allowed'); // dev runs on Spot
    expect(await decide(policy, { action: 'servicequotas:GetServiceQuota', resource: quota('L-3032A538') })).toBe('ImplicitlyDenied');
    expect(await decide(policy, { action: 'cloudwatch:GetMetricData', resource: '*' })).toBe('Allowed');
    expect(await decide(policy, { action: 'dynamodb:UpdateItem', resource: tableArn, context: { 'dynamodb:LeadingKeys': ['POOL'] } })).toBe('Allowed');
    expect(await decide(policy, { action: 'dynamodb:UpdateItem', resource: tableArn, context: { 'dynamodb:LeadingKeys': ['JOB#1'] } })).toBe(
      'ImplicitlyDenied',
    );
  });

  test('configure-pool role may touch the pool item and nothing else', async () => {
    const policy = policyOf('admission_configure-pool_policy');
    const update = (keys: string[]) => decide(policy, { action: 'dynamodb:UpdateItem', resource: tableArn, context: { 'dynamodb:LeadingKeys': keys } });
    expect(await update(['POOL'])).toBe('Allowed');
    expect(await update(['JOB#1'])).toBe('ImplicitlyDenied');
  });
});
