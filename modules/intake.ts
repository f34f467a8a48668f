import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue';
import { SqsQueuePolicy } from '@cdktf/provider-aws/lib/sqs-queue-policy';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../environments';
import { denyInsecureTransport, policyJson } from './iam';
import type { Bucket } from './bucket';
import type { NodeFunction } from './node-function';
import type { Observability } from './observability';
import { INTAKE_VISIBILITY_TIMEOUT_SECONDS } from '../environments/function-settings';
import { invokeFromRule } from './triggers';
import { intakeDeadLetterQueueName, intakeQueueName, ruleDeadLetterQueueName } from '../environments/names';
import { INTAKE_RETENTION_SECONDS } from '../functions/jobs';

interface IntakeProps {
  readonly config: EnvironmentConfig;
  /** Where uploads land: the rule matches its Object Created events. */
  readonly bucket: Bucket;
  readonly observability: Observability;
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

/**
 * Durable intake: EventBridge delivers each upload into SQS, where work waits for capacity.
 * Nothing waits in a running execution, so a burst costs queue storage, not state transitions.
 */
export class Intake extends Construct {
  readonly queueArn: string;
  readonly queueUrl: string;
  readonly queueName: string;
  readonly deadLetterQueueArn: string;
  readonly deadLetterQueueUrl: string;
  readonly ruleDeadLetterQueueArn: string;
  /** The Object Created rule: its targets are the queue and the dispatcher (`wakeOnUpload`). */
  private readonly rule: CloudwatchEventRule;

  constructor(scope: Construct, id: string, props: IntakeProps) {
    super(scope, id);
    const { queue, deadLetters, ruleDeadLetters } = this.queues(props);
    const rule = this.objectCreatedRule(props, queue, ruleDeadLetters);
    this.onlyFromRule(rule, queue, ruleDeadLetters);
    this.alarms(props, queue, deadLetters, ruleDeadLetters);
    this.rule = rule;
    this.queueArn = queue.arn;
    this.queueUrl = queue.url;
    this.queueName = queue.name;
    this.deadLetterQueueArn = deadLetters.arn;
    this.deadLetterQueueUrl = deadLetters.url;
    this.ruleDeadLetterQueueArn = ruleDeadLetters.arn;
  }

  /** Wakes the dispatcher on each upload too, from the same rule: its second target, beside the queue. */
  wakeOnUpload(dispatcher: NodeFunction): void {
    invokeFromRule(this, 'dispatch-on-upload', dispatcher, { reason: 'object-created' }, this.rule);
  }

  /** The intake queue, its DLQ, and the DLQ of the rule's own undelivered events. */
  private queues(props: IntakeProps): { queue: SqsQueue; deadLetters: SqsQueue; ruleDeadLetters: SqsQueue } {
    const { namePrefix, intake } = props.config;
    const deadLetters = new SqsQueue(this, 'dead-letters', {
      name: intakeDeadLetterQueueName(namePrefix),
      messageRetentionSeconds: INTAKE_RETENTION_SECONDS,
      sqsManagedSseEnabled: true,
    });
    const queue = new SqsQueue(this, 'queue', {
      name: intakeQueueName(namePrefix),
      messageRetentionSeconds: INTAKE_RETENTION_SECONDS,
      visibilityTimeoutSeconds: INTAKE_VISIBILITY_TIMEOUT_SECONDS,
      receiveWaitTimeSeconds: 0,
      sqsManagedSseEnabled: true,
      redrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetters.arn, maxReceiveCount: intake.maxReceiveCount }),
    });
    // Events EventBridge could not deliver to the queue (after its own retries) land here, not nowhere.
    const ruleDeadLetters = new SqsQueue(this, 'rule-dead-letters', {
      name: ruleDeadLetterQueueName(namePrefix),
      messageRetentionSeconds: INTAKE_RETENTION_SECONDS,
      sqsManagedSseEnabled: true,
    });
    return { queue, deadLetters, ruleDeadLetters };
  }

  /** Uploads in the input prefix (and suffix) → the queue, retried by EventBridge, then its DLQ. */
  private objectCreatedRule(props: IntakeProps, queue: SqsQueue, ruleDeadLetters: SqsQueue): CloudwatchEventRule {
    const { namePrefix, intake } = props.config;
    const { inputPrefix, inputSuffix } = props.config.bucket;
    const rule = new CloudwatchEventRule(this, 'object-created', {
      name: `${namePrefix}-object-created`,
      description: `S3 Object Created in ${inputPrefix}${inputSuffix ? `*${inputSuffix}` : ''} → intake queue`,
      eventPattern: JSON.stringify(objectCreatedPattern(props.bucket.bucketName, inputPrefix, inputSuffix)),
    });
    new CloudwatchEventTarget(this, 'to-queue', {
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

  /** Only the rule may send to the queue and to the rule's DLQ, over TLS. */
  private onlyFromRule(rule: CloudwatchEventRule, queue: SqsQueue, ruleDeadLetters: SqsQueue): void {
    const onlyFromRule = (queueArn: string, sid: string) =>
      policyJson(
        {
          Sid: sid,
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: queueArn,
          Condition: { ArnEquals: { 'aws:SourceArn': rule.arn } },
        },
        denyInsecureTransport([queueArn]),
      );
    new SqsQueuePolicy(this, 'queue-policy', {
      queueUrl: queue.url,
      policy: onlyFromRule(queue.arn, 'OnlyTheObjectCreatedRule'),
    });
    new SqsQueuePolicy(this, 'rule-dead-letters-policy', {
      queueUrl: ruleDeadLetters.url,
      policy: onlyFromRule(ruleDeadLetters.arn, 'OnlyTheObjectCreatedRuleDeadLetters'),
    });
  }

  private alarms(props: IntakeProps, queue: SqsQueue, deadLetters: SqsQueue, ruleDeadLetters: SqsQueue): void {
    const { stage, intake } = props.config;
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
    props.observability.alarm({
      namespace: 'AWS/SQS',
      statistic: 'Maximum',
      name: 'intake-backlog-age',
      dimensions: { QueueName: queue.name },
      metric: 'ApproximateAgeOfOldestMessage',
      threshold: intake.backlogAlarmAgeSeconds,
      description: 'Uploads have waited longer than expected for capacity: the budget may be too small or paused.',
    });
  }
}
