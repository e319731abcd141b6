/**
 * When the shipper may send next: one timer at a time, and exponential backoff with jitter
 * after failures, or exactly the collector's `Retry-After`.
 */

import type { Clock } from './shipper.js';

export const MAX_BACKOFF_MS = 60_000;

export class Pacing {
  private timer?: { handle: unknown; at: number };
  private notBefore = 0;
  private failures = 0;

  constructor(
    private readonly clock: Clock,
    private readonly wake: () => void,
  ) {}

  /** Milliseconds still to wait before sending (0 or less: now). */
  get wait(): number {
    return this.notBefore - this.clock.now();
  }

  /** Wakes the shipper in `delay` ms (not before a backoff ends); keeps an earlier timer. */
  schedule(delay: number): void {
    const at = Math.max(this.clock.now() + delay, this.notBefore);
    if (this.timer && this.timer.at <= at) return;
    if (this.timer) this.clock.clearTimeout(this.timer.handle);
    const handle = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, at - this.clock.now());
    this.timer = { handle, at };
  }

  /** A failure: wait `retryAfterMs`, or longer each time (up to a minute), then wake. */
  backoff(retryAfterMs: number | undefined): void {
    this.failures += 1;
    const exp = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1));
    const jittered = exp / 2 + (this.clock.random() * exp) / 2;
    const delay = retryAfterMs ?? jittered;
    this.notBefore = this.clock.now() + delay;
    this.schedule(delay);
  }

  /** A success: no more backoff. */
  reset(): void {
    this.failures = 0;
    this.notBefore = 0;
  }
}
