import * as DynamoDB from '@aws-sdk/client-dynamodb';
import type { EnvironmentConfig } from '../../environments';
import { INTEGRATIONS, integrationResource, type StateMachineDefinition } from '../../modules/run-jobs/asl';
import { fakeAttribute } from '../../twin/synthesized-stage';
import type { DynamoDbApi } from '../../twin/engines/dynamo';
import { dynamoDbSdkTask, dynamoDbTask, taskStates } from '../../twin/engines/stepfunctions';
import { resolveReferences, resourcesOf, synthStage, type StageName } from './synth';

/**
 * The state machine definition exactly as synthesized for a stage, references replaced by concrete
 * values (the table's real name, fake ARNs for the rest) the way `terraform apply` would fill them in.
 */
export function synthesizedDefinition(stage: StageName, config?: EnvironmentConfig, tableName?: string): StateMachineDefinition {
  const { json } = synthStage(stage, config);
  const [[, machine]] = resourcesOf(json, 'aws_sfn_state_machine');
  const resolved = resolveReferences(machine.definition as string, json, (type, name, attribute, resource) =>
    type === 'aws_dynamodb_table' && attribute === 'name' && tableName ? tableName : fakeAttribute(type, name, attribute, resource, json),
  );
  if (/\$\{[a-z_]+\./.test(resolved)) throw new Error(`unresolved reference left in the definition: ${resolved.match(/\$\{[^}]+\}/)?.[0]}`);
  return JSON.parse(resolved);
}

export type LocalHandler = (input: any) => Promise<any>;

/** Local handlers keyed by state name, chosen by each Task's Resource. */
export function localHandlers(
  definition: StateMachineDefinition,
  services: { dynamodb: DynamoDB.DynamoDBClient; runTask: LocalHandler; invokeLambda: LocalHandler; sendMessage: LocalHandler },
): Record<string, LocalHandler> {
  const dynamodb = sdkApi(services.dynamodb);
  const byResource: Record<string, () => LocalHandler> = {
    [integrationResource('aws', INTEGRATIONS.ecsRunTaskSync)]: () => services.runTask,
    [integrationResource('aws', INTEGRATIONS.lambdaInvoke)]: () => services.invokeLambda,
    [integrationResource('aws', INTEGRATIONS.sqsSendMessage)]: () => services.sendMessage,
    [integrationResource('aws', INTEGRATIONS.dynamodbTransactWriteItems)]: () => dynamoDbSdkTask(dynamodb, 'transactWriteItems')!,
    [integrationResource('aws', INTEGRATIONS.dynamodbUpdateItem)]: () => dynamoDbTask(dynamodb, 'updateItem')!,
  };
  const handlers: Record<string, LocalHandler> = {};
  for (const { name, resource } of taskStates(definition)) {
    const handler = byResource[resource];
    if (!handler) throw new Error(`state ${name}: no local handler for ${resource}`);
    handlers[name] = handler();
  }
  return handlers;
}

/** The low-level SDK client as the integration's DynamoDB: these tests go through the SDK to moto's server. */
function sdkApi(client: DynamoDB.DynamoDBClient): DynamoDbApi {
  return {
    async call(operation, input) {
      const Command = (DynamoDB as unknown as Record<string, new (input: object) => DynamoDB.GetItemCommand>)[`${operation}Command`];
      const { $metadata: _metadata, ...output } = await client.send(new Command(input));
      return output;
    },
  };
}

/** The error `ecs:runTask.sync` raises when the container exits non-zero: the stopped task as the Cause. */
export function taskFailed(exitCode: number | undefined, stopCode = 'EssentialContainerExited'): Error {
  const container = exitCode === undefined ? { Name: 'worker', LastStatus: 'STOPPED' } : { Name: 'worker', ExitCode: exitCode, LastStatus: 'STOPPED' };
  const error = new Error(JSON.stringify({ TaskArn: 'arn:aws:ecs:eu-west-1:111111111111:task/sluice-test/abc', StopCode: stopCode, Containers: [container] }));
  error.name = 'States.TaskFailed';
  return error;
}

export function ecsError(name: 'ECS.AmazonECSException' | 'AmazonECS.Unknown' | 'ECS.InvalidParameterException', message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}
