import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue';
import { SqsQueuePolicy } from '@cdktf/provider-aws/lib/sqs-queue-policy';
import { Construct } from 'constructs';
import { denyInsecureTransport, policyJson } from './iam';
import { Observability } from './observability';
import { intakeDeadLetterQueueName, intakeQueueName, ruleDeadLetterQueueName } from '../environments/names';
import { INTAKE_RETENTION_SECONDS } from '../functions/jobs';

interface IntakeProps {
  readonly namePrefix: string;
  /** The stage's name, for the commands the alarms point at. */
  readonly stage: string;
  readonly bucketName: string;
  readonly inputPrefix: string;
  readonly inputSuffix?: string;
  readonly maxReceiveCount: number;
  readonly ruleRetryAttempts: number;
  readonly ruleMaxEventAgeSeconds: number;
  readonly backlogAlarmAgeSeconds: number;
  /** How long a received message stays invisible: longer than the dispatcher's timeout (modules/dispatch.ts). */
  readonly visibilityTimeoutSeconds: number;
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
  readonly ruleArn: string;
  readonly ruleName: string;
  readonly queueArn: string;
  readonly queueUrl: string;
  readonly queueName: string;
  readonly deadLetterQueueArn: string;
  readonly deadLetterQueueUrl: string;
  readonly ruleDeadLetterQueueArn: string;

  constructor(scope: Construct, id: string, props: IntakeProps) {
    super(scope, id);
    const { queue, deadLetters, ruleDeadLetters } = this.queues(props);
    const rule = this.rule(props, queue, ruleDeadLetters);
    this.onlyFromRule(rule, queue, ruleDeadLetters);
    this.alarms(props, queue, deadLetters, ruleDeadLetters);
    this.ruleArn = rule.arn;
    this.ruleName = rule.name;
    this.queueArn = queue.arn;
    this.queueUrl = queue.url;
    this.queueName = queue.name;
    this.deadLetterQueueArn = deadLetters.arn;
    this.deadLetterQueueUrl = deadLetters.url;
    this.ruleDeadLetterQueueArn = ruleDeadLetters.arn;
  }

  /** The intake queue, its DLQ, and the DLQ of the rule's own undelivered events. */
  private queues(props: IntakeProps): { queue: SqsQueue; deadLetters: SqsQueue; ruleDeadLetters: SqsQueue } {
    const { namePrefix } = props;
    const deadLetters = new SqsQueue(this, 'dead-letters', {
      name: intakeDeadLetterQueueName(namePrefix),
      messageRetentionSeconds: INTAKE_RETENTION_SECONDS,
      sqsManagedSseEnabled: true,
    });
    const queue = new SqsQueue(this, 'queue', {
      name: intakeQueueName(namePrefix),
      messageRetentionSeconds: INTAKE_RETENTION_SECONDS,
      visibilityTimeoutSeconds: props.visibilityTimeoutSeconds,
      receiveWaitTimeSeconds: 0,
      sqsManagedSseEnabled: true,
      redrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetters.arn, maxReceiveCount: props.maxReceiveCount }),
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
  private rule(props: IntakeProps, queue: SqsQueue, ruleDeadLetters: SqsQueue): CloudwatchEventRule {
    const { namePrefix } = props;
    const rule = new CloudwatchEventRule(this, 'object-created', {
      name: `${namePrefix}-object-created`,
      description: `S3 Object Created in ${props.inputPrefix}${props.inputSuffix ? `*${props.inputSuffix}` : ''} → intake queue`,
      eventPattern: JSON.stringify(objectCreatedPattern(props.bucketName, props.inputPrefix, props.inputSuffix)),
    });
    new CloudwatchEventTarget(this, 'to-queue', {
      rule: rule.name,
      targetId: 'intake-queue',
      arn: queue.arn,
      retryPolicy: {
        maximumRetryAttempts: props.ruleRetryAttempts,
        maximumEventAgeInSeconds: props.ruleMaxEventAgeSeconds,
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
    props.observability.alarm({
      namespace: 'AWS/SQS',
      statistic: 'Maximum',
      name: 'intake-dead-letters',
      dimensions: { QueueName: deadLetters.name },
      metric: 'ApproximateNumberOfMessagesVisible',
      threshold: 0,
      description: `Poison or repeatedly failing intake messages; each carries its reason. npx sluice failures --stage ${props.stage} shows them; fix, then npx sluice redrive --dlq.`,
    });
    props.observability.alarm({
      namespace: 'AWS/SQS',
      statistic: 'Maximum',
      name: 'intake-rule-dead-letters',
      dimensions: { QueueName: ruleDeadLetters.name },
      metric: 'ApproximateNumberOfMessagesVisible',
      threshold: 0,
      description: `EventBridge could not deliver S3 events to the intake queue. npx sluice redrive --dlq --stage ${props.stage} sends them on.`,
    });
    props.observability.alarm({
      namespace: 'AWS/SQS',
      statistic: 'Maximum',
      name: 'intake-backlog-age',
      dimensions: { QueueName: queue.name },
      metric: 'ApproximateAgeOfOldestMessage',
      threshold: props.backlogAlarmAgeSeconds,
      description: 'Uploads have waited longer than expected for capacity: the budget may be too small or paused.',
    });
  }
}
