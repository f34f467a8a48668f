import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AddressInfo } from 'node:net';
import { FAILED_INDEX } from '../../functions/ledger';

// dynalite ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite = require('dynalite') as (options: Record<string, unknown>) => import('node:http').Server;

export interface LocalDynamo {
  readonly endpoint: string;
  readonly client: DynamoDBClient;
  readonly ddb: DynamoDBDocumentClient;
  /** Creates a table keyed like the stage's table (`pk`, string) and returns its name. */
  createTable(name?: string): Promise<string>;
  close(): Promise<void>;
}

/** A table keyed like the stage's state table: `pk`, a string; on demand; its sparse index of failed jobs. */
export const PK_TABLE = {
  KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  AttributeDefinitions: [
    { AttributeName: 'pk', AttributeType: 'S' },
    { AttributeName: FAILED_INDEX.hashKey, AttributeType: 'S' },
    { AttributeName: FAILED_INDEX.rangeKey, AttributeType: 'S' },
  ],
  GlobalSecondaryIndexes: [
    {
      IndexName: FAILED_INDEX.name,
      KeySchema: [
        { AttributeName: FAILED_INDEX.hashKey, KeyType: 'HASH' },
        { AttributeName: FAILED_INDEX.rangeKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...FAILED_INDEX.projected] },
    },
  ],
  BillingMode: 'PAY_PER_REQUEST',
} as const satisfies Omit<CreateTableCommandInput, 'TableName'>;

let tableCounter = 0;

/** A DynamoDB-compatible server (dynalite, in memory) on a random loopback port. */
export async function startDynalite(): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new DynamoDBClient({ endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  // Default marshalling, as the Lambda functions build their client: an undefined nested value is an error.
  const ddb = DynamoDBDocumentClient.from(client);
  return {
    endpoint,
    client,
    ddb,
    async createTable(name = `sluice-test-${++tableCounter}`) {
      await client.send(new CreateTableCommand({ TableName: name, ...PK_TABLE }));
      // Even with createTableMs 0, dynalite turns a table ACTIVE on a later tick.
      for (let tries = 0; tries < 100; tries++) {
        const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
        if (Table?.TableStatus === 'ACTIVE') return name;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      throw new Error(`dynalite table ${name} did not become ACTIVE`);
    },
    async close() {
      client.destroy();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
