import type { VirtualClock } from './clock';

/**
 * A token bucket as AWS documents its API throttling: `capacity` tokens at most (the burst), refilled
 * continuously at `refillPerSecond`; a call takes one token or is throttled.
 * (ECS: docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html)
 */
export class TokenBucket {
  private tokens: number;
  private updatedMs: number;

  constructor(
    private readonly clock: Pick<VirtualClock, 'now'>,
    readonly capacity: number,
    readonly refillPerSecond: number,
  ) {
    this.tokens = capacity;
    this.updatedMs = clock.now();
  }

  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Takes `n` tokens if all are there; otherwise takes none and returns false. */
  tryTake(n = 1): boolean {
    this.refill();
    // A small epsilon: refill arithmetic in ms must not turn 1 token into 0.9999999.
    if (this.tokens + 1e-9 < n) return false;
    this.tokens = Math.max(0, this.tokens - n);
    return true;
  }

  /** Seconds until `n` tokens are available (0 if now). */
  secondsUntil(n = 1): number {
    this.refill();
    if (this.tokens + 1e-9 >= n) return 0;
    return (n - this.tokens) / this.refillPerSecond;
  }

  private refill(): void {
    const now = this.clock.now();
    if (now > this.updatedMs) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updatedMs) / 1000) * this.refillPerSecond);
      this.updatedMs = now;
    }
  }
}
