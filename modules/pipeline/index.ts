import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { SfnStateMachine } from '@cdktf/provider-aws/lib/sfn-state-machine';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../../environments';
import { partitionOf, policyJson, serviceTrustPolicy } from '../iam';
import { pipelineDefinition } from './definition';
import { executionLogStatements, mergeStatements } from './integrations';

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
    const { definition, statements } = pipelineDefinition({
      config,
      partition,
      region,
      accountId,
      clusterArn: props.clusterArn,
      clusterName: props.clusterName,
      taskDefinitionArn: props.taskDefinitionArn,
      taskDefinitionFamilyArn: props.taskDefinitionFamilyArn,
      workerRoleArns: [props.taskRoleArn, props.executionRoleArn],
      containerName: props.containerName,
      subnetIds: props.subnetIds,
      securityGroupIds: [props.securityGroupId],
      tableName: props.tableName,
      tableArn: props.tableArn,
      queueUrl: props.queueUrl,
      queueArn: props.queueArn,
      dispatcherFunctionArn: props.dispatcherFunctionArn,
    });
    // Least privilege by construction: what the Task states need, and the log delivery.
    new IamRolePolicy(this, 'policy', {
      role: role.id,
      name: 'run-jobs',
      policy: policyJson(...mergeStatements(statements), ...executionLogStatements()),
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
