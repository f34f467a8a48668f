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
 * travels) and requests go one at a time in the order they were issued, so a run is reproducible from its seed.
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

export function trackedDynamo(endpoint: string, clock: VirtualClock, recorder: Recorder): TrackedDynamo {
  const client = new DynamoDBClient({
    endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'twin', secretAccessKey: 'twin' },
    maxAttempts: 1,
    requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 4 }) },
  });
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const queue = serialQueue();
  for (const target of [client, doc] as Array<{ send: (...args: any[]) => Promise<any> }>) {
    const send = target.send.bind(target);
    target.send = (...args: any[]) =>
      clock.track(() =>
        queue(() => {
          recorder.count('ddbRequests');
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

/** Runs operations one at a time, in call order. */
function serialQueue() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(operation: () => Promise<T>): Promise<T> => {
    const result = tail.then(operation, operation);
    tail = result.catch(() => undefined);
    return result;
  };
}
