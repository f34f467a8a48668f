import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { SfnStateMachine } from '@cdktf/provider-aws/lib/sfn-state-machine';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../../environments';
import type { Compute } from '../compute';
import { policyJson, serviceTrustPolicy } from '../iam';
import type { Intake } from '../intake';
import type { Network } from '../network';
import type { NodeFunction } from '../node-function';
import type { Observability } from '../observability';
import type { StateTable } from '../state-table';
import { runJobsDefinition, type RunJobsDefinition } from './definition';
import { executionLogStatements, mergeStatements } from './integrations';
import { stateMachineArnOf, stateMachineName } from '../../environments/names';

interface RunJobsProps {
  readonly config: EnvironmentConfig;
  /** The cluster, the worker's task definition, its roles and security group. */
  readonly compute: Compute;
  /** The private subnets tasks run in. */
  readonly network: Network;
  /** The ledger rows, released counters and pool the states write. */
  readonly stateTable: StateTable;
  /** The intake queue (with routes, each route's): a job without capacity goes back there. */
  readonly intake: Intake;
  /** The dispatcher, woken after each release by its functionArn, built from its name: `environments/names.ts` names both, so neither construct references the other (a cycle). */
  readonly dispatcher: NodeFunction;
  /** On a stage that packs (and only there): the finisher, which ends each packed task. */
  readonly finisher?: NodeFunction;
  readonly observability: Observability;
}

/** The Standard workflow that runs admitted jobs, with a role that can do exactly that. */
export class RunJobs extends Construct {
  readonly stateMachineArn: string;
  readonly stateMachineName: string;
  /** Its execution log (level ERROR, with execution data). */
  readonly logGroupName: string;

  constructor(scope: Construct, id: string, props: RunJobsProps) {
    super(scope, id);
    const { config } = props;
    const name = stateMachineName(config.namePrefix);

    const logGroup = new CloudwatchLogGroup(this, 'logs', {
      name: `/aws/vendedlogs/states/${name}`,
      retentionInDays: config.logRetentionDays,
    });
    this.logGroupName = logGroup.name;
    const role = this.executionRole(props, name);
    const definition = this.definitionWithItsPolicy(props, role);
    const machine = new SfnStateMachine(this, 'state-machine', {
      name,
      type: 'STANDARD',
      roleArn: role.arn,
      definition: JSON.stringify(definition),
      loggingConfiguration: { logDestination: `${logGroup.arn}:*`, includeExecutionData: true, level: 'ERROR' },
    });
    this.stateMachineArn = machine.arn;
    this.executionAlarms(props, name);
    this.stateMachineName = name;
  }

  /** The role Step Functions assumes; its policy comes with the definition (definitionWithItsPolicy). */
  private executionRole(props: RunJobsProps, name: string): IamRole {
    return new IamRole(this, 'role', {
      name: `${name}-sfn`,
      description: 'Runs sluice jobs: RunTask on the worker family, lease and ledger writes, wake the dispatcher',
      assumeRolePolicy: serviceTrustPolicy('states.amazonaws.com', props.config.account.id, stateMachineArnOf(props.config)),
    });
  }

  /** The definition, and on the role exactly what its Task states call: the two are built together so they cannot drift. */
  private definitionWithItsPolicy(props: RunJobsProps, role: IamRole): RunJobsDefinition['definition'] {
    const { config, compute, stateTable, intake } = props;
    const { definition, statements } = runJobsDefinition({
      config,
      table: { name: stateTable.tableName, arn: stateTable.tableArn },
      queue: intake.routes ? { routeArns: intake.routes.map((route) => route.queueArn) } : { url: intake.queueUrl, arn: intake.queueArn },
      task: {
        clusterArn: compute.clusterArn,
        clusterName: compute.clusterName,
        taskDefinitionArn: compute.taskDefinitionArn,
        taskDefinitionFamilyArn: compute.taskDefinitionFamilyArn,
        taskDefinitionFamilyArns: compute.taskDefinitionFamilyArns,
        roleArns: [compute.taskRoleArn, compute.executionRoleArn],
        containerName: compute.containerName,
        subnetIds: props.network.privateSubnetIds,
        securityGroupIds: [compute.securityGroupId],
      },
      dispatcher: { arn: props.dispatcher.functionArn },
      // The deployed function's ARN, unlike the dispatcher's built one: no execution reaches a packed task's end before
      // the finisher exists (it references nothing of the state machine's, so there is no cycle).
      ...(props.finisher ? { finisher: { arn: props.finisher.deployedArn } } : {}),
    });
    // Least privilege by construction: what the Task states need, and the log delivery.
    new IamRolePolicy(this, 'policy', {
      role: role.id,
      name: 'run-jobs',
      policy: policyJson(...mergeStatements(statements), ...executionLogStatements()),
    });
    return definition;
  }

  /** Alarms on this state machine's executions; its unfinished jobs are the janitor's (modules/janitor.ts). */
  private executionAlarms(props: RunJobsProps, name: string): void {
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted']) {
      props.observability.alarm({
        name: `jobs-${metric.replace('Executions', '').toLowerCase()}`,
        description: `A ${name} execution ended ${metric.replace('Executions', '')}; the janitor re-queues its unfinished jobs.`,
        namespace: 'AWS/States',
        metric,
        dimensions: { StateMachineArn: stateMachineArnOf(props.config) },
        statistic: 'Sum',
        threshold: 0,
      });
    }
  }
}
