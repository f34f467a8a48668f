import type { VirtualClock } from './clock';
import { AwsError } from './errors';
import { chance, type Rng } from './random';
import type { AwsClient, AwsCommand } from '../../functions/runtime';

/**
 * Faults injected into the pipeline's own moving parts, each drawn from its own seeded stream so a run stays
 * reproducible: a Lambda function that dies mid-run, a StartExecution that gets a 5xx, a DynamoDB request that is
 * throttled — and what the AWS SDK does about the retryable ones before the functions' code sees them.
 */
/** The function's process died (out of memory, timeout, a host gone): nothing after this point runs. */
export class FunctionCrashed extends Error {
  constructor(
    /** The AWS call (1-based, over all of the invocation's clients) it died before. */
    readonly call: number,
    /** N, the calls the last completed run made, from which the point was drawn. */
    readonly of: number,
    readonly atSeconds: number,
  ) {
    super(`the function crashed before its AWS call ${call} (of about ${of})`);
    this.name = 'FunctionCrashed';
  }
}

interface Crash {
  atSeconds: number;
  call: number;
  of: number;
}

/** One invocation of a crashing function. */
interface Invocation {
  /** The same client, but its calls count toward the crash point (a Proxy: everything else passes through). */
  wrap<T extends AwsClient>(client: T): T;
  /** Where it will die (drawn when it began), or undefined. */
  readonly crashAt: number | undefined;
  /** Set once it died. */
  readonly crashed: Crash | undefined;
  /** AWS calls sent so far (the crashing one not included). */
  readonly calls: number;
  /** The run returned or threw on its own: unless it crashed, its call count is the next N. */
  end(): void;
}

export class CrashingRun {
  /** Every crash so far, in order. */
  readonly crashes: Crash[] = [];
  private lastCalls: number;

  constructor(
    private readonly rng: Rng,
    private readonly probability: number,
    estimateCalls: number,
    private readonly clock: Pick<VirtualClock, 'seconds'>,
    private readonly onCrash?: (crash: Crash) => void,
  ) {
    this.lastCalls = estimateCalls;
  }

  /**
   * Starts one invocation: with probability p it will die before its k-th AWS call, k uniform in 1..N (N = the calls
   * the last completed run made, at least 2). What was sent before stays done; the k-th and every later call throw
   * FunctionCrashed without reaching the service (the process is gone). A run that makes fewer than k calls ends
   * normally.
   */
  begin(): Invocation {
    const n = Math.max(2, Math.round(this.lastCalls));
    const crashAt = chance(this.rng, this.probability) ? 1 + Math.floor(this.rng() * n) : undefined;
    let calls = 0;
    let crashed: Crash | undefined;
    const die = (): FunctionCrashed => {
      if (!crashed) {
        crashed = { atSeconds: this.clock.seconds(), call: calls + 1, of: n };
        this.crashes.push(crashed);
        this.onCrash?.(crashed);
      }
      return asCrash(crashed);
    };
    const send = (client: AwsClient, command: AwsCommand) => {
      if (crashed || (crashAt !== undefined && calls + 1 >= crashAt)) return Promise.reject(die());
      calls++;
      return client.send(command);
    };
    return {
      wrap: <T extends AwsClient>(client: T): T =>
        new Proxy(client, {
          get: (target, key) => (key === 'send' ? (command: AwsCommand) => send(target, command) : Reflect.get(target, key, target)),
        }),
      crashAt,
      get crashed() {
        return crashed;
      },
      get calls() {
        return calls;
      },
      end: () => {
        if (!crashed) this.lastCalls = calls;
      },
    };
  }

  /**
   * One invocation around `body`: every client of `clients` is wrapped, the run ends when `body` settles. A crash is
   * recorded and rethrown — the Lambda service sees a function error (and retries an async event, as it does).
   */
  async run<C extends Record<string, AwsClient>, R>(clients: C, body: (wrapped: C) => Promise<R>): Promise<R> {
    const invocation = this.begin();
    const wrapped = Object.fromEntries(Object.entries(clients).map(([name, client]) => [name, invocation.wrap(client)])) as C;
    let result: R;
    try {
      result = await body(wrapped);
    } catch (error) {
      invocation.end();
      throw invocation.crashed ? asCrash(invocation.crashed) : error;
    }
    invocation.end();
    // The code may have caught the crash and gone on to return: it is still dead.
    if (invocation.crashed) throw asCrash(invocation.crashed);
    return result;
  }
}

