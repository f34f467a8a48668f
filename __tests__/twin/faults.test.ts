import { VirtualClock } from '../../twin/engines/clock';
import { AwsError } from '../../twin/engines/errors';
import { crashingRun, dynamodbThrottle, failingStartExecution, FunctionCrashed, retryErrorType, SDK_RETRY, sdkRetrying } from '../../twin/engines/faults';
import { streamFor, type Rng } from '../../twin/engines/random';
import { standIn, type AwsClient } from '../../functions/runtime';

/** A command as the SDK builds it: the twin dispatches on the class name. */
class StartExecutionCommand {
  constructor(readonly input: Record<string, unknown> = {}) {}
}
class DescribeExecutionCommand {
  constructor(readonly input: Record<string, unknown> = {}) {}
}

/** A client that records what reached it. */
function recording(name: string, log: string[]) {
  return standIn({
    send: async (command: { constructor: { name: string } }) => {
      log.push(`${name}:${command.constructor.name}`);
      return { ok: true };
    },
    other: () => `${name} still answers`,
  });
}

/** An Rng that returns the given values in turn. */
const sequence = (...values: number[]): Rng => {
  let i = 0;
  return () => values[i++ % values.length];
};

describe('crashingRun', () => {
  it('dies before the k-th AWS call (k uniform in 1..N): what was sent stays sent, nothing after reaches AWS', async () => {
    const clock = new VirtualClock();
    clock.setTimeout(() => undefined, 42_000);
    await clock.run();
    const heard: unknown[] = [];
    // chance draws 0.1 < 1 (crash), then k = 1 + floor(0.5 × 5) = 3.
    const crashes = crashingRun(sequence(0.1, 0.5), 1, 5, clock, (crash) => heard.push(crash));
    const log: string[] = [];
    const invocation = crashes.begin();
    expect(invocation.crashAt).toBe(3);
    const sqs = invocation.wrap(recording('sqs', log));
    const sfn = invocation.wrap(recording('sfn', log));
    await sqs.send(new DescribeExecutionCommand());
    await sfn.send(new StartExecutionCommand());
    await expect(sqs.send(new DescribeExecutionCommand())).rejects.toBeInstanceOf(FunctionCrashed);
    await expect(sfn.send(new StartExecutionCommand())).rejects.toMatchObject({ name: 'FunctionCrashed', call: 3, of: 5 });
    expect(log).toEqual(['sqs:DescribeExecutionCommand', 'sfn:StartExecutionCommand']);
    expect(invocation.crashed).toEqual({ atSeconds: 42, call: 3, of: 5 });
    expect(crashes.crashes).toEqual([{ atSeconds: 42, call: 3, of: 5 }]);
    expect(heard).toEqual([{ atSeconds: 42, call: 3, of: 5 }]);
    // Everything but send passes through.
    expect(sqs.other()).toBe('sqs still answers');
  });

  it('draws the point among the calls the last completed run made (at least 2)', async () => {
    const clock = new VirtualClock();
    // Every invocation crashes, at the last of N calls: k = 1 + floor(0.99 × N) = N.
    const crashes = crashingRun(sequence(0.1, 0.99), 1, 4, clock);
    const calls =
      (n: number) =>
      async ({ c }: { c: AwsClient }) => {
        for (let i = 0; i < n; i++) await c.send(new DescribeExecutionCommand());
        return n;
      };
    const log: string[] = [];
    const client = { c: recording('c', log) };
    // N = 4 (the estimate); a run of 3 calls never reaches call 4 and completes: N becomes 3.
    await expect(crashes.run(client, calls(3))).resolves.toBe(3);
    await expect(crashes.run(client, calls(5))).rejects.toMatchObject({ call: 3, of: 3 });
    // A crashed run does not change N; a run with no calls makes it 2, not 0.
    await expect(crashes.run(client, calls(5))).rejects.toMatchObject({ call: 3, of: 3 });
    const none = crashingRun(sequence(0.1, 0.99), 1, 0, clock);
    await expect(none.run(client, calls(0))).resolves.toBe(0);
    await expect(none.run(client, calls(5))).rejects.toMatchObject({ call: 2, of: 2 });
  });

  it('keeps a run dead even when its code catches the crash and returns', async () => {
    const crashes = crashingRun(sequence(0.1, 0), 1, 3, new VirtualClock());
    const log: string[] = [];
    const body = async ({ c }: { c: AwsClient }) => {
      try {
        await c.send(new StartExecutionCommand());
      } catch {
        // the dispatcher's "start failed, give the batch back" path
      }
      await c.send(new DescribeExecutionCommand()).catch(() => undefined);
      return 'returned';
    };
    await expect(crashes.run({ c: recording('c', log) }, body)).rejects.toBeInstanceOf(FunctionCrashed);
    expect(log).toEqual([]);
  });

  it('crashes about p of the invocations, the same ones for the same seed', async () => {
    const points = async (seed: number) => {
      const crashes = crashingRun(streamFor(seed, 'faults.dispatcherCrash'), 0.2, 10, new VirtualClock());
      const out: Array<number | undefined> = [];
      for (let i = 0; i < 500; i++) out.push(crashes.begin().crashAt);
      return out;
    };
    const first = await points(1);
    expect(await points(1)).toEqual(first);
    expect(await points(2)).not.toEqual(first);
    const crashed = first.filter((k) => k !== undefined) as number[];
    expect(crashed.length).toBeGreaterThan(70);
    expect(crashed.length).toBeLessThan(130);
    expect(Math.min(...crashed)).toBe(1);
    expect(Math.max(...crashed)).toBe(10);
    expect(crashingRun(streamFor(1, 'x'), 0, 10, new VirtualClock()).begin().crashAt).toBeUndefined();
  });
});

