import type { VirtualClock } from './clock';

/**
 * One line of events.jsonl. `t` is virtual seconds since the start of the run.
 * The report is computed from these alone (twin/report.ts), so every figure can be recomputed.
 */
export interface TwinEvent {
  t: number;
  type: string;
  jobId?: string;
  [field: string]: unknown;
}

/** Request counters that would be too many to log one by one; flushed as `meter` events when time advances. */
type MeterName =
  | 'ddbReads'
  | 'ddbWrites'
  | 'ddbReadUnits'
  | 'ddbWriteUnits'
  | 'ddbPartitionThrottles'
  | 'ddbTransactionConflicts'
  | 'sqsRequests'
  | 'lambdaThrottles'
  | 'startExecutionThrottles'
  | 'eventBridgeDeliveries';

export class Recorder {
  readonly events: TwinEvent[] = [];
  private meters = new Map<MeterName, number>();
  private listeners: Array<(event: TwinEvent) => void> = [];
  /** What every event naming a job also carries (its route, say): one place, whoever emits the event. */
  private jobFields: (jobId: string) => Record<string, unknown> | undefined = () => undefined;

  constructor(private readonly clock: Pick<VirtualClock, 'seconds'>) {}

  emit(type: string, fields: Omit<TwinEvent, 't' | 'type'> = {}): TwinEvent {
    const ofJob = typeof fields.jobId === 'string' ? this.jobFields(fields.jobId) : undefined;
    const event = { t: round3(this.clock.seconds()), type, ...fields, ...ofJob } as TwinEvent;
    this.events.push(event);
    for (const listener of this.listeners) listener(event);
    return event;
  }

  count(meter: MeterName, n = 1): void {
    this.meters.set(meter, (this.meters.get(meter) ?? 0) + n);
  }

  /** Writes the counters accumulated since the last flush as one `meter` event (none if all zero). */
  flushMeters(): void {
    if (this.meters.size === 0) return;
    const fields: Record<string, number> = {};
    for (const [name, value] of this.meters) fields[name] = value;
    this.meters.clear();
    this.emit('meter', fields);
  }

  describeJobs(fields: (jobId: string) => Record<string, unknown> | undefined): void {
    this.jobFields = fields;
  }

  onEvent(listener: (event: TwinEvent) => void): void {
    this.listeners.push(listener);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
