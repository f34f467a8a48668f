/**
 * AwsClient types each call by its command: the typed checks here fail `npm run typecheck` if an SDK client
 * stops being an AwsClient or a command's output loses its SDK type.
 */
import { SFNClient, StartExecutionCommand, type StartExecutionCommandOutput } from '@aws-sdk/client-sfn';
import { ReceiveMessageCommand, SQSClient, type ReceiveMessageCommandOutput } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, type GetCommandOutput } from '@aws-sdk/lib-dynamodb';
import { standIn, type AwsClient, type OutputOf } from '../../functions/runtime';

type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

test("a command's output is the one its SDK class declares", async () => {
  const same: [Same<OutputOf<ReceiveMessageCommand>, ReceiveMessageCommandOutput>, Same<OutputOf<GetCommand>, GetCommandOutput>] = [true, true];
  const answered = await startThrough(standIn({ send: async () => ({ executionArn: 'arn:x', startDate: new Date(0) }) }));
  const started: Same<typeof answered, StartExecutionCommandOutput> = true;
  expect([...same, started, answered.executionArn]).toEqual([true, true, true, 'arn:x']);
});

test("the SDK's clients, plain and document, are AwsClients", () => {
  const clients: AwsClient[] = [
    new SQSClient({ region: 'eu-west-1' }),
    new SFNClient({ region: 'eu-west-1' }),
    DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' })),
  ];
  expect(clients.every((client) => typeof client.send === 'function')).toBe(true);
});

test('a stand-in is the object it was given, answering as it answers', async () => {
  const fake = { send: async (command: { input: object }) => ({ echoed: command.input }) };
  const client = standIn(fake);
  expect(client).toBe(fake);
  expect(await client.send(new GetCommand({ TableName: 't', Key: { pk: 'a' } }))).toEqual({ echoed: { TableName: 't', Key: { pk: 'a' } } });
});

function startThrough(sfn: AwsClient) {
  return sfn.send(new StartExecutionCommand({ stateMachineArn: 'arn:aws:states:eu-west-1:111111111111:stateMachine:s' }));
}
