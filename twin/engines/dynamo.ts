import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClientCommand } from '@aws-sdk/lib-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { VirtualClock } from './clock';
import { AwsError } from './errors';
import type { Recorder } from './recorder';

/**
 * DynamoDB is not emulated: it is dynalite's engine (its LevelDB/memory store, expression parser, validations
 * and conditional writes), loaded in this process and called exactly as dynalite's HTTP handler calls it:
 * the request body as JSON → `checkTypes` → `checkValidations` → the action; a service error comes back as
 * dynalite's `{ __type, message }` and is thrown with the name the AWS SDK gives it (the part after `#`).
 *
 * Why in-process and not the SDK over HTTP to a dynalite server: virtual time stands still while a request is
 * in flight, so the twin and a dynalite process only ever waited on each other, and the SDK's middleware,
 * SigV4 and HTTP were most of the twin's work (a 2,000-object burst, profiled: 13 s of the twin's 20 s of CPU,
 * dynalite 11 s more, 31 s wall; in-process it takes 10 s). The Lambda functions' code is unchanged: they get `documentClient`, which takes
 * their lib-dynamodb commands and marshals them with the command's own key map and util-dynamodb, as
 * DynamoDBDocumentClient does (`__tests__/twin/dynamo.test.ts` checks both give the same results and errors).
 */
// dynalite ships no types. Its server (dynalite/index.js) is built from these modules and actions/*, validations/*.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynaliteDb = require('dynalite/db') as { create(options: Record<string, unknown>): DynaliteStore; itemSize(item: object): number };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const validations = require('dynalite/validations') as {
  toLowerFirst(name: string): string;
  checkTypes(data: unknown, types: unknown): unknown;
  checkValidations(data: unknown, types: unknown, custom: unknown, store: DynaliteStore): void;
};

interface DynaliteStore {
  readonly options: Record<string, unknown>;
}
type DynaliteCallback = (error: (Error & { statusCode?: number; body?: { __type: string; message?: string } }) | null, data?: any) => void;
type DynaliteAction = (store: DynaliteStore, data: unknown, callback: DynaliteCallback) => void;

const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan']);
const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);
const CONTROL = new Set(['CreateTable', 'DescribeTable', 'DeleteTable']);
export type DynamoOperation = string;

/** Runs one DynamoDB API operation with the wire's JSON shapes; what Step Functions' integration calls. */
export interface DynamoDbApi {
  call(operation: DynamoOperation, input: object): Promise<Record<string, any>>;
}

interface DynaliteActionModule {
  run: DynaliteAction;
  validation: { types: unknown; custom?: unknown };
}
const actions = new Map<string, DynaliteActionModule>();
function actionFor(operation: DynamoOperation): DynaliteActionModule {
  let action = actions.get(operation);
  if (!action) {
    if (!READS.has(operation) && !WRITES.has(operation) && !CONTROL.has(operation)) {
      throw new Error(`the twin's DynamoDB does not run ${operation}`);
    }
    const name = validations.toLowerFirst(operation);
    action = { run: require(`dynalite/actions/${name}`), validation: require(`dynalite/validations/${name}`) };
    actions.set(operation, action);
  }
  return action;
}

/** ConsumedCapacity is one object for single-item calls, a list for batch calls. */
function capacityUnitsOf(consumed: undefined | { CapacityUnits?: number } | Array<{ CapacityUnits?: number }>): number {
  const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  return list.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
}

/** The SDK names a service error after the shape in `__type` ("com.amazonaws.dynamodb.v20120810#Name"). */
export function errorName(type: string): string {
  return type.slice(type.lastIndexOf('#') + 1).split(':')[0];
}

export interface DocumentClient {
  send(command: unknown): Promise<any>;
}

