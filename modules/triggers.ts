import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission';
import type { Construct } from 'constructs';
import type { NodeFunction } from './node-function';

/** What a rule invokes a function with: a constant it gets instead of the event (EventBridge then passes nothing of the event), or the event. */
export type TriggerInput = Record<string, string> | 'the event';

/** Invokes `fn` from `rule`, and only that rule may: a target and a permission, both named `id`. */
export function invokeFromRule(scope: Construct, id: string, fn: NodeFunction, input: TriggerInput, rule: { name: string; arn: string }): void {
  new CloudwatchEventTarget(scope, `${id}-target`, {
    rule: rule.name,
    targetId: id,
    arn: fn.deployedArn,
    ...(input === 'the event' ? {} : { input: JSON.stringify(input) }),
  });
  new LambdaPermission(scope, `${id}-permission`, {
    statementId: id,
    action: 'lambda:InvokeFunction',
    functionName: fn.functionName,
    principal: 'events.amazonaws.com',
    sourceArn: rule.arn,
  });
}

/** A rule of its own, on a schedule or an event pattern, that invokes `fn`. */
export function invokeOnOwnRule(
  scope: Construct,
  id: string,
  fn: NodeFunction,
  input: TriggerInput,
  source: { name: string; schedule: string } | { name: string; pattern: Record<string, unknown> },
): void {
  const rule = new CloudwatchEventRule(scope, `${id}-rule`, {
    name: source.name,
    ...('schedule' in source ? { scheduleExpression: source.schedule } : { eventPattern: JSON.stringify(source.pattern) }),
  });
  invokeFromRule(scope, id, fn, input, rule);
}
