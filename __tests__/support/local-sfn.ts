import { DeleteItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EnvironmentConfig } from '../../environments';
import type { StateMachineDefinition, State } from '../../modules/pipeline/asl';
import { resolveReferences, resourcesOf, synthStage, type StageName } from './synth';

export const FAKE = {
  account: '111111111111',
  clusterArn: 'arn:aws:ecs:eu-west-1:111111111111:cluster/sluice-test',
  taskDefinitionArn: 'arn:aws:ecs:eu-west-1:111111111111:task-definition/sluice-test-worker:7',
};

/**
 * The state machine definition exactly as synthesized for a stage, references replaced by concrete
 * values (the table's real name, fake ARNs for the rest) the way `terraform apply` would fill them in.
 */
export function synthesizedDefinition(stage: StageName, config?: EnvironmentConfig, tableName?: string): StateMachineDefinition {
  const { json } = synthStage(stage, config);
  const [[, machine]] = resourcesOf(json, 'aws_sfn_state_machine');
  const resolved = resolveReferences(machine.definition as string, json, (type, _name, attribute) => {
    if (type === 'aws_dynamodb_table' && attribute === 'name' && tableName) return tableName;
    if (type === 'aws_ecs_cluster' && attribute === 'arn') return FAKE.clusterArn;
    if (type === 'aws_ecs_task_definition' && attribute === 'arn') return FAKE.taskDefinitionArn;
    if (attribute === 'id' && type === 'aws_subnet') return `subnet-0000000000000000${_name.length % 10}`;
    if (attribute === 'id' && type === 'aws_security_group') return 'sg-00000000000000000';
    return undefined;
  });
  if (/\$\{[a-z_]+\./.test(resolved)) throw new Error(`unresolved reference left in the definition: ${resolved.match(/\$\{[^}]+\}/)?.[0]}`);
  return JSON.parse(resolved);
}

export type LocalHandler = (input: any) => Promise<any>;

/** Every Task state, also those inside Map item processors, with its resource. */
export function taskStates(definition: { States: Record<string, State> }): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type === 'Task') found.push([name, state.Resource]);
    if (state.Type === 'Map') found.push(...taskStates(state.ItemProcessor));
  }
  return found;
}

/** Runs Step Functions' DynamoDB integration against a real DynamoDB-compatible server. */
export function dynamoIntegration(client: DynamoDBClient, action: string): LocalHandler {
  const commands: Record<string, new (input: any) => any> = {
    getItem: GetItemCommand,
    putItem: PutItemCommand,
    updateItem: UpdateItemCommand,
    deleteItem: DeleteItemCommand,
  };
  const Command = commands[action];
  if (!Command) throw new Error(`no local DynamoDB integration for ${action}`);
  return async (input) => {
    try {
      return await client.send(new Command(input));
    } catch (error) {
      // Step Functions names service errors `DynamoDB.<ExceptionName>`.
      const named = new Error((error as Error).message);
      named.name = `DynamoDB.${(error as Error).name}`;
      throw named;
    }
  };
}

/** Local handlers keyed by state name, chosen by each Task's Resource. */
export function localHandlers(
  definition: StateMachineDefinition,
  services: { dynamodb: DynamoDBClient; runTask: LocalHandler; invokeLambda: LocalHandler },
): Record<string, LocalHandler> {
  const handlers: Record<string, LocalHandler> = {};
  for (const [name, resource] of taskStates(definition)) {
    const dynamo = resource.match(/:states:::dynamodb:(\w+)$/);
    if (dynamo) handlers[name] = dynamoIntegration(services.dynamodb, dynamo[1]);
    else if (resource.endsWith(':states:::ecs:runTask.sync')) handlers[name] = services.runTask;
    else if (resource.endsWith(':states:::lambda:invoke')) handlers[name] = services.invokeLambda;
    else throw new Error(`state ${name}: no local handler for ${resource}`);
  }
  return handlers;
}

/** The error `ecs:runTask.sync` raises when the container exits non-zero: the stopped task as the Cause. */
export function taskFailed(exitCode: number | undefined, stopCode = 'EssentialContainerExited'): Error {
  const container = exitCode === undefined ? { Name: 'worker', LastStatus: 'STOPPED' } : { Name: 'worker', ExitCode: exitCode, LastStatus: 'STOPPED' };
  const error = new Error(JSON.stringify({ TaskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/sluice-test/abc', StopCode: stopCode, Containers: [container] }));
  error.name = 'States.TaskFailed';
  return error;
}

export function ecsError(name: 'ECS.AmazonECSException' | 'AmazonECS.Unknown', message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}