export class DynamoDb implements DynamoDbApi {
  private readonly store = dynaliteDb.create({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  /** What the Lambda functions are given in place of a DynamoDBDocumentClient. */
  readonly documentClient: DocumentClient = { send: (command) => this.sendDocumentCommand(command) };

  constructor(
    private readonly clock: Pick<VirtualClock, 'track'>,
    private readonly recorder: Pick<Recorder, 'count'>,
  ) {}

  /**
   * One DynamoDB API call with the wire's JSON shapes (AttributeValues in, AttributeValues out). Time stands
   * still until it returns. Service errors throw an `AwsError` named as the SDK names them. Requests and the
   * capacity units they consume (dynalite's own sizing) are metered; on-demand DynamoDB bills the units.
   */
  call(operation: DynamoOperation, input: object): Promise<Record<string, any>> {
    const action = actionFor(operation);
    // The request as it would travel: JSON (the caller's objects are never shared with the store).
    const body = JSON.parse(JSON.stringify(input));
    const isWrite = WRITES.has(operation);
    const metered = isWrite || READS.has(operation);
    if (!metered) return this.clock.track(() => this.run(action, body));
    this.recorder.count(isWrite ? 'ddbWrites' : 'ddbReads');
    const callerAsked = body.ReturnConsumedCapacity !== undefined && body.ReturnConsumedCapacity !== 'NONE';
    if (!callerAsked) body.ReturnConsumedCapacity = 'TOTAL';
    return this.clock.track(async () => {
      try {
        const output = await this.run(action, body);
        this.recorder.count(isWrite ? 'ddbWriteUnits' : 'ddbReadUnits', capacityUnitsOf(output.ConsumedCapacity));
        if (!callerAsked) delete output.ConsumedCapacity;
        return output;
      } catch (error) {
        // A write whose condition fails is still billed: one unit per KB of the item as it stands, at least one
        // ("Condition expressions", Amazon DynamoDB developer guide).
        if (isWrite && (error as Error).name === 'ConditionalCheckFailedException') {
          this.recorder.count('ddbWriteUnits', await this.existingItemWriteUnits(body));
        }
        throw error;
      }
    });
  }

  /** Runs one request through dynalite as its HTTP handler does: type checks, validations, the action. */
  private run(action: DynaliteActionModule, body: Record<string, any>): Promise<Record<string, any>> {
    return new Promise((resolve, reject) => {
      const fail = (error: NonNullable<Parameters<DynaliteCallback>[0]>) =>
        reject(error.statusCode && error.body ? new AwsError(errorName(error.body.__type), error.body.message ?? '') : error);
      let data: unknown;
      try {
        data = validations.checkTypes(body, action.validation.types);
        validations.checkValidations(data, action.validation.types, action.validation.custom, this.store);
      } catch (error) {
        fail(error as Error);
        return;
      }
      action.run(this.store, data, (error, output) => (error ? fail(error) : resolve(output ?? {})));
    });
  }

  private async existingItemWriteUnits(body: Record<string, any>): Promise<number> {
    let key = body.Key;
    if (!key) {
      const { Table } = await this.run(actionFor('DescribeTable'), { TableName: body.TableName });
      key = Object.fromEntries((Table.KeySchema as Array<{ AttributeName: string }>).map((k) => [k.AttributeName, body.Item[k.AttributeName]]));
    }
    const { Item } = await this.run(actionFor('GetItem'), { TableName: body.TableName, Key: key, ConsistentRead: true });
    return Item ? Math.max(1, Math.ceil(dynaliteDb.itemSize(Item) / 1024)) : 1;
  }

  /** Creates a table and waits until dynalite reports it ACTIVE. */
  async createTable(input: CreateTableCommandInput): Promise<void> {
    await this.call('CreateTable', input);
    for (;;) {
      const { Table } = await this.call('DescribeTable', { TableName: input.TableName });
      if (Table.TableStatus === 'ACTIVE') return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * A lib-dynamodb command (GetCommand, UpdateCommand, …), marshalled as DynamoDBDocumentClient marshals it
   * with default options: the fields its `inputKeyNodes` name go through util-dynamodb `marshall`, the fields
   * its `outputKeyNodes` name through `unmarshall`.
   */
  private async sendDocumentCommand(command: unknown): Promise<any> {
    if (!(command instanceof DynamoDBDocumentClientCommand)) {
      throw new Error(`the twin's document client takes lib-dynamodb commands, not ${(command as object)?.constructor?.name}`);
    }
    const documentCommand = command as unknown as DocumentCommand;
    const operation = documentCommand.clientCommand.constructor.name.replace(/Command$/, '');
    const input = mapKeyNodes(documentCommand.input, documentCommand.inputKeyNodes, (value) => marshall(value, { convertTopLevelContainer: true }));
    const output = await this.call(operation, input);
    return mapKeyNodes(output, documentCommand.outputKeyNodes, (value) => unmarshall(value, { convertWithoutMapWrapper: true }));
  }
}

interface DocumentCommand {
  input: Record<string, unknown>;
  inputKeyNodes: KeyNodes;
  outputKeyNodes: KeyNodes;
  clientCommand: object;
}

/**
 * lib-dynamodb's key maps: `{ Field: [] }` or `{ Field: {} }` converts every member of Field; `{ Field: { '*': n } }`
 * applies `n` to each element or value; a field map with names descends into those names.
 */
type KeyNodes = { [field: string]: KeyNodes } | KeyNodes[];

function mapKeyNodes(object: any, nodes: KeyNodes, convert: (value: any) => any): any {
  if (object === undefined || object === null) return object;
  const result: any = Array.isArray(object) ? [...object] : { ...object };
  for (const [field, child] of Object.entries(nodes)) {
    if (object[field] !== undefined) result[field] = mapNode(object[field], child, convert);
  }
  return result;
}

function mapNode(value: any, nodes: KeyNodes, convert: (value: any) => any): any {
  const keys = Object.keys(nodes);
  const each =
    keys.length === 0
      ? convert // every member converted on its own
      : keys.length === 1 && keys[0] === '*'
        ? (member: any) => mapNode(member, (nodes as Record<string, KeyNodes>)['*'], convert)
        : undefined;
  if (!each) return mapKeyNodes(value, nodes, convert);
  // As lib-dynamodb does: a member that is undefined (or a function) is left out, not converted.
  const kept = (member: any) => member !== undefined && typeof member !== 'function';
  if (Array.isArray(value)) return value.filter(kept).map(each);
  return Object.fromEntries(Object.entries(value).flatMap(([k, v]) => (kept(v) ? [[k, each(v)]] : [])));
}