describe('failingStartExecution', () => {
  it('fails StartExecution with a retryable 503 before it reaches Step Functions; other commands pass', async () => {
    const log: string[] = [];
    let failures = 0;
    const sfn = failingStartExecution(sequence(0), { before: 1, after: 0 }, () => failures++)(recording('sfn', log));
    const error = await sfn.send(new StartExecutionCommand()).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ServiceUnavailable', $fault: 'server', $metadata: { httpStatusCode: 503 } });
    expect(retryErrorType(error)).toBe('TRANSIENT');
    await sfn.send(new DescribeExecutionCommand());
    expect(log).toEqual(['sfn:DescribeExecutionCommand']);
    expect(failures).toBe(1);
  });

  it('fails about p of the StartExecution calls', async () => {
    const log: string[] = [];
    const sfn = failingStartExecution(streamFor(3, 'faults.startExecutionError'), { before: 0.1, after: 0 }, undefined)(recording('sfn', log));
    const results = await Promise.allSettled(Array.from({ length: 1000 }, () => sfn.send(new StartExecutionCommand())));
    const failed = results.filter((r) => r.status === 'rejected').length;
    expect(failed).toBeGreaterThan(70);
    expect(failed).toBeLessThan(130);
    expect(log).toHaveLength(1000 - failed);
  });

  it('after: the execution is created, and the caller still gets a 503 (the answer lost on the way back)', async () => {
    const log: string[] = [];
    const seen: string[] = [];
    const sfn = failingStartExecution(sequence(0), { before: 0, after: 1 }, (when) => seen.push(when))(recording('sfn', log));
    const error = await sfn.send(new StartExecutionCommand()).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ServiceUnavailable' });
    expect(log).toEqual(['sfn:StartExecutionCommand']);
    expect(seen).toEqual(['after']);
  });
});

