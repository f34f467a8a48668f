import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue';
import { SqsQueuePolicy } from '@cdktf/provider-aws/lib/sqs-queue-policy';
import { Construct } from 'constructs';
import { objectsPerTaskOf, type EnvironmentConfig } from '../environments';
import { denyInsecureTransport, oneOrList, policyJson, type PolicyStatement } from './iam';
import type { Bucket } from './bucket';
import type { NodeFunction } from './node-function';
import type { Observability } from './observability';
import { INTAKE_VISIBILITY_TIMEOUT_SECONDS } from '../environments/function-settings';
import { invokeFromRule } from './triggers';
import {
  intakeDeadLetterQueueName,
  intakeQueueName,
  objectCreatedRuleName,
  routeQueueName,
  stageRouteName,
  ruleDeadLetterQueueName,
} from '../environments/names';
import { INTAKE_RETENTION_SECONDS } from '../functions/jobs';
import type { RouteSettings } from '../functions/routes';
import type { RouteTask } from './compute';

interface IntakeProps {
  readonly config: EnvironmentConfig;
  /** Where uploads land: the rule matches its Object Created events. */
  readonly bucket: Bucket;
  readonly observability: Observability;
}

type RouteConfig = NonNullable<EnvironmentConfig['routes']>[number];

/** Which uploads a rule sends on: those under the prefix (and with the suffix, if set). */
interface KeyFilter {
  readonly inputPrefix: string;
  readonly inputSuffix?: string;
}

/** A route as the dispatcher and the janitor take it (its queue's URL among its settings), and its queue's ARN. */
export type IntakeRoute = Omit<RouteSettings, keyof RouteTask> & { readonly queueArn: string };

/** A rule that sends uploads to a queue, and where its target that wakes the dispatcher goes (`id`, in `scope`). */
interface UploadRule {
  readonly rule: CloudwatchEventRule;
  readonly scope: Construct;
  readonly id: string;
}

/** The S3 event pattern: Object Created in this bucket under the input prefix (and with the suffix, if set). */
function objectCreatedPattern(bucketName: string, inputPrefix: string, inputSuffix?: string) {
  const keyFilter = inputSuffix ? { wildcard: `${inputPrefix}*${inputSuffix}` } : { prefix: inputPrefix };
  return {
    source: ['aws.s3'],
    'detail-type': ['Object Created'],
    detail: { bucket: { name: [bucketName] }, object: { key: [keyFilter] } },
  };
}

/** An intake queue: a message received maxReceiveCount times goes to the stage's one intake DLQ. */
function intakeQueue(scope: Construct, id: string, name: string, config: EnvironmentConfig, deadLetters: SqsQueue): SqsQueue {
  return new SqsQueue(scope, id, {
    name,
    messageRetentionSeconds: INTAKE_RETENTION_SECONDS,
    visibilityTimeoutSeconds: INTAKE_VISIBILITY_TIMEOUT_SECONDS,
    receiveWaitTimeSeconds: 0,
    sqsManagedSseEnabled: true,
    redrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetters.arn, maxReceiveCount: config.intake.maxReceiveCount }),
  });
}

/** Uploads matching `filter` → `queue`, retried by EventBridge, then the rule DLQ. */
function objectCreatedRule(
  scope: Construct,
  props: IntakeProps,
  route: { readonly name: string | undefined; readonly filter: KeyFilter; readonly to: string },
  queue: SqsQueue,
  ruleDeadLetters: SqsQueue,
): CloudwatchEventRule {
  const { intake } = props.config;
  const { inputPrefix, inputSuffix } = route.filter;
  const rule = new CloudwatchEventRule(scope, 'object-created', {
    name: objectCreatedRuleName(props.config, route.name),
    description: `S3 Object Created in ${inputPrefix}${inputSuffix ? `*${inputSuffix}` : ''} → ${route.to}`,
    eventPattern: JSON.stringify(objectCreatedPattern(props.bucket.bucketName, inputPrefix, inputSuffix)),
  });
  new CloudwatchEventTarget(scope, 'to-queue', {
    rule: rule.name,
    targetId: 'intake-queue',
    arn: queue.arn,
    retryPolicy: {
      maximumRetryAttempts: intake.ruleRetryAttempts,
      maximumEventAgeInSeconds: intake.ruleMaxEventAgeSeconds,
    },
    deadLetterConfig: { arn: ruleDeadLetters.arn },
  });
  return rule;
}

