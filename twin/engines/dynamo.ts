import { fork, type ChildProcess } from 'node:child_process';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { VirtualClock } from './clock';
import type { Recorder } from './recorder';

/**
 * DynamoDB is not emulated: it is dynalite (a DynamoDB-compatible server on LevelDB/memdown), reached with the
 * real `@aws-sdk/client-dynamodb`, so conditional writes behave as the real service's do.
 * dynalite runs in a child process; each request is tracked by the virtual clock (time stands still while it
 * travels). Up to `concurrency` requests travel at once (dynalite gets the second core), but their results are
 * delivered to the caller in the order the requests were issued, so the JavaScript side runs in the same order
 * on every run. With concurrency 1 a run is exactly reproducible from its seed; above 1 only requests that race
 * for the same item at the same virtual instant (e.g. two semaphore acquires for the last slot) may be decided
 * differently by dynalite from run to run. TWIN_DDB_CONCURRENCY overrides the default (4).
 */
export class Dynalite {
  private constructor(
    private readonly child: ChildProcess,
    readonly endpoint: string,
  ) {}

  static async start(): Promise<Dynalite> {
    const child = fork(join(__dirname, 'dynalite-server.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (message) => resolve((message as { port: number }).port));
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`dynalite exited with code ${code}`)));
    });
    return new Dynalite(child, `http://127.0.0.1:${port}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.disconnect();
      setTimeout(() => this.child.kill(), 2000).unref();
    });
  }
}

export interface TrackedDynamo {
  /** The low-level client (what Step Functions' optimized DynamoDB integration calls). */
  client: DynamoDBClient;
  /** A DocumentClient over the same connection (what the Lambda functions use). */
  doc: DynamoDBDocumentClient;
  createTable(input: CreateTableCommandInput): Promise<void>;
}

export const DEFAULT_DDB_CONCURRENCY = Number(process.env.TWIN_DDB_CONCURRENCY ?? 4);

export function trackedDynamo(endpoint: string, clock: VirtualClock, recorder: Recorder, concurrency = DEFAULT_DDB_CONCURRENCY): TrackedDynamo {
  const client = new DynamoDBClient({
    endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'twin', secretAccessKey: 'twin' },
    maxAttempts: 1,
    requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: Math.max(1, concurrency) }) },
  });
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const queue = orderedPool(Math.max(1, concurrency));
  for (const target of [client, doc] as Array<{ send: (...args: any[]) => Promise<any> }>) {
    const send = target.send.bind(target);
    target.send = (...args: any[]) =>
      clock.track(() =>
        queue(() => {
          const name: string = args[0]?.constructor?.name ?? '';
          recorder.count(/^(Get|BatchGet|Query|Scan|TransactGet)/.test(name) ? 'ddbReads' : 'ddbWrites');
          return send(...args);
        }),
      );
  }
  return {
    client,
    doc,
    async createTable(input) {
      await client.send(new CreateTableCommand(input));
    },
  };
}

/** Runs up to `concurrency` operations at once; each result is delivered only after every earlier one. */
function orderedPool(concurrency: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  let delivered: Promise<unknown> = Promise.resolve();
  return <T>(operation: () => Promise<T>): Promise<T> => {
    const result = new Promise<T>((resolve, reject) => {
      const start = () => {
        active++;
        operation()
          .then(resolve, reject)
          .finally(() => {
            active--;
            waiting.shift()?.();
          });
      };
      if (active < concurrency) start();
      else waiting.push(start);
    });
    // Handled here so a rejection that waits for earlier deliveries is not reported as unhandled meanwhile.
    result.catch(() => undefined);
    const inOrder = delivered.then(
      () => result,
      () => result,
    );
    delivered = inOrder.catch(() => undefined);
    return inOrder;
  };
}
