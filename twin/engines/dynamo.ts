import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClientCommand } from '@aws-sdk/lib-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { VirtualClock } from './clock';
import { AwsError } from './errors';
import type { Recorder } from './recorder';
import type { AwsClient } from '../../functions/runtime';

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
const dynaliteDb = require('dynalite/db') as {
  create(options: Record<string, unknown>): DynaliteStore;
  itemSize(item: object): number;
  /** The parsed request's condition against the item as it stands: an error if it does not hold. */
  checkConditional(data: unknown, existingItem: unknown): unknown;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const validations = require('dynalite/validations') as {
  toLowerFirst(name: string): string;
  checkTypes(data: unknown, types: unknown): unknown;
  checkValidations(data: unknown, types: unknown, custom: unknown, store: DynaliteStore): void;
};

interface DynaliteStore {
  readonly options: Record<string, unknown>;
}
type DynaliteError = Error & { statusCode?: number; body?: { __type: string; message?: string } };
type DynaliteCallback = (error: DynaliteError | null, data?: any) => void;
type DynaliteAction = (store: DynaliteStore, data: unknown, callback: DynaliteCallback) => void;

const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan']);
const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);
const CONTROL = new Set(['CreateTable', 'DescribeTable', 'DeleteTable']);
type DynamoOperation = string;

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
    // dynalite ships one CommonJS module per operation, found by name: a static import cannot name them.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    action = { run: require(`dynalite/actions/${name}`), validation: require(`dynalite/validations/${name}`) };
    actions.set(operation, action);
  }
  return action;
}

/** A service error of dynalite's (a status and a `{ __type, message }` body) as the SDK throws it; others as they are. */
function asAwsError(error: DynaliteError, retryable?: boolean): Error {
  return error.statusCode && error.body ? new AwsError(errorName(error.body.__type), error.body.message ?? '', retryable) : error;
}

/** ConsumedCapacity is one object for single-item calls, a list for batch calls. */
function throughputExceeded(): AwsError {
  return new AwsError(
    'ProvisionedThroughputExceededException',
    'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
  );
}

function capacityUnitsOf(consumed: undefined | { CapacityUnits?: number } | Array<{ CapacityUnits?: number }>): number {
  const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  return list.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
}

/** The SDK names a service error after the shape in `__type` ("com.amazonaws.dynamodb.v20120810#Name"). */
export function errorName(type: string): string {
  return type.slice(type.lastIndexOf('#') + 1).split(':')[0];
}

/**
 * How long a transaction holds its items against other writers: a write or another transaction touching one of them
 * meanwhile conflicts (TransactionConflict), as DynamoDB does while a transaction is under way. DynamoDB does not
 * publish the duration; its transactions take tens of milliseconds ("Amazon DynamoDB Transactions: how it works").
 */
export const TRANSACTION_HOLD_MS = 20;
/** ClientRequestToken: a repeat within 10 minutes returns the first result ("TransactWriteItems", idempotency). */
const IDEMPOTENCY_WINDOW_MS = 10 * 60_000;
/** Per item key (one partition): "each individual partition is limited to 1,000 write units per second" and 3,000 read units. */
const PARTITION_WRITE_UNITS_PER_SECOND = 1000;
const PARTITION_READ_UNITS_PER_SECOND = 3000;
const TRANSACT_MAX_ITEMS = 100;
const ITEM_ACTIONS = ['Put', 'Update', 'Delete', 'ConditionCheck'] as const;
/** The action whose validation (expressions, key) each transaction item shares. */
const VALIDATION_OF: Record<(typeof ITEM_ACTIONS)[number], string> = {
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  ConditionCheck: 'DeleteItem',
};

interface TransactionPart {
  readonly kind: (typeof ITEM_ACTIONS)[number];
  /** The item's request as sent. */
  readonly op: Record<string, any>;
  readonly action: DynaliteActionModule;
  /** The request as dynalite's validations parsed it (its expressions included). */
  readonly data: any;
  readonly itemId: string;
  readonly key: Record<string, unknown>;
}
type CancellationReason = { Code: 'None' | 'ConditionalCheckFailed' | 'TransactionConflict'; Message?: string; Item?: Record<string, any> };

