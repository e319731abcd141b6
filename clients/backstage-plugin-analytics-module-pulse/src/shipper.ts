/**
 * The bounded queue between `captureEvent` and the collector: batches by size and time,
 * retries with backoff (honouring `Retry-After`), and on page hide sends what it holds with
 * `keepalive` and keeps what does not fit for the next page load.
 *
 * Delivery is at least once: a batch whose answer was lost is sent again, and Pulse drops the
 * repeats by event id. Environment (clock, storage, transport) is passed in, so this is tested
 * without a browser.
 */

import type { UserResolver } from './identity.js';
import { Pacing } from './pacing.js';
import { PendingStore, type Persist } from './pending.js';
import { Delivery, type Warn } from './delivery.js';
import { BoundedQueue } from './queue.js';
import type { Send } from './transport.js';
import type { EnvelopeMeta, WireEvent } from './wire.js';

export { KEEPALIVE_BUDGET } from './keepalive.js';
export { MAX_BACKOFF_MS } from './pacing.js';
export { PENDING_PREFIX } from './pending.js';

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

export interface Logger {
  debug(message: string, ...rest: unknown[]): void;
  warn(message: string, ...rest: unknown[]): void;
}

export interface ShipperStats {
  captured: number;
  /** Acknowledged by the collector as durable in Kafka. */
  accepted: number;
  /** Refused by the collector as invalid (they would be refused again). */
  rejected: number;
  /** Given up: queue overflow, or a request the collector will never take. */
  dropped: number;
  retries: number;
  /** Not sent: the user opted out and the module is configured to send nothing then. */
  declined: number;
}

export interface ShipperOptions {
  meta: EnvelopeMeta;
  maxBatchSize: number;
  maxQueueSize: number;
  flushIntervalMs: number;
  send: Send;
  user: UserResolver;
  /** Whether what is sent now leaves without identity (the user opted out). */
  anonymous?: () => boolean;
  clock: Clock;
  log: Logger;
  /** Where events that did not fit a page-hide send wait for the next page load. */
  persist?: Persist;
  tabId: string;
}

export class Shipper {
  readonly stats: ShipperStats = { captured: 0, accepted: 0, rejected: 0, dropped: 0, retries: 0, declined: 0 };
  private readonly queue: BoundedQueue;
  private readonly pacing: Pacing;
  private readonly delivery: Delivery;
  private readonly pendingStore: PendingStore;
  private readonly warnOnce: Warn;
  private draining?: Promise<void>;

  constructor(private readonly o: ShipperOptions) {
    const warn = (this.warnOnce = onceWarnings(o.log));
    this.queue = new BoundedQueue(o.maxQueueSize, dropped => this.overflowed(dropped));
    this.pacing = new Pacing(o.clock, () => void this.flush());
    this.pendingStore = new PendingStore(o.persist, o.tabId, o.maxQueueSize, warn);
    const accepted = () => this.pendingStore.clear();
    this.delivery = new Delivery(o.send, o.meta, this.queue, this.pacing, this.stats, o.log, warn, accepted, o.maxBatchSize);
  }

  /** Events queued or in flight. */
  get pending(): number { return this.queue.size; }

  /** An event the user's opt-out keeps from being sent at all. */
  decline(): void {
    this.stats.declined += 1;
  }

  enqueue(event: WireEvent): void {
    this.stats.captured += 1;
    this.queue.push(event);
    this.pacing.schedule(this.queue.waitingCount >= this.delivery.batchLimit ? 0 : this.o.flushIntervalMs);
  }

  /** Sends everything queued (unless backing off); resolves when the queue is settled. */
  flush(): Promise<void> {
    return (this.draining ??= this.drain().finally(() => (this.draining = undefined)));
  }

  /** The page is being hidden and may never come back: send what fits the keepalive budget
   * now and persist the rest, in-flight events included (their request may die with the page;
   * a repeat is dropped downstream by its id). */
  hide(): void {
    const held = this.queue.held();
    if (!held.length) return;
    const anonymous = this.o.anonymous?.() ?? false;
    const user = this.o.user.settled;
    if (!anonymous && user === undefined && this.o.user.mode === 'required') return this.pendingStore.save(held);
    const rest = this.delivery.keepalive(held, user ?? undefined, anonymous);
    if (rest.length) this.pendingStore.save(rest);
  }

  /** The page is visible again: what was persisted is still queued here, so un-persist it. */
  shown(): void {
    this.pendingStore.clear();
  }

  /** Takes events a page that went away left behind (this tab's or another's). */
  restorePersisted(): void {
    for (const event of this.pendingStore.takeAll()) this.enqueue(event);
  }

  private overflowed(dropped: number): void {
    this.stats.dropped += dropped;
    this.warnOnce('overflow', `the queue is full (${this.o.maxQueueSize}): dropping the oldest events`);
  }

  private async drain(): Promise<void> {
    while (this.queue.waitingCount) {
      const wait = this.pacing.wait;
      if (wait > 0) {
        this.pacing.schedule(wait);
        return;
      }
      const anonymous = this.o.anonymous?.() ?? false;
      let user: string | undefined;
      try {
        user = anonymous ? undefined : await this.o.user.resolve();
      } catch (error) {
        this.delivery.backoff(undefined);
        this.warnOnce('identity', 'events wait for the user identity', error);
        return;
      }
      const outcome = await this.delivery.next(user, anonymous);
      if (outcome === 'retry') return;
    }
  }
}

/** A warning per code, once: a broken collector must not flood the console. */
function onceWarnings(log: Logger): Warn {
  const warned = new Set<string>();
  return (code, message, ...rest) => {
    if (warned.has(code)) return;
    warned.add(code);
    log.warn(`pulse analytics: ${message}`, ...rest);
  };
}