describe('sdkRetrying (the SDK v3 standard retry strategy)', () => {
  /** A client that fails with these errors, then answers. */
  function flaky(errors: unknown[]) {
    const attempts: number[] = [];
    let i = 0;
    return {
      attempts,
      client: standIn({
        send: async (_command: unknown) => {
          attempts.push(clockOf.now() - clockOf.epochMs);
          if (i < errors.length) throw errors[i++];
          return { ok: true };
        },
      }),
    };
  }
  let clockOf: VirtualClock;
  beforeEach(() => {
    clockOf = new VirtualClock();
  });
  const settle = async <T>(promise: Promise<T>) => {
    const outcome = promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await clockOf.run();
    return outcome;
  };
  const throttled = () => new AwsError('ThrottlingException', 'Rate exceeded');

  it('retries throttling with full-jitter exponential backoff on virtual time (1 s base)', async () => {
    const { client, attempts } = flaky([throttled(), throttled()]);
    const retrying = sdkRetrying(client, clockOf, sequence(0.5));
    expect(await settle(retrying.send(new DescribeExecutionCommand()))).toEqual({ value: { ok: true } });
    // Delays: 0.5 × min(1000 × 2^0, 20 s) = 500 ms, then 0.5 × 2000 = 1000 ms.
    expect(attempts).toEqual([0, 500, 1500]);
  });

  it('retries 5xx and throughput errors with the transient base (50 ms; DynamoDB 25 ms, 4 attempts)', async () => {
    const server = Object.assign(new AwsError('InternalServerError', 'Internal server error'), { $metadata: { httpStatusCode: 500 } });
    const { client, attempts } = flaky([server, server]);
    await settle(sdkRetrying(client, clockOf, sequence(0.5)).send({}));
    expect(attempts).toEqual([0, 25, 75]);

    clockOf = new VirtualClock();
    const ddb = flaky([
      new AwsError('ProvisionedThroughputExceededException', 'x'),
      new AwsError('ProvisionedThroughputExceededException', 'x'),
      new AwsError('ProvisionedThroughputExceededException', 'x'),
    ]);
    expect(await settle(sdkRetrying(ddb.client, clockOf, sequence(1 - 1e-9), SDK_RETRY.dynamodb).send({}))).toEqual({ value: { ok: true } });
    expect(ddb.attempts).toHaveLength(4);
    // Throttling uses 1 s whatever the client's base: just under 1 s, 2 s, 4 s.
    expect(ddb.attempts[3]).toBeCloseTo(999 + 1999 + 3999, -1);
  });

  it('gives up after the attempts and hands the last error over', async () => {
    const errors = Array.from({ length: 10 }, (_, i) => new AwsError('ThrottlingException', `throttle ${i + 1}`));
    const { client, attempts } = flaky(errors);
    const outcome = await settle(sdkRetrying(client, clockOf, sequence(0.5)).send({}));
    expect(attempts).toHaveLength(3);
    expect(outcome).toEqual({ error: errors[2] });
  });

  it('passes non-retryable errors at once: the SDK does not retry conflicts or failed conditions', async () => {
    for (const name of [
      'TransactionConflictException',
      'ConditionalCheckFailedException',
      'TransactionCanceledException',
      'ExecutionAlreadyExists',
      'FunctionCrashed',
    ]) {
      clockOf = new VirtualClock();
      const { client, attempts } = flaky([new AwsError(name, 'no')]);
      const outcome = await settle(sdkRetrying(client, clockOf, sequence(0.5)).send({}));
      expect(attempts).toEqual([0]);
      expect(outcome).toMatchObject({ error: { name } });
    }
  });

  it('caps each delay at 20 s, and stops retrying once the retry quota is spent', async () => {
    const many = { ...SDK_RETRY.standard, maxAttempts: 12 };
    const { client, attempts } = flaky(Array.from({ length: 11 }, throttled));
    await settle(sdkRetrying(client, clockOf, sequence(1 - 1e-9), many).send({}));
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]);
    expect(Math.max(...gaps)).toBe(19_999);
    expect(gaps.filter((g) => g === 19_999)).toHaveLength(6);

    // A quota of 28 pays for two transient retries (14 each); then errors pass as they come.
    clockOf = new VirtualClock();
    const tight = { ...SDK_RETRY.standard, retryQuota: 28 };
    const server = () => Object.assign(new AwsError('ServiceUnavailable', 'x'), { $metadata: { httpStatusCode: 503 } });
    const spent = flaky([server(), server(), server(), server()]);
    const retrying = sdkRetrying(spent.client, clockOf, sequence(0.5), tight);
    await settle(retrying.send({}));
    expect(spent.attempts).toHaveLength(3);
    expect(await settle(retrying.send({}))).toMatchObject({ error: { name: 'ServiceUnavailable' } });
    expect(spent.attempts).toHaveLength(4);
  });

  it('classifies errors as the SDK does', () => {
    expect(retryErrorType(new AwsError('RequestLimitExceeded', 'x'))).toBe('THROTTLING');
    expect(retryErrorType(Object.assign(new Error('x'), { name: 'Whatever', $metadata: { httpStatusCode: 429 } }))).toBe('THROTTLING');
    expect(retryErrorType(new AwsError('ServiceUnavailable', 'x'))).toBe('TRANSIENT');
    expect(retryErrorType(Object.assign(new Error('x'), { name: 'Odd', $metadata: { httpStatusCode: 501 } }))).toBe('SERVER_ERROR');
    expect(retryErrorType(new AwsError('TransactionConflictException', 'x'))).toBe('CLIENT_ERROR');
  });
});

describe('dynamodbThrottle', () => {
  it('throttles about p of the requests, the same ones for the same seed', () => {
    let heard = 0;
    const draw = (seed: number) => {
      const source = dynamodbThrottle(streamFor(seed, 'faults.dynamodbThrottle'), 0.3, () => heard++);
      return Array.from({ length: 1000 }, () => source.throttle());
    };
    const first = draw(5);
    expect(draw(5)).toEqual(first);
    const throttled = first.filter(Boolean).length;
    expect(throttled).toBeGreaterThan(250);
    expect(throttled).toBeLessThan(350);
    expect(heard).toBe(2 * throttled);
    expect(dynamodbThrottle(streamFor(5, 'x'), 0, undefined).throttle()).toBe(false);
  });
});