function asCrash(crash: Crash): FunctionCrashed {
  return new FunctionCrashed(crash.call, crash.of, crash.atSeconds);
}

/** A per-invocation crash wrapper for one function: probability p per invocation (see CrashingRun.begin). */
export function crashingRun(rng: Rng, p: number, estimateCalls: number, clock: Pick<VirtualClock, 'seconds'>, onCrash?: (crash: Crash) => void): CrashingRun {
  return new CrashingRun(rng, p, estimateCalls, clock, onCrash);
}

/**
 * A 5xx from Step Functions: ServiceUnavailable, HTTP 503 (Step Functions "Common Errors":
 * docs.aws.amazon.com/step-functions/latest/apireference/CommonErrors.html). Shaped as the SDK hands an unmodeled
 * server error to the caller: `$fault: 'server'`, `$metadata.httpStatusCode: 503` — what its retry strategy keys on.
 */
function serviceUnavailable(): AwsError {
  const error = new AwsError('ServiceUnavailable', 'The request has failed due to a temporary failure of the server.', true);
  Object.assign(error, { $fault: 'server', $metadata: { httpStatusCode: 503 } });
  return error;
}

/**
 * Wraps a Step Functions client: StartExecutionCommand fails with probability `before` with a 503 before it reaches
 * the emulator (nothing is started), and with probability `after` reaches it — the execution is created — and still
 * answers a 503 (the answer lost on the way back). Every other command passes.
 */
export function failingStartExecution(
  rng: Rng,
  p: { before: number; after: number },
  onFail?: (when: 'before' | 'after') => void,
): <T extends AwsClient>(sfn: T) => T {
  return <T extends AwsClient>(sfn: T): T =>
    new Proxy(sfn, {
      get: (target, key) =>
        key === 'send'
          ? async (command: AwsCommand) => {
              if (command.constructor.name !== 'StartExecutionCommand') return target.send(command);
              if (chance(rng, p.before)) {
                onFail?.('before');
                throw serviceUnavailable();
              }
              const output = await target.send(command);
              if (chance(rng, p.after)) {
                onFail?.('after');
                throw serviceUnavailable();
              }
              return output;
            }
          : Reflect.get(target, key, target),
    });
}

/**
 * The AWS SDK v3's standard retry strategy, as bundled into the Lambda functions (the versions package.json pins:
 * @smithy/core 3.41.1, `submodules/retry`): the "2026" retry behaviour (docs.aws.amazon.com/sdkref/latest/guide/
 * feature-retry-behavior.html), which these SDK versions apply without an opt-in.
 * - Attempts: 3 (DEFAULT_MAX_ATTEMPTS); the DynamoDB client 4 (`resolveRetryConfig(…, { defaultBaseDelay: 25,
 *   defaultMaxAttempts: 4 })` in @aws-sdk/client-dynamodb).
 * - Backoff before retry i (0-based): floor(random × min(base × 2^i, 20 s)) — full jitter — with base 50 ms
 *   (DynamoDB 25 ms) for transient errors and 1,000 ms for throttling.
 * - Retried: throttling (THROTTLING_ERROR_CODES, HTTP 429) and transient errors (TimeoutError, RequestTimeout,
 *   HTTP 500/502/503/504). Everything else — TransactionConflictException, ConditionalCheckFailedException,
 *   TransactionCanceledException, validation errors — reaches the caller at once: the SDK does not retry them.
 * - Retry quota: 500 tokens per client; a retry costs 14 (throttling 5); a success gives back what its retry cost, or 1.
 *   With the quota spent, errors reach the caller without retry.
 */
export interface SdkRetryProfile {
  maxAttempts: number;
  baseDelayMs: number;
  throttlingBaseDelayMs: number;
  maxDelayMs: number;
  retryQuota: number;
  retryCost: number;
  throttlingRetryCost: number;
}

