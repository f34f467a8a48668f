import type { VirtualClock } from './clock';
import { chance, type Rng } from './random';
import type { Recorder } from './recorder';

/**
 * EventBridge rule delivery to targets:
 * - at least once: with probability `duplicateRate` an event is delivered twice to every target
 *   (S3 → EventBridge and EventBridge → target are both at-least-once);
 * - a target that fails (e.g. Step Functions StartExecution throttled) is retried with exponential backoff
 *   and jitter for up to `maximumEventAgeSeconds` / `maximumRetryAttempts` (default 24 h / 185), then dropped
 *   or sent to the target's DLQ (docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html).
 *   AWS does not publish the backoff schedule; the twin uses 1 s doubling to 60 s with full jitter.
 */
type Target = (event: Record<string, unknown>) => Promise<unknown>;

interface RuleOptions {
  duplicateRate: number;
  /** Seconds between the duplicate and the first delivery (uniform in [0, this]). */
  duplicateDelaySeconds?: number;
  /** Virtual seconds from PutEvents to target invocation. */
  latencySeconds?: number;
  maximumRetryAttempts?: number;
  maximumEventAgeSeconds?: number;
  onDropped?: (event: Record<string, unknown>, error: unknown) => void;
}

export class EventBridgeRule {
  constructor(
    private readonly clock: VirtualClock,
    private readonly rng: Rng,
    private readonly recorder: Recorder,
    private readonly targets: Target[],
    private readonly options: RuleOptions,
  ) {}

  put(event: Record<string, unknown>): void {
    const latency = (this.options.latencySeconds ?? 0.1) * 1000;
    const copies = chance(this.rng, this.options.duplicateRate) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      const delay = latency + (copy === 0 ? 0 : this.rng() * (this.options.duplicateDelaySeconds ?? 5) * 1000);
      for (const target of this.targets) this.clock.setTimeout(() => this.deliver(target, event, 0, this.clock.now()), delay);
    }
  }

  private deliver(target: Target, event: Record<string, unknown>, attempt: number, firstAt: number): void {
    this.recorder.count('eventBridgeDeliveries');
    target(event).catch((error) => {
      const maxAttempts = this.options.maximumRetryAttempts ?? 185;
      const maxAgeMs = (this.options.maximumEventAgeSeconds ?? 86400) * 1000;
      const delay = this.rng() * Math.min(60_000, 1000 * 2 ** attempt);
      if (attempt >= maxAttempts || this.clock.now() + delay - firstAt > maxAgeMs) {
        this.options.onDropped?.(event, error);
        return;
      }
      this.clock.setTimeout(() => this.deliver(target, event, attempt + 1, firstAt), delay);
    });
  }
}
