import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AddressInfo } from 'node:net';
import { Testing } from 'cdktf';
import { batchesTableName, stateTableName } from '../../environments/names';
import { StateTable } from '../../modules/state-table';
import { tableInput } from '../../twin/table-input';
import { stageConfig } from './synth';

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

/**
 * The stage's tables as CreateTable inputs (without their names), read from the StateTable construct's synthesized
 * resources through the twin's translation, so each table and index is defined once, in modules/state-table.ts.
 */
const STAGE_TABLES = stageTableInputs();
/** The state table: `pk`, a string; on demand; its sparse index of failed jobs. */
export const PK_TABLE = STAGE_TABLES.state;
/** The batch records: keyed by `execution`; on demand. */
export const BATCH_TABLE = STAGE_TABLES.batches;

type TableShape = Omit<CreateTableCommandInput, 'TableName'>;

function stageTableInputs(): { state: TableShape; batches: TableShape } {
  const namePrefix = 'sluice-test';
  const json = JSON.parse(
    Testing.synthScope((scope) => {
      new StateTable(scope, 'state', { config: { ...stageConfig('dev'), namePrefix, allowDestroy: true } });
    }),
  ) as { resource: { aws_dynamodb_table: Record<string, Record<string, unknown>> } };
  const tables = Object.values(json.resource.aws_dynamodb_table).map(tableInput);
  const shapeOf = (name: string): TableShape => {
    const table = tables.find((t) => t.TableName === name);
    if (!table) throw new Error(`the StateTable construct synthesized no table ${name}`);
    const { TableName: _name, ...shape } = table;
    return shape;
  };
  return { state: shapeOf(stateTableName(namePrefix)), batches: shapeOf(batchesTableName(namePrefix)) };
}

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