export const SDK_RETRY: { standard: SdkRetryProfile; dynamodb: SdkRetryProfile; legacy: SdkRetryProfile } = {
  standard: { maxAttempts: 3, baseDelayMs: 50, throttlingBaseDelayMs: 1000, maxDelayMs: 20_000, retryQuota: 500, retryCost: 14, throttlingRetryCost: 5 },
  dynamodb: { maxAttempts: 4, baseDelayMs: 25, throttlingBaseDelayMs: 1000, maxDelayMs: 20_000, retryQuota: 500, retryCost: 14, throttlingRetryCost: 5 },
  /** The pre-2026 standard mode (@smithy/util-retry constants: base 100 ms, throttling 500 ms, cost 5, timeouts 10). */
  legacy: { maxAttempts: 3, baseDelayMs: 100, throttlingBaseDelayMs: 500, maxDelayMs: 20_000, retryQuota: 500, retryCost: 5, throttlingRetryCost: 5 },
};

/** @smithy/core service-error-classification THROTTLING_ERROR_CODES. */
const THROTTLING_ERROR_CODES = [
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
];
const TRANSIENT_ERROR_CODES = ['TimeoutError', 'RequestTimeout', 'RequestTimeoutException'];
const TRANSIENT_STATUS_CODES = [500, 502, 503, 504];
/**
 * The twin's emulators throw server errors by name, without the HTTP status the SDK would have read: these are the
 * statuses the services answer them with (InternalServerError 500: DynamoDB, ServiceUnavailable 503: Step Functions).
 */
const STATUS_OF_NAME: Record<string, number> = {
  InternalServerError: 500,
  InternalFailure: 500,
  InternalServerException: 500,
  ServiceUnavailable: 503,
  ServiceUnavailableException: 503,
};

type RetryErrorType = 'THROTTLING' | 'TRANSIENT' | 'SERVER_ERROR' | 'CLIENT_ERROR';

/** getRetryErrorType of @smithy/core's retry middleware, for the twin's errors. */
export function retryErrorType(error: unknown): RetryErrorType {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number }; $retryable?: { throttling?: boolean } };
  const status = e?.$metadata?.httpStatusCode ?? STATUS_OF_NAME[e?.name ?? ''];
  if (status === 429 || THROTTLING_ERROR_CODES.includes(e?.name ?? '') || e?.$retryable?.throttling === true) return 'THROTTLING';
  if (e?.$retryable !== undefined || TRANSIENT_ERROR_CODES.includes(e?.name ?? '') || TRANSIENT_STATUS_CODES.includes(status ?? 0)) return 'TRANSIENT';
  if (status !== undefined && status >= 500 && status <= 599) return 'SERVER_ERROR';
  return 'CLIENT_ERROR';
}

/**
 * A client whose `send` retries as the SDK would (see SdkRetryProfile), sleeping on the virtual clock. `onRetry`
 * hears each retry (attempt that failed, its error, the delay).
 */
export function sdkRetrying<T extends AwsClient>(
  client: T,
  clock: Pick<VirtualClock, 'sleep'>,
  rng: Rng,
  profile: SdkRetryProfile = SDK_RETRY.standard,
  onRetry?: (retry: { attempt: number; error: unknown; delayMs: number }) => void,
): T {
  let capacity = profile.retryQuota;
  const send = async (command: AwsCommand) => {
    let lastCost: number | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        const output = await client.send(command);
        capacity = Math.min(profile.retryQuota, capacity + (lastCost ?? 1));
        return output;
      } catch (error) {
        const type = retryErrorType(error);
        const cost = type === 'THROTTLING' ? profile.throttlingRetryCost : profile.retryCost;
        const retryable = type === 'THROTTLING' || type === 'TRANSIENT';
        if (!retryable || attempt >= profile.maxAttempts || capacity < cost) throw error;
        capacity -= cost;
        lastCost = cost;
        const base = type === 'THROTTLING' ? profile.throttlingBaseDelayMs : profile.baseDelayMs;
        const delayMs = Math.floor(rng() * Math.min(base * 2 ** (attempt - 1), profile.maxDelayMs));
        onRetry?.({ attempt, error, delayMs });
        await clock.sleep(delayMs);
      }
    }
  };
  return new Proxy(client, { get: (target, key) => (key === 'send' ? send : Reflect.get(target, key, target)) });
}

/** DynamoDB throttling at random: ProvisionedThroughputExceededException with probability p per request. */
export function dynamodbThrottle(rng: Rng, p: number, onThrottle?: () => void): { throttle(): boolean } {
  return {
    throttle: () => {
      const throttled = chance(rng, p);
      if (throttled) onThrottle?.();
      return throttled;
    },
  };
}
