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

/**
 * An AWS client as sluice's code uses one: it sends a command and answers with the command's output. The SDK's
 * clients are this, and so are the twin's engines and the tests' wrappers — one type for all three. The SDK types
 * `send` by command class, which no one structural type can repeat: the output is read as the command's at each call.
 */
export interface AwsClient {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above: typed by the command at each call site
  send(command: any): Promise<any>;
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
