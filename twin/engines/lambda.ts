import type { VirtualClock } from './clock';
import { AwsError } from './errors';
import type { Recorder } from './recorder';

/**
 * AWS Lambda, asynchronous invocation (docs.aws.amazon.com/lambda/latest/dg/invocation-async.html):
 * - `InvocationType: 'Event'` returns 202 at once; the event waits in Lambda's internal queue.
 * - Reserved concurrency caps how many instances run at once. An event that finds no free instance is
 *   throttled and returned to the queue; Lambda retries it "for up to 6 hours", the interval growing
 *   exponentially "from 1 second after the first attempt to a maximum of 5 minutes".
 * - A function error is retried twice more, 1 minute and then 2 minutes later.
 * Billing: GB-seconds of duration (rounded up to 1 ms) plus requests (twin/prices.ts).
 * Duration is virtual: a handler that sleeps on the clock is billed for the sleep, as on AWS.
 */
interface FunctionOptions {
  name: string;
  handler: (event: unknown) => Promise<unknown>;
  reservedConcurrency?: number;
  memoryMB: number;
  /** Cold or warm start and invoke latency, virtual seconds (default 0.05). */
  startLatencySeconds?: number;
}

const SIX_HOURS_MS = 6 * 3600 * 1000;
const MAX_THROTTLE_RETRY_MS = 300_000;

export class LambdaEmulator {
  private functions = new Map<string, FunctionOptions & { running: number }>();
  invocations = 0;
  /** Asynchronous events queued or running. */
  pending = 0;

  constructor(
    private readonly clock: VirtualClock,
    private readonly recorder: Recorder,
  ) {}

  /** Instances running now, over all functions. */
  running(): number {
    let n = 0;
    for (const fn of this.functions.values()) n += fn.running;
    return n;
  }

  register(options: FunctionOptions): void {
    this.functions.set(options.name, { ...options, running: 0 });
  }

  /** The SDK surface: InvokeCommand with FunctionName, Payload (string or bytes), InvocationType. */
  async send(command: { constructor: { name: string }; input: any }): Promise<any> {
    if (command.constructor.name !== 'InvokeCommand') {
      throw new AwsError('InvalidAction', `the Lambda twin does not implement ${command.constructor.name}`, false);
    }
    const { FunctionName, Payload, InvocationType } = command.input;
    const payload = decodePayload(Payload);
    if (InvocationType === 'Event') {
      this.invokeAsync(FunctionName, payload);
      return { StatusCode: 202 };
    }
    const result = await this.invokeSync(FunctionName, payload);
    return { StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(result ?? null)) };
  }

  /** Queues an asynchronous invocation; throttles and errors are retried as Lambda does. */
  invokeAsync(name: string, payload: unknown): void {
    const fn = this.fn(name);
    this.pending++;
    const queuedAt = this.clock.now();
    let throttles = 0;
    let errors = 0;
    const attempt = () => {
      if (fn.reservedConcurrency !== undefined && fn.running >= fn.reservedConcurrency) {
        this.recorder.count('lambdaThrottles');
        if (this.clock.now() - queuedAt >= SIX_HOURS_MS) {
          this.pending--;
          this.recorder.emit('lambdaDropped', { fn: name, reason: 'maximum event age' });
          return;
        }
        const delay = Math.min(MAX_THROTTLE_RETRY_MS, 1000 * 2 ** throttles++);
        this.clock.setTimeout(attempt, delay);
        return;
      }
      this.execute(fn, payload).then(
        () => this.pending--,
        () => {
          if (errors < 2) this.clock.setTimeout(attempt, 60_000 * ++errors);
          else this.pending--;
        },
      );
    };
    this.clock.setTimeout(attempt, (fn.startLatencySeconds ?? 0.05) * 1000);
  }

  async invokeSync(name: string, payload: unknown): Promise<unknown> {
    const fn = this.fn(name);
    if (fn.reservedConcurrency !== undefined && fn.running >= fn.reservedConcurrency) {
      this.recorder.count('lambdaThrottles');
      throw new AwsError('Lambda.TooManyRequestsException', 'Rate Exceeded.');
    }
    await this.clock.sleep((fn.startLatencySeconds ?? 0.05) * 1000);
    return this.execute(fn, payload);
  }

  private async execute(fn: FunctionOptions & { running: number }, payload: unknown): Promise<unknown> {
    fn.running++;
    this.invocations++;
    const started = this.clock.now();
    let error: string | undefined;
    try {
      return await fn.handler(payload);
    } catch (e) {
      error = `${(e as Error).name}: ${(e as Error).message}`;
      throw e;
    } finally {
      fn.running--;
      const billedMs = Math.max(1, Math.ceil(this.clock.now() - started));
      this.recorder.emit('lambda', { fn: fn.name, billedMs, memoryMB: fn.memoryMB, ...(error ? { error } : {}) });
    }
  }

  private fn(name: string) {
    const short = name.includes(':function:') ? name.split(':function:')[1].split(':')[0] : name;
    const fn = this.functions.get(short);
    if (!fn) throw new AwsError('ResourceNotFoundException', `Function not found: ${name}`, false);
    return fn;
  }
}

function decodePayload(payload: unknown): unknown {
  if (payload === undefined || payload === null) return {};
  if (typeof payload === 'string') return payload === '' ? {} : JSON.parse(payload);
  if (payload instanceof Uint8Array) return payload.length === 0 ? {} : JSON.parse(new TextDecoder().decode(payload));
  return payload;
}