/** Only the given rules may send to the queue, over TLS. */
function onlyFromRules(scope: Construct, id: string, queue: SqsQueue, sid: string, rules: readonly CloudwatchEventRule[]): void {
  const allow: PolicyStatement[] =
    rules.length > 0
      ? [
          {
            Sid: sid,
            Effect: 'Allow',
            Principal: { Service: 'events.amazonaws.com' },
            Action: 'sqs:SendMessage',
            Resource: queue.arn,
            Condition: { ArnEquals: { 'aws:SourceArn': oneOrList(rules.map((rule) => rule.arn)) } },
          },
        ]
      : [];
  new SqsQueuePolicy(scope, id, { queueUrl: queue.url, policy: policyJson(...allow, denyInsecureTransport([queue.arn])) });
}

/** Alarms when uploads to a queue have waited longer than intake.backlogAlarmAgeSeconds. */
function backlogAlarm(props: IntakeProps, queue: SqsQueue, route?: string): void {
  props.observability.alarm({
    namespace: 'AWS/SQS',
    statistic: 'Maximum',
    name: route === undefined ? 'intake-backlog-age' : `intake-backlog-age-${route}`,
    dimensions: { QueueName: queue.name },
    metric: 'ApproximateAgeOfOldestMessage',
    threshold: props.config.intake.backlogAlarmAgeSeconds,
    description: `Uploads${route === undefined ? '' : ` to route ${route}`} have waited longer than expected for capacity: the budget may be too small or paused.`,
  });
}

/** A route other than the one at the stage's prefix: its own queue, Object Created rule, queue policy and backlog alarm. */
class RouteIntake extends Construct {
  readonly queue: SqsQueue;
  readonly uploadRule: UploadRule;

  constructor(scope: Construct, id: string, props: IntakeProps, route: RouteConfig, deadLetters: { queue: SqsQueue; rule: SqsQueue }) {
    super(scope, id);
    this.queue = intakeQueue(this, 'queue', routeQueueName(props.config, route.name), props.config, deadLetters.queue);
    const to = `the ${route.name} route's intake queue`;
    const rule = objectCreatedRule(this, props, { name: route.name, filter: route, to }, this.queue, deadLetters.rule);
    onlyFromRules(this, 'queue-policy', this.queue, 'OnlyTheObjectCreatedRule', [rule]);
    backlogAlarm(props, this.queue, route.name);
    // A Lambda permission's statement id is unique in the function's policy: each rule's is named after its route.
    this.uploadRule = { rule, scope: this, id: `dispatch-on-upload-${route.name}` };
  }
}

/** The uploads the stage's own rule sends on: under bucket.inputPrefix, with the stage's suffix or its route's. */
function ownFilter(config: EnvironmentConfig): KeyFilter | undefined {
  return config.routes === undefined ? config.bucket : config.routes.find((route) => route.name === stageRouteName(config));
}

/**
 * Durable intake: EventBridge delivers each upload into SQS, where work waits for capacity.
 * Nothing waits in a running execution, so a burst costs queue storage, not state transitions.
 * A stage with routes has a queue and a rule per route, all with the stage's dead-letter queues; the route at the
 * stage's input prefix keeps the stage's own.
 */
export class Intake extends Construct {
  readonly queueArn: string;
  readonly queueUrl: string;
  readonly queueName: string;
  readonly deadLetterQueueArn: string;
  readonly deadLetterQueueUrl: string;
  readonly ruleDeadLetterQueueArn: string;
  /** Each route with its queue (the stage's own for the route at its input prefix); undefined for a stage without routes. */
  readonly routes?: readonly IntakeRoute[];
  /** Every queue a job may wait in: the stage's own and each other route's. */
  readonly queueArns: readonly string[];
  /** The Object Created rules: their targets are the queues and the dispatcher (`wakeOnUpload`). */
  private readonly uploadRules: readonly UploadRule[];

