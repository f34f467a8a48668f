/** What every handler shares: the clock, structured logs and settings read from the environment. */
import { z } from 'zod';
import type { LogEvent } from './log-events';
import { withMetrics } from './metrics';

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export type Log = (event: LogEvent) => void;

/** A command: the SDK's classes (v3), or the twin's and the tests' stand-ins, which the twin tells apart by class name. */
export interface AwsCommand {
  readonly input: object;
}

/**
 * The output a command answers with, as its SDK class declares it (the handler its middleware resolves to); unknown
 * for a command that does not say.
 */
export type OutputOf<C> = C extends { resolveMiddleware(...args: never[]): (args: never) => Promise<{ output: infer Output }> } ? Output : unknown;

/**
 * An AWS client as sluice's code uses one: it sends a command and answers with the command's output, typed by the
 * command's class as the SDK types it. The SDK's clients are this; so are the twin's engines and the tests' fakes, which
 * answer without the SDK's types (through `standIn`) — one type for all three.
 */
export interface AwsClient {
  send<C extends AwsCommand>(command: C): Promise<OutputOf<C>>;
}

/**
 * A stand-in for an AWS client (the twin's engines, the explorer's gates, the tests' fakes): it answers as AWS would,
 * without the SDK's types, and its answers are taken for the commands' outputs.
 */
export function standIn<T extends { send(command: never): Promise<unknown> }>(client: T): T & AwsClient {
  return client as T & AwsClient;
}

/**
 * One JSON line per event, so CloudWatch Logs Insights can query every field. A run's summary also carries its
 * metrics (Embedded Metric Format, functions/metrics.ts), dimensioned by the Lambda function it runs in. That line
 * goes straight to stdout: with the JSON log format the functions use, the runtime wraps console.log output in its
 * own object (`message`), where CloudWatch no longer finds `_aws` and extracts nothing.
 */
export function jsonLog(component: string, functionName = process.env.AWS_LAMBDA_FUNCTION_NAME): Log {
  return (event) => {
    const line = withMetrics({ component, ...event }, functionName, Date.now());
    if ('_aws' in line) process.stdout.write(`${JSON.stringify(line)}\n`);
    else console.log(JSON.stringify(line));
  };
}

/** Parses a handler's settings from its environment; a missing or bad variable names itself. */
export function settingsFromEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv = process.env): z.output<T> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`bad function configuration: ${problems}`);
  }
  return result.data;
}

export const positiveNumber = z.coerce.number().positive();
export const positiveInt = z.coerce.number().int().positive();
export const nonNegativeInt = z.coerce.number().int().min(0);

/** `items` in order, cut into runs of `size` (the last may be shorter); none for no items. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
