import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { SfnStateMachine } from '@cdktf/provider-aws/lib/sfn-state-machine';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../../environments';
import { partitionOf, policyJson, serviceTrustPolicy, type PolicyStatement } from '../iam';
import { leadingKeys, STATE_ITEMS } from '../limiter';
import { pipelineDefinition } from './definition';

export interface PipelineProps {
  readonly config: EnvironmentConfig;
  readonly clusterArn: string;
  readonly clusterName: string;
  readonly taskDefinitionArn: string;
  readonly taskDefinitionFamilyArn: string;
  readonly containerName: string;
  readonly taskRoleArn: string;
  readonly executionRoleArn: string;
  readonly subnetIds: readonly string[];
  readonly securityGroupId: string;
  readonly tableName: string;
  readonly tableArn: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly dispatcherFunctionArn: string;
}

export function stateMachineName(namePrefix: string): string {
  return `${namePrefix}-jobs`;
}

export function stateMachineArnOf(config: EnvironmentConfig): string {
  const { region, id } = config.account;
  return `arn:${partitionOf(region)}:states:${region}:${id}:stateMachine:${stateMachineName(config.namePrefix)}`;
}

/** The Standard workflow that runs admitted jobs, with a role that can do exactly that. */
export class Pipeline extends Construct {
  readonly stateMachineArn: string;
  readonly stateMachineName: string;
  /** Its execution log (level ERROR, with execution data). */
  readonly logGroupName: string;

  constructor(scope: Construct, id: string, props: PipelineProps) {
    super(scope, id);
    const { config } = props;
    const { region, id: accountId } = config.account;
    const partition = partitionOf(region);
    const name = stateMachineName(config.namePrefix);

    const logGroup = new CloudwatchLogGroup(this, 'logs', {
      name: `/aws/vendedlogs/states/${name}`,
      retentionInDays: config.logRetentionDays,
    });
    this.logGroupName = logGroup.name;
    const role = new IamRole(this, 'role', {
      name: `${name}-sfn`,
      description: 'Runs sluice jobs: RunTask on the worker family, lease and ledger writes, wake the dispatcher',
      assumeRolePolicy: serviceTrustPolicy('states.amazonaws.com', accountId),
    });
    new IamRolePolicy(this, 'policy', {
      role: role.id,
      name: 'run-jobs',
      policy: policyJson(...stateMachineStatements(props, partition, region, accountId)),
    });

    const definition = pipelineDefinition({
      config,
      partition,
      clusterArn: props.clusterArn,
      taskDefinitionArn: props.taskDefinitionArn,
      containerName: props.containerName,
      subnetIds: props.subnetIds,
      securityGroupIds: [props.securityGroupId],
      tableName: props.tableName,
      queueUrl: props.queueUrl,
      dispatcherFunctionArn: props.dispatcherFunctionArn,
    });
    const machine = new SfnStateMachine(this, 'state-machine', {
      name,
      type: 'STANDARD',
      roleArn: role.arn,
      definition: JSON.stringify(definition),
      loggingConfiguration: { logDestination: `${logGroup.arn}:*`, includeExecutionData: true, level: 'ERROR' },
    });
    this.stateMachineArn = machine.arn;
    this.stateMachineName = name;
  }
}

/** Least privilege for the state machine, derived from the resources it touches. */
export function stateMachineStatements(props: PipelineProps, partition: string, region: string, accountId: string): PolicyStatement[] {
  return [
    {
      Sid: 'RunWorkerTasks',
      Effect: 'Allow',
      Action: 'ecs:RunTask',
      Resource: props.taskDefinitionFamilyArn,
      Condition: { ArnEquals: { 'ecs:cluster': props.clusterArn } },
    },
    {
      // Tags on RunTask (the job id, propagated tags) need TagResource, for that call only.
      Sid: 'TagWorkerTasksAtLaunch',
      Effect: 'Allow',
      Action: 'ecs:TagResource',
      Resource: `arn:${partition}:ecs:${region}:${accountId}:task/${props.clusterName}/*`,
      Condition: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
    },
    {
      Sid: 'WatchAndStopWorkerTasks',
      Effect: 'Allow',
      Action: ['ecs:DescribeTasks', 'ecs:StopTask'],
      Resource: `arn:${partition}:ecs:${region}:${accountId}:task/${props.clusterName}/*`,
    },
    {
      Sid: 'PassOnlyTheWorkerRoles',
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: [props.taskRoleArn, props.executionRoleArn],
      Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    },
    {
      // How .sync learns that a task stopped: Step Functions' managed rule.
      Sid: 'SyncRunTaskManagedRule',
      Effect: 'Allow',
      Action: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
      Resource: `arn:${partition}:events:${region}:${accountId}:rule/StepFunctionsGetEventsForECSTaskRule`,
    },
    {
      // Results and lease releases (a row and a released counter, in one transaction); the vCPU-limit hold on POOL.
      Sid: 'LedgerRowsAndCounters',
      Effect: 'Allow',
      Action: 'dynamodb:UpdateItem',
      Resource: props.tableArn,
      Condition: leadingKeys([STATE_ITEMS.jobs, STATE_ITEMS.released, STATE_ITEMS.pool]),
    },
    { Sid: 'BackToTheQueue', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: props.queueArn },
    {
      Sid: 'WakeTheDispatcher',
      Effect: 'Allow',
      Action: 'lambda:InvokeFunction',
      Resource: props.dispatcherFunctionArn,
    },
    {
      // CloudWatch Logs delivery for Step Functions supports no resource-level permissions.
      Sid: 'DeliverExecutionLogs',
      Effect: 'Allow',
      Action: [
        'logs:CreateLogDelivery',
        'logs:GetLogDelivery',
        'logs:UpdateLogDelivery',
        'logs:DeleteLogDelivery',
        'logs:ListLogDeliveries',
        'logs:PutResourcePolicy',
        'logs:DescribeResourcePolicies',
        'logs:DescribeLogGroups',
      ],
      Resource: '*',
    },
  ];
}
