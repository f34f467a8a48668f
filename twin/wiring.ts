/**
 * How a synthesized stage is wired by EventBridge, read from its `cdk.tf.json` rather than written again here:
 * which rule runs on a schedule, which matches uploads or execution status changes, and what each target gets —
 * the rule's constant `input`, or (without one) the event itself, as EventBridge delivers it.
 */
import type { TerraformJson } from '../synth/output';

export type TargetOf =
  { readonly kind: 'queue'; readonly queueName: string } | { readonly kind: 'function'; readonly functionName: string; readonly input?: unknown };

interface Rule {
  readonly name: string;
  /** Seconds between runs, for a `rate(…)` schedule. */
  readonly everySeconds?: number;
  readonly pattern?: {
    readonly source?: string[];
    readonly detail?: {
      readonly status?: string[];
      readonly object?: { readonly key?: ReadonlyArray<{ readonly prefix?: string; readonly wildcard?: string }> };
    };
  };
  readonly targets: TargetOf[];
  /**
   * The retry policy of the rule's targets (the twin's rule applies one to all: the upload rule's queue target has
   * one, and its function target, whose asynchronous invocation is accepted at once, never needs EventBridge's).
   */
  readonly retry?: { readonly maximumRetryAttempts?: number; readonly maximumEventAgeSeconds?: number };
}

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const UNIT_SECONDS: Record<string, number> = { minute: 60, minutes: 60, hour: 3600, hours: 3600, day: 86400, days: 86400 };

function everySeconds(expression: string): number {
  const match = RATE.exec(expression);
  if (!match) throw new Error(`sluice twin: schedule "${expression}" is not a rate(…) the twin runs`);
  return Number(match[1]) * UNIT_SECONDS[match[2]];
}

/** A target's ARN as the twin names things: a queue's or a function's name. */
function targetOf(arn: string, input: string | undefined): TargetOf {
  const sqs = /^arn:aws[a-z-]*:sqs:[^:]+:\d+:(.+)$/.exec(arn);
  if (sqs) return { kind: 'queue', queueName: sqs[1] };
  const lambda = /^arn:aws[a-z-]*:lambda:[^:]+:\d+:function:([^:]+)/.exec(arn);
  if (lambda) return { kind: 'function', functionName: lambda[1], ...(input !== undefined ? { input: JSON.parse(input) as unknown } : {}) };
  throw new Error(`sluice twin: a rule targets ${arn}, which the twin does not run`);
}

/** Every rule of the stage with its targets; `resolve` turns references into the twin's names and ARNs. */
export function eventRules(json: TerraformJson, resolve: (text: string) => string): Rule[] {
  const rules = Object.values(json.resource?.aws_cloudwatch_event_rule ?? {}) as Array<Record<string, unknown>>;
  const targets = Object.values(json.resource?.aws_cloudwatch_event_target ?? {}) as Array<Record<string, unknown>>;
  return rules.map((rule) => {
    const name = resolve(String(rule.name));
    const mine = targets.filter((t) => resolve(String(t.rule)) === name);
    const retry = mine.map((t) => t.retry_policy as { maximum_retry_attempts?: number; maximum_event_age_in_seconds?: number } | undefined).find(Boolean);
    return {
      name,
      ...(rule.schedule_expression ? { everySeconds: everySeconds(String(rule.schedule_expression)) } : {}),
      ...(rule.event_pattern ? { pattern: JSON.parse(resolve(String(rule.event_pattern))) as Rule['pattern'] } : {}),
      targets: mine.map((t) => targetOf(resolve(String(t.arn)), t.input === undefined ? undefined : resolve(String(t.input)))),
      ...(retry ? { retry: { maximumRetryAttempts: retry.maximum_retry_attempts, maximumEventAgeSeconds: retry.maximum_event_age_in_seconds } } : {}),
    };
  });
}

/** Every rule whose pattern matches events of `source` (a stage with routes has an upload rule per route). */
export function rulesForSource(rules: readonly Rule[], source: string): Rule[] {
  const matching = rules.filter((r) => r.pattern?.source?.includes(source));
  if (matching.length === 0) throw new Error(`sluice twin: expected a rule for ${source} events, found none`);
  return matching;
}

/** The one rule whose pattern matches events of `source`. */
export function ruleForSource(rules: readonly Rule[], source: string): Rule {
  const matching = rulesForSource(rules, source);
  if (matching.length !== 1) throw new Error(`sluice twin: expected one rule for ${source} events, found ${matching.length}`);
  return matching[0];
}

/**
 * Whether an upload rule's key filter takes the key: EventBridge's `prefix`, or a `wildcard` whose `*` matches
 * anything; a rule without one takes every key. The bucket is not matched: an event for another bucket reaches
 * the intake, which must dead-letter it (the scenario's poison).
 */
export function ruleTakesKey(rule: Rule, key: string): boolean {
  const filters = rule.pattern?.detail?.object?.key;
  if (!filters) return true;
  return filters.some((f) => (f.prefix !== undefined ? key.startsWith(f.prefix) : f.wildcard !== undefined && wildcardRegExp(f.wildcard).test(key)));
}

function wildcardRegExp(wildcard: string): RegExp {
  return new RegExp(
    `^${wildcard
      .split('*')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}
