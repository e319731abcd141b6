/**
 * The shipper's bounded queue: events waiting, and the batch in flight. Past `maxSize` the
 * oldest waiting events are dropped; a batch that must be sent again goes back to the front.
 */

import type { WireEvent } from './wire.js';

export class BoundedQueue {
  private waiting: WireEvent[] = [];
  private inFlight: WireEvent[] = [];

  constructor(
    readonly maxSize: number,
    private readonly onDrop: (count: number) => void,
  ) {}

  /** Waiting and in flight. */
  get size(): number {
    return this.waiting.length + this.inFlight.length;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  push(event: WireEvent): void {
    this.waiting.push(event);
    this.trim();
  }

  /** The next batch, now in flight. */
  take(limit: number): WireEvent[] {
    this.inFlight = this.waiting.splice(0, limit);
    return this.inFlight;
  }

  /** The batch in flight is answered (or back in the queue). */
  landed(): void {
    this.inFlight = [];
  }

  /** Everything held, in flight first. */
  held(): WireEvent[] {
    return [...this.inFlight, ...this.waiting];
  }

  /** Sent some other way (a keepalive request): no longer waiting. */
  remove(batch: WireEvent[]): void {
    const sent = new Set(batch);
    this.waiting = this.waiting.filter(e => !sent.has(e));
  }

  /** Back to the front, unless already waiting. */
  requeue(batch: WireEvent[]): void {
    const queued = new Set(this.waiting);
    this.waiting.unshift(...batch.filter(e => !queued.has(e)));
    this.trim();
  }

  private trim(): void {
    const over = this.size - this.maxSize;
    if (over > 0) {
      this.waiting.splice(0, over);
      this.onDrop(over);
    }
  }
}