/** The limits of the request as a whole: 1 to 100 items, a client token of at most 36 characters. */
function checkTransactionShape(body: Record<string, any>): { items: Array<Record<string, any>>; token?: string } {
  const items = body.TransactItems as Array<Record<string, any>> | undefined;
  if (!Array.isArray(items) || items.length === 0 || items.length > TRANSACT_MAX_ITEMS) {
    throw new AwsError(
      'ValidationException',
      `1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length between 1 and ${TRANSACT_MAX_ITEMS}`,
      false,
    );
  }
  const token = body.ClientRequestToken as string | undefined;
  if (token !== undefined && (typeof token !== 'string' || token.length < 1 || token.length > 36)) {
    throw new AwsError(
      'ValidationException',
      "1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36",
      false,
    );
  }
  return { items, token };
}

interface DynamoFaults {
  /** Drawn once per request: answer ProvisionedThroughputExceededException instead. */
  throttle(): boolean;
}

/** Hears an item of a watched table as it stands after each write that committed (undefined: deleted). */
type ItemWatcher = (key: Record<string, any>, item: Record<string, any> | undefined) => void;

export class DynamoDb implements DynamoDbApi {
  private readonly store = dynaliteDb.create({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  /** What the Lambda functions are given in place of a DynamoDBDocumentClient. */
  readonly documentClient: AwsClient = { send: (command) => this.sendDocumentCommand(command) };
  /**
   * The twin's own reads of a table (for its report and its setup), as a document client that no fault reaches: the
   * scenario's throttles are the functions' weather, not the twin's.
   */
  readonly observer: AwsClient = { send: (command) => this.sendDocumentCommand(command, false) };
  /** One request at a time, each whole: a transaction is atomic because nothing runs between its parts. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly keySchemas = new Map<string, string[]>();
  private readonly heldUntil = new Map<string, number>();
  private readonly tokens = new Map<string, { at: number; request: string; output: Record<string, any> }>();
  private readonly partitions = new Map<string, { second: number; write: number; read: number }>();
  faults?: DynamoFaults;
  private readonly watchers = new Map<string, ItemWatcher[]>();

  constructor(
    private readonly clock: Pick<VirtualClock, 'track' | 'now' | 'sleep'>,
    private readonly recorder: Pick<Recorder, 'count'>,
    /**
     * How long a transaction holds its items. The explorer sets 0: it makes conflicts itself, as a fault at a call of
     * its choosing, and a hold on its clock (which moves only when it says) would conflict every later write.
     */
    private readonly transactionHoldMs = TRANSACTION_HOLD_MS,
  ) {}

  /**
   * One DynamoDB API call with the wire's JSON shapes (AttributeValues in, AttributeValues out). Time stands
   * still until it returns, except for a transaction, which answers when its hold ends. Service errors throw an `AwsError` named as the SDK names them. Requests and the
   * capacity units they consume (dynalite's own sizing) are metered; on-demand DynamoDB bills the units. A
   * partition (item key) over its units per second answers ProvisionedThroughputExceededException.
   */
  call(operation: DynamoOperation, input: object, faulted = true): Promise<Record<string, any>> {
    // The request as it would travel: JSON (the caller's objects are never shared with the store).
    const body = JSON.parse(JSON.stringify(input));
    if (operation === 'TransactWriteItems') return this.answeredAfterHold(this.clock.track(() => this.exclusive(() => this.transactWriteItems(body))));
    const action = actionFor(operation);
    const isWrite = WRITES.has(operation);
    const metered = isWrite || READS.has(operation);
    if (!metered) {
      return this.clock.track(async () => {
        const output = await this.exclusive(() => this.run(action, body));
        if (operation === 'CreateTable')
          this.keySchemas.set(
            body.TableName,
            (body.KeySchema as Array<{ AttributeName: string }>).map((k) => k.AttributeName),
          );
        return output;
      });
    }
    this.recorder.count(isWrite ? 'ddbWrites' : 'ddbReads');
    const callerAsked = body.ReturnConsumedCapacity !== undefined && body.ReturnConsumedCapacity !== 'NONE';
    if (!callerAsked) body.ReturnConsumedCapacity = 'TOTAL';
    return this.clock.track(() =>
      this.exclusive(async () => {
        if (faulted && this.faults?.throttle()) throw throughputExceeded();
        const key = body.Key ?? (body.Item ? this.keyOf(body.TableName, body.Item) : undefined);
        const itemId = key ? this.itemId(body.TableName, key) : undefined;
        if (isWrite && itemId && (this.heldUntil.get(itemId) ?? -1) > this.clock.now()) {
          throw new AwsError('TransactionConflictException', 'Transaction is ongoing for the item');
        }
        // A partition that has taken its units this second refuses more (the size of this one is known only after).
        if (itemId) this.spendPartition(itemId, isWrite ? 'write' : 'read', 1e-9, true);
        try {
          const output = await this.run(action, body);
          if (isWrite && key) await this.tellWatchers(body.TableName, key);
          const units = capacityUnitsOf(output.ConsumedCapacity);
          if (itemId) this.spendPartition(itemId, isWrite ? 'write' : 'read', units);
          this.recorder.count(isWrite ? 'ddbWriteUnits' : 'ddbReadUnits', units);
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
      }),
    );
  }

  /**
   * The twin's own observation of a table (for its report), outside any request: not metered, never throttled, and
   * told inside the write's turn, so watchers see writes in the order they committed.
   */
  watch(tableName: string, watcher: ItemWatcher): void {
    this.watchers.set(tableName, [...(this.watchers.get(tableName) ?? []), watcher]);
  }

  private async tellWatchers(tableName: string, key: Record<string, any>): Promise<void> {
    const watchers = this.watchers.get(tableName);
    if (!watchers) return;
    const { Item } = await this.run(actionFor('GetItem'), { TableName: tableName, Key: key, ConsistentRead: true });
    for (const watcher of watchers) watcher(key, Item);
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work, work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private keyOf(tableName: string, item: Record<string, unknown>): Record<string, unknown> | undefined {
    const names = this.keySchemas.get(tableName);
    return names ? Object.fromEntries(names.map((n) => [n, item[n]])) : undefined;
  }

  private itemId(tableName: string, key: Record<string, unknown>): string {
    return `${tableName}\n${JSON.stringify(
      Object.keys(key)
        .sort()
        .map((k) => [k, key[k]]),
    )}`;
  }

  /** Adds units to the item's partition in the current second; over its limit, the request is refused. */
  private spendPartition(itemId: string, kind: 'write' | 'read', units: number, check = false): void {
    const second = Math.floor(this.clock.now() / 1000);
    const use = this.partitions.get(itemId);
    const current = use && use.second === second ? use : { second, write: 0, read: 0 };
    const limit = kind === 'write' ? PARTITION_WRITE_UNITS_PER_SECOND : PARTITION_READ_UNITS_PER_SECOND;
    if (check) {
      if (current[kind] + units > limit) {
        this.recorder.count('ddbPartitionThrottles');
        throw throughputExceeded();
      }
      return;
    }
    current[kind] += units;
    this.partitions.set(itemId, current);
  }

  /**
   * TransactWriteItems over dynalite's engine: every condition is checked against the items as they stand, then
   * every write is applied, with nothing in between (requests run one at a time). Cancelled with a reason per item
   * (ConditionalCheckFailed, TransactionConflict with a transaction that still holds the item, None); billed two
   * write units per KB of each item, ConditionChecks included, and one per item when cancelled (its prepare).
   */
  private async transactWriteItems(body: Record<string, any>): Promise<Record<string, any>> {
    const { items, token } = checkTransactionShape(body);
    const request = JSON.stringify(items);
    const now = this.clock.now();
    if (token) {
      const earlier = this.tokens.get(token);
      if (earlier && now - earlier.at < IDEMPOTENCY_WINDOW_MS) {
        if (earlier.request !== request)
          throw new AwsError('IdempotentParameterMismatchException', 'The request uses the same client token as a previous, but non-identical request.', false);
        return earlier.output;
      }
    }
    if (this.faults?.throttle()) throw throughputExceeded();
    this.recorder.count('ddbWrites');
    const parts = items.map((entry, index) => this.transactionPart(entry, index));
    if (new Set(parts.map((p) => p.itemId)).size !== parts.length) {
      throw new AwsError('ValidationException', 'Transaction request cannot include multiple operations on one item', false);
    }
    const existing = await Promise.all(
      parts.map((p) => this.run(actionFor('GetItem'), { TableName: p.op.TableName, Key: p.key, ConsistentRead: true }).then((r) => r.Item)),
    );
    const reasons = parts.map((p, i) => this.cancellationReason(p, existing[i], now));
    // It holds what it could take: not the items another transaction holds (their hold stays as it is).
    parts.forEach((p, i) => {
      if (reasons[i].Code !== 'TransactionConflict') this.heldUntil.set(p.itemId, Math.max(this.heldUntil.get(p.itemId) ?? -1, now + this.transactionHoldMs));
    });
    if (reasons.some((r) => r.Code !== 'None')) throw this.cancelled(parts.length, reasons);
    await this.commit(parts, existing);
    const output = {};
    if (token) this.tokens.set(token, { at: now, request, output });
    return output;
  }

  /** One item of a transaction, validated as the single-item call it shares its validation with. */
  private transactionPart(entry: Record<string, any>, index: number): TransactionPart {
    const kinds = ITEM_ACTIONS.filter((k) => entry[k] !== undefined);
    if (kinds.length !== 1)
      throw new AwsError('ValidationException', `TransactItems[${index}] must have exactly one of Put, Update, Delete or ConditionCheck`, false);
    const kind = kinds[0];
    const op = entry[kind];
    const action = actionFor(VALIDATION_OF[kind]);
    const validationBody = kind === 'ConditionCheck' ? { ...op, ReturnValues: undefined } : op;
    let data: any;
    try {
      data = this.validated(action, { ...validationBody, ReturnValuesOnConditionCheckFailure: undefined });
    } catch (error) {
      throw asAwsError(error as DynaliteError, false);
    }
    // The write reports its size (for billing); validated once, the parsed request is what the write runs.
    data.ReturnConsumedCapacity = 'TOTAL';
    const key = op.Key ?? this.keyOf(op.TableName, op.Item ?? {});
    if (!key) throw new AwsError('ResourceNotFoundException', 'Requested resource not found', false);
    return { kind, op, action, data, itemId: this.itemId(op.TableName, key), key };
  }

  private cancellationReason(part: TransactionPart, existing: Record<string, any> | undefined, now: number): CancellationReason {
    if ((this.heldUntil.get(part.itemId) ?? -1) > now) return { Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' };
    if (dynaliteDb.checkConditional(part.data, existing) != null) {
      return {
        Code: 'ConditionalCheckFailed',
        Message: 'The conditional request failed',
        ...(part.op.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' && existing ? { Item: existing } : {}),
      };
    }
    return { Code: 'None' };
  }

  /** A cancelled transaction is billed one write unit per item (its prepare). */
  private cancelled(items: number, reasons: CancellationReason[]): AwsError {
    this.recorder.count('ddbWriteUnits', items);
    if (reasons.some((r) => r.Code === 'TransactionConflict')) this.recorder.count('ddbTransactionConflicts');
    const error = new AwsError(
      'TransactionCanceledException',
      `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
      false,
    );
    return Object.assign(error, { CancellationReasons: reasons });
  }

  /** Applies every write, billed two units per KB of each item (the larger of before and after). */
  private async commit(parts: TransactionPart[], existing: Array<Record<string, any> | undefined>): Promise<void> {
    const sizes = existing.map((item) => Math.max(1, Math.ceil((item ? dynaliteDb.itemSize(item) : 0) / 1024)));
    parts.forEach((p, i) => this.spendPartition(p.itemId, 'write', 2 * sizes[i], true));
    let units = 0;
    for (const [i, p] of parts.entries()) {
      if (p.kind !== 'ConditionCheck') {
        // Its condition holds (checked above, and nothing ran since): the write checks it again, to the same answer.
        const output = await this.runValidated(p.action, p.data);
        sizes[i] = Math.max(sizes[i], capacityUnitsOf(output.ConsumedCapacity));
      }
      units += 2 * sizes[i];
      this.spendPartition(p.itemId, 'write', 2 * sizes[i]);
    }
    this.recorder.count('ddbWriteUnits', units);
    for (const p of parts) if (p.kind !== 'ConditionCheck') await this.tellWatchers(p.op.TableName, p.key);
  }

  /**
   * A transaction answers when its hold ends: callers that come meanwhile conflict, but its own caller's next
   * request comes after its commit, as on DynamoDB (a transaction that has answered holds nothing).
   */
  private async answeredAfterHold(answer: Promise<Record<string, any>>): Promise<Record<string, any>> {
    const settled = await answer.then(
      (output) => ({ output }),
      (error: unknown) => ({ error }),
    );
    if (this.transactionHoldMs > 0) await this.clock.sleep(this.transactionHoldMs);
    if ('error' in settled) throw settled.error;
    return settled.output;
  }

  /** Runs one request through dynalite as its HTTP handler does: type checks, validations, the action. */
  private run(action: DynaliteActionModule, body: Record<string, any>): Promise<Record<string, any>> {
    let data: unknown;
    try {
      data = this.validated(action, body);
    } catch (error) {
      return Promise.reject(asAwsError(error as DynaliteError));
    }
    return this.runValidated(action, data);
  }

  /** The request as dynalite's type checks and validations parse it (its expressions included); throws what they refuse. */
  private validated(action: DynaliteActionModule, body: Record<string, any>): any {
    const data = validations.checkTypes(body, action.validation.types);
    validations.checkValidations(data, action.validation.types, action.validation.custom, this.store);
    return data;
  }

  /** The action on a request its validations have already parsed. */
  private runValidated(action: DynaliteActionModule, data: unknown): Promise<Record<string, any>> {
    return new Promise((resolve, reject) => action.run(this.store, data, (error, output) => (error ? reject(asAwsError(error)) : resolve(output ?? {}))));
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
  private async sendDocumentCommand(command: unknown, faulted = true): Promise<any> {
    if (!(command instanceof DynamoDBDocumentClientCommand)) {
      throw new Error(`the twin's document client takes lib-dynamodb commands, not ${(command as object)?.constructor?.name}`);
    }
    const documentCommand = command as unknown as DocumentCommand;
    const operation = documentCommand.clientCommand.constructor.name.replace(/Command$/, '');
    const input = mapKeyNodes(documentCommand.input, documentCommand.inputKeyNodes, (value) => marshall(value, { convertTopLevelContainer: true }));
    const output = await this.call(operation, input, faulted);
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
  if (keys.length === 0) return mapMembers(value, convert); // every member converted on its own
  if (keys.length === 1 && keys[0] === '*') {
    const child = (nodes as Record<string, KeyNodes>)['*'];
    return mapMembers(value, (member) => mapNode(member, child, convert));
  }
  return mapKeyNodes(value, nodes, convert);
}

/** As lib-dynamodb does: a member that is undefined (or a function) is left out, not converted. */
function mapMembers(value: any, each: (member: any) => any): any {
  const kept = (member: any) => member !== undefined && typeof member !== 'function';
  if (Array.isArray(value)) {
    const members = [];
    for (const member of value) if (kept(member)) members.push(each(member));
    return members;
  }
  const members: Record<string, any> = {};
  for (const name of Object.keys(value)) if (kept(value[name])) members[name] = each(value[name]);
  return members;
}