  constructor(scope: Construct, id: string, props: IntakeProps) {
    super(scope, id);
    const { config } = props;
    const { queue, deadLetters, ruleDeadLetters } = this.queues(props);
    const own = ownFilter(config);
    const rule = own && objectCreatedRule(this, props, { name: stageRouteName(config), filter: own, to: 'intake queue' }, queue, ruleDeadLetters);
    const routeIntakes = new Map(
      (config.routes ?? [])
        .filter((route) => route.name !== stageRouteName(config))
        .map((route) => [route.name, new RouteIntake(this, `route-${route.name}`, props, route, { queue: deadLetters, rule: ruleDeadLetters })]),
    );
    const others = [...routeIntakes.values()];
    this.uploadRules = [...(rule ? [{ rule, scope: this, id: 'dispatch-on-upload' }] : []), ...others.map((other) => other.uploadRule)];
    onlyFromRules(this, 'queue-policy', queue, 'OnlyTheObjectCreatedRule', rule ? [rule] : []);
    onlyFromRules(
      this,
      'rule-dead-letters-policy',
      ruleDeadLetters,
      'OnlyTheObjectCreatedRuleDeadLetters',
      this.uploadRules.map((upload) => upload.rule),
    );
    this.alarms(props, queue, deadLetters, ruleDeadLetters);
    this.queueArn = queue.arn;
    this.queueUrl = queue.url;
    this.queueName = queue.name;
    this.deadLetterQueueArn = deadLetters.arn;
    this.deadLetterQueueUrl = deadLetters.url;
    this.ruleDeadLetterQueueArn = ruleDeadLetters.arn;
    const queueOf = (route: RouteConfig) => routeIntakes.get(route.name)?.queue ?? queue;
    this.routes = config.routes?.map((route) => ({
      name: route.name,
      queueUrl: queueOf(route).url,
      queueArn: queueOf(route).arn,
      inputPrefix: route.inputPrefix,
      inputSuffix: route.inputSuffix,
      share: route.share,
      priority: route.priority,
      maxVcpu: route.maxVcpu,
      reservedVcpu: route.reservedVcpu,
      // Only on a route whose tasks pack: an unpacked route's settings stay as they were.
      ...(objectsPerTaskOf(config, route) > 1 ? { objectsPerTask: objectsPerTaskOf(config, route) } : {}),
    }));
    this.queueArns = [queue.arn, ...others.map((other) => other.queue.arn)];
  }

  /** Wakes the dispatcher on each upload too, from each Object Created rule: its second target, beside the queue. */
  wakeOnUpload(dispatcher: NodeFunction): void {
    for (const { scope, id, rule } of this.uploadRules) invokeFromRule(scope, id, dispatcher, { reason: 'object-created' }, rule);
  }

  /**
   * The routes as the dispatcher and the janitor are configured with them, each with what its jobs run on (its own
   * task, or the stage's); undefined for a stage without routes.
   */
  routeSettings(tasks: { taskOfRoute(route: string): RouteTask }): RouteSettings[] | undefined {
    return this.routes?.map(({ queueArn: _queueArn, ...settings }) => ({ ...settings, ...tasks.taskOfRoute(settings.name) }));
  }

  /** The intake queue, its DLQ, and the DLQ of the rules' own undelivered events. */
  private queues(props: IntakeProps): { queue: SqsQueue; deadLetters: SqsQueue; ruleDeadLetters: SqsQueue } {
    const { namePrefix } = props.config;
    const deadLetters = new SqsQueue(this, 'dead-letters', {
      name: intakeDeadLetterQueueName(namePrefix),
      messageRetentionSeconds: INTAKE_RETENTION_SECONDS,
      sqsManagedSseEnabled: true,
    });
    const queue = intakeQueue(this, 'queue', intakeQueueName(namePrefix), props.config, deadLetters);
    // Events EventBridge could not deliver to the queue (after its own retries) land here, not nowhere.
    const ruleDeadLetters = new SqsQueue(this, 'rule-dead-letters', {
      name: ruleDeadLetterQueueName(namePrefix),
      messageRetentionSeconds: INTAKE_RETENTION_SECONDS,
      sqsManagedSseEnabled: true,
    });
    return { queue, deadLetters, ruleDeadLetters };
  }

  private alarms(props: IntakeProps, queue: SqsQueue, deadLetters: SqsQueue, ruleDeadLetters: SqsQueue): void {
    const { stage } = props.config;
    props.observability.alarm({
      namespace: 'AWS/SQS',
      statistic: 'Maximum',
      name: 'intake-dead-letters',
      dimensions: { QueueName: deadLetters.name },
      metric: 'ApproximateNumberOfMessagesVisible',
      threshold: 0,
      description: `Poison or repeatedly failing intake messages; each carries its reason. npx sluice failures --stage ${stage} shows them; fix, then npx sluice redrive --dlq.`,
    });
    props.observability.alarm({
      namespace: 'AWS/SQS',
      statistic: 'Maximum',
      name: 'intake-rule-dead-letters',
      dimensions: { QueueName: ruleDeadLetters.name },
      metric: 'ApproximateNumberOfMessagesVisible',
      threshold: 0,
      description: `EventBridge could not deliver S3 events to the intake queue. npx sluice redrive --dlq --stage ${stage} sends them on.`,
    });
    backlogAlarm(props, queue);
  }
}
