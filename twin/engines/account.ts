import type { VirtualClock } from './clock';
import type { Provider } from './ecs';
import { AwsError } from './errors';

/**
 * What the account says about its Fargate vCPU, as the AWS SDK v3's Service Quotas and CloudWatch clients see it
 * (`send(command)`, dispatched on the command's class name as the SQS twin does):
 *
 * - Service Quotas `GetServiceQuota` (docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html),
 *   service code `fargate`: L-3032A538 "Fargate On-Demand vCPU resource count", L-36FBB829 "Fargate Spot vCPU resource
 *   count". A code the service does not have: NoSuchResourceException.
 * - CloudWatch `GetMetricData` on the usage metric those quotas name: namespace AWS/Usage, metric ResourceCount,
 *   dimensions Service=Fargate, Type=Resource, Resource=vCPU, Class=Standard/OnDemand or Standard/Spot, statistic
 *   Maximum at a 1-minute resolution (docs.aws.amazon.com/AmazonECS/latest/developerguide/monitoring-fargate-usage.html).
 *   It counts every task in the account — this stage's and everyone else's. A period is published only once it has
 *   ended; StartTime is rounded down to the minute ("GetMetricData": start times less than 15 days ago are rounded
 *   down to the nearest whole minute). Newest first unless ScanBy is TimestampAscending.
 *   Any other metric or statistic: no datapoints (StatusCode Complete, empty Values), as CloudWatch answers a
 *   metric it has no data for.
 */
const FARGATE_QUOTAS: Record<string, { provider: Provider; name: string; usageClass: string }> = {
  'L-3032A538': { provider: 'FARGATE', name: 'Fargate On-Demand vCPU resource count', usageClass: 'Standard/OnDemand' },
  'L-36FBB829': { provider: 'FARGATE_SPOT', name: 'Fargate Spot vCPU resource count', usageClass: 'Standard/Spot' },
};

/** AWS/Usage's resolution for this metric. */
const MINUTE_MS = 60_000;

/** Where the account's usage comes from (the ECS twin keeps it per class). */
interface UsageSource {
  maxAccountVcpu(provider: Provider, fromMs: number, toMs: number): number | undefined;
}

interface Dimension {
  Name: string;
  Value: string;
}

interface MetricDataQuery {
  Id: string;
  Label?: string;
  ReturnData?: boolean;
  MetricStat?: { Metric: { Namespace?: string; MetricName?: string; Dimensions?: Dimension[] }; Period: number; Stat: string };
}

export class AccountEmulator {
  /** GetServiceQuota and GetMetricData calls answered (for tests and curiosity; not billed in the report). */
  requests = 0;

  constructor(
    private readonly clock: Pick<VirtualClock, 'now'>,
    private readonly usage: UsageSource,
    private readonly quotas: Record<Provider, number>,
  ) {}

  async send(command: { constructor: { name: string }; input: any }): Promise<any> {
    this.requests++;
    switch (command.constructor.name) {
      case 'GetServiceQuotaCommand':
        return this.getServiceQuota(command.input);
      case 'GetMetricDataCommand':
        return this.getMetricData(command.input);
      default:
        throw new AwsError('InvalidAction', `the account twin does not implement ${command.constructor.name}`, false);
    }
  }

  private getServiceQuota(input: { ServiceCode?: string; QuotaCode?: string }): unknown {
    const quota = input.ServiceCode === 'fargate' ? FARGATE_QUOTAS[input.QuotaCode ?? ''] : undefined;
    if (!quota) {
      throw new AwsError(
        'NoSuchResourceException',
        `The request failed because the specified service quota does not exist: ${input.ServiceCode}/${input.QuotaCode}`,
        false,
      );
    }
    return {
      Quota: {
        ServiceCode: 'fargate',
        ServiceName: 'AWS Fargate',
        QuotaArn: `arn:aws:servicequotas:eu-west-1:111111111111:fargate/${input.QuotaCode}`,
        QuotaCode: input.QuotaCode,
        QuotaName: quota.name,
        Value: this.quotas[quota.provider],
        Unit: 'None',
        Adjustable: true,
        GlobalQuota: false,
        UsageMetric: {
          MetricNamespace: 'AWS/Usage',
          MetricName: 'ResourceCount',
          MetricDimensions: { Class: quota.usageClass, Resource: 'vCPU', Service: 'Fargate', Type: 'Resource' },
          MetricStatisticRecommendation: 'Maximum',
        },
      },
    };
  }

  private getMetricData(input: {
    MetricDataQueries?: MetricDataQuery[];
    StartTime?: Date | string | number;
    EndTime?: Date | string | number;
    ScanBy?: string;
  }): unknown {
    const start = toMs(input.StartTime, 'StartTime');
    const end = toMs(input.EndTime, 'EndTime');
    if (!(start < end)) throw new AwsError('InvalidParameterValueException', 'The parameter StartTime must be less than the parameter EndTime.', false);
    const queries = input.MetricDataQueries ?? [];
    if (queries.length === 0) throw new AwsError('InvalidParameterValueException', 'The parameter MetricDataQueries is required.', false);
    const ascending = input.ScanBy === 'TimestampAscending';
    const MetricDataResults = queries
      .filter((query) => query.ReturnData !== false)
      .map((query) => {
        const points = this.datapoints(query, Math.floor(start / MINUTE_MS) * MINUTE_MS, end);
        if (!ascending) points.reverse();
        return {
          Id: query.Id,
          Label: query.Label ?? query.MetricStat?.Metric.MetricName ?? query.Id,
          Timestamps: points.map((p) => new Date(p.at)),
          Values: points.map((p) => p.value),
          StatusCode: 'Complete',
          Messages: [],
        };
      });
    return { MetricDataResults, Messages: [] };
  }

  /** One Maximum per complete period of [start, end), oldest first; none for a metric this account has no data of. */
  private datapoints(query: MetricDataQuery, start: number, end: number): Array<{ at: number; value: number }> {
    const provider = fargateUsageClass(query);
    const period = (query.MetricStat?.Period ?? 0) * 1000;
    if (!provider || query.MetricStat?.Stat !== 'Maximum' || period <= 0 || period % MINUTE_MS !== 0) return [];
    const now = this.clock.now();
    const points: Array<{ at: number; value: number }> = [];
    for (let at = start; at < end && at + period <= now; at += period) {
      const value = this.usage.maxAccountVcpu(provider, at, at + period);
      if (value !== undefined) points.push({ at, value });
    }
    return points;
  }
}

/** The provider a query's metric is the Fargate vCPU usage of, or undefined. */
function fargateUsageClass(query: MetricDataQuery): Provider | undefined {
  const metric = query.MetricStat?.Metric;
  if (!metric || metric.Namespace !== 'AWS/Usage' || metric.MetricName !== 'ResourceCount') return undefined;
  const dims = new Map((metric.Dimensions ?? []).map((d) => [d.Name, d.Value]));
  if (dims.size !== 4 || dims.get('Service') !== 'Fargate' || dims.get('Type') !== 'Resource' || dims.get('Resource') !== 'vCPU') return undefined;
  return Object.values(FARGATE_QUOTAS).find((q) => q.usageClass === dims.get('Class'))?.provider;
}

function toMs(value: Date | string | number | undefined, name: string): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : typeof value === 'number' ? value : NaN;
  if (!Number.isFinite(ms)) throw new AwsError('InvalidParameterValueException', `The parameter ${name} is required and must be a time.`, false);
  return ms;
}
