import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { startMoto, type MotoServer } from '../../verify/moto';
import { BATCH_TABLE, PK_TABLE } from './dynalite';

/**
 * DynamoDB for the tests: moto's server (getmoto/moto, an implementation nobody here wrote), with transactions and
 * conditions as DynamoDB runs them. One server per test file; each test makes its own tables.
 */
export interface MotoDynamo {
  readonly server: MotoServer;
  readonly client: DynamoDBClient;
  /** Default marshalling, as the Lambda functions build their client. */
  readonly ddb: DynamoDBDocumentClient;
  /** The stage's two tables (state: `pk`; batches: `execution`), new and empty. */
  createTables(): Promise<{ tableName: string; batchesTableName: string }>;
  close(): Promise<void>;
}

// Keyed like the stage's state table: one definition, shared with the dynalite server.
export { BATCH_TABLE, PK_TABLE };

let tables = 0;

export async function startMotoDynamo(): Promise<MotoDynamo> {
  const server = await startMoto({ accountId: '111111111111', region: 'eu-west-1' });
  const client = new DynamoDBClient(server.clientConfig());
  const ddb = DynamoDBDocumentClient.from(client);
  return {
    server,
    client,
    ddb,
    async createTables() {
      const n = ++tables;
      const tableName = `sluice-test-state-${n}`;
      const batchesTableName = `sluice-test-batches-${n}`;
      await client.send(new CreateTableCommand({ TableName: tableName, ...PK_TABLE }));
      await client.send(new CreateTableCommand({ TableName: batchesTableName, ...BATCH_TABLE }));
      return { tableName, batchesTableName };
    },
    async close() {
      client.destroy();
      await server.stop();
    },
  };
}
