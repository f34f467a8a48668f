import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../environments';
import type { METRICS_NAMESPACE } from '../functions/metrics';

interface ObservabilityProps {
  /** Its name prefix, and the address alarms are mailed to. */
  readonly config: EnvironmentConfig;
}

interface AlarmProps {
  /** Short name: becomes `<prefix>-<name>` and the alarm's id. */
  readonly name: string;
  readonly description: string;
  readonly namespace: 'AWS/SQS' | 'AWS/Lambda' | 'AWS/States' | typeof METRICS_NAMESPACE;
  readonly metric: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly statistic: 'Maximum' | 'Sum';
  /** Alarms when the statistic over one period is above this. */
  readonly threshold: number;
  /** The period, for a metric published less often than every minute. @default 60 */
  readonly periodSeconds?: number;
}

/** Where alarms go: one SNS topic per stage, mailed to the stage's alarm address. */
export class Observability extends Construct {
  readonly alarmTopicArn: string;
  private readonly namePrefix: string;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const { namePrefix, alarmEmail } = props.config;
    this.namePrefix = namePrefix;
    // No SSE: CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed SNS key.
    const topic = new SnsTopic(this, 'alarms', { name: `${namePrefix}-alarms` });
    this.alarmTopicArn = topic.arn;
    new SnsTopicSubscription(this, 'alarm-email', {
      topicArn: topic.arn,
      protocol: 'email',
      endpoint: alarmEmail,
    });
  }

  /** Alarms (and later clears) by mail when a metric is over its threshold for one period. */
  alarm(props: AlarmProps): CloudwatchMetricAlarm {
    return new CloudwatchMetricAlarm(this, `alarm-${props.name}`, {
      alarmName: `${this.namePrefix}-${props.name}`,
      alarmDescription: props.description,
      namespace: props.namespace,
      metricName: props.metric,
      dimensions: { ...props.dimensions },
      statistic: props.statistic,
      period: props.periodSeconds ?? 60,
      evaluationPeriods: 1,
      threshold: props.threshold,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'notBreaching',
      alarmActions: [this.alarmTopicArn],
      okActions: [this.alarmTopicArn],
    });
  }

  /** Alarms on any error of a Lambda function; `consequence` says what its failing holds up until it runs again. */
  functionErrors(role: string, functionName: string, consequence = ''): CloudwatchMetricAlarm {
    return this.alarm({
      name: `${role}-errors`,
      description: `The ${role} function failed; its log group is /aws/lambda/${functionName}.${consequence}`,
      namespace: 'AWS/Lambda',
      metric: 'Errors',
      dimensions: { FunctionName: functionName },
      statistic: 'Sum',
      threshold: 0,
    });
  }
}
