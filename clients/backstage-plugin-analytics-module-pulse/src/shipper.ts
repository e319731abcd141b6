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
import type { StorageLike } from './session.js';
import type { Send, SendResult } from './transport.js';
import { byteLength, requestBody, type EnvelopeMeta, type WireEvent } from './wire.js';

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
}

export interface ShipperOptions {
  meta: EnvelopeMeta;
  maxBatchSize: number;
  maxQueueSize: number;
  flushIntervalMs: number;
  send: Send;
  user: UserResolver;
  clock: Clock;
  log: Logger;
  /** Where events that did not fit a page-hide send wait for the next page load. */
  persist?: StorageLike & { readonly length?: number; key?(index: number): string | null };
  tabId: string;
}

export const PENDING_PREFIX = 'pulse-analytics:pending:';
/** Browsers allow 64 KiB of keepalive bodies in flight per page; stay under it. */
export const KEEPALIVE_BUDGET = 60_000;
export const MAX_BACKOFF_MS = 60_000;

type Outcome = 'done' | 'retry' | 'split';

export class Shipper {
  readonly stats: ShipperStats = { captured: 0, accepted: 0, rejected: 0, dropped: 0, retries: 0 };
  private queue: WireEvent[] = [];
  private inFlight: WireEvent[] = [];
  private draining?: Promise<void>;
  private timer?: { handle: unknown; at: number };
  private notBefore = 0;
  private failures = 0;
  private batchLimit: number;
  private readonly warned = new Set<string>();

  constructor(private readonly o: ShipperOptions) {
    this.batchLimit = o.maxBatchSize;
  }

  get pending(): number {
    return this.queue.length + this.inFlight.length;
  }

  enqueue(event: WireEvent): void {
    this.stats.captured += 1;
    this.queue.push(event);
    this.trim();
    this.schedule(this.queue.length >= this.batchLimit ? 0 : this.o.flushIntervalMs);
  }

  /** Sends everything queued (unless backing off); resolves when the queue is settled. */
  flush(): Promise<void> {
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  /**
   * The page is being hidden and may never come back: send what fits the keepalive budget now
   * and persist the rest. In-flight events are included, since their request may die with the
   * page (a repeat is dropped downstream by its id).
   */
  hide(): void {
    const held = [...this.inFlight, ...this.queue];
    if (!held.length) return;
    const user = this.o.user.settled;
    if (user === undefined && this.o.user.mode === 'required') {
      this.persistPending(held);
      return;
    }
    let budget = KEEPALIVE_BUDGET;
    let index = 0;
    while (index < held.length) {
      let end = Math.min(held.length, index + this.batchLimit);
      let body = requestBody(held.slice(index, end), this.o.meta, user ?? undefined);
      while (byteLength(body) > budget && end - index > 1) {
        end = index + Math.floor((end - index) / 2);
        body = requestBody(held.slice(index, end), this.o.meta, user ?? undefined);
      }
      if (byteLength(body) > budget) break;
      budget -= byteLength(body);
      const batch = held.slice(index, end);
      const sentAt = new Set(batch);
      this.queue = this.queue.filter(e => !sentAt.has(e));
      this.o.send({ body, keepalive: true }).then(
        result => this.settle(batch, result),
        error => this.retryLater(batch, error),
      );
      index = end;
    }
    if (index < held.length) this.persistPending(held.slice(index));
  }

  /** The page is visible again: what was persisted is still queued here, so un-persist it. */
  shown(): void {
    this.removePersisted();
  }

  /** Takes events a page that went away left behind (this tab's or another's). */
  restorePersisted(): void {
    const store = this.o.persist;
    if (!store || store.key === undefined || store.length === undefined) return;
    const keys: string[] = [];
    try {
      for (let i = 0; i < store.length; i += 1) {
        const key = store.key(i);
        if (key?.startsWith(PENDING_PREFIX)) keys.push(key);
      }
      for (const key of keys) {
        const raw = store.getItem(key);
        store.removeItem(key);
        const events: unknown = JSON.parse(raw ?? '[]');
        if (Array.isArray(events)) {
          for (const event of events) this.enqueue(event as WireEvent);
        }
      }
    } catch (error) {
      this.warnOnce('restore', 'could not restore events left by an earlier page', error);
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const wait = this.notBefore - this.o.clock.now();
      if (wait > 0) {
        this.schedule(wait);
        return;
      }
      let user: string | undefined;
      try {
        user = await this.o.user.resolve();
      } catch (error) {
        this.backoff(undefined);
        this.warnOnce('identity', 'events wait for the user identity', error);
        return;
      }
      const batch = this.queue.splice(0, this.batchLimit);
      this.inFlight = batch;
      let outcome: Outcome;
      try {
        const result = await this.o.send({ body: requestBody(batch, this.o.meta, user), keepalive: false });
        outcome = this.settle(batch, result);
      } catch (error) {
        outcome = this.retryLater(batch, error);
      } finally {
        this.inFlight = [];
      }
      if (outcome === 'retry') return;
    }
  }

  /** Acts on the collector's answer to a batch. */
  private settle(batch: WireEvent[], result: SendResult): Outcome {
    const { status } = result;
    this.o.log.debug(`pulse: ${batch.length} events -> ${status}`, result);
    if (status >= 200 && status < 300) {
      this.failures = 0;
      this.notBefore = 0;
      this.stats.rejected += result.rejected.length;
      this.stats.accepted += batch.length - result.rejected.length;
      for (const r of result.rejected) {
        this.warnOnce(`rejected:${r.reason}`, `the collector refused an event (${r.reason}): ${r.detail ?? ''}`);
      }
      this.removePersisted();
      return 'done';
    }
    if (status === 413 && batch.length > 1) {
      // The collector's limits are below ours: halve the batches from now on.
      this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
      this.requeue(batch);
      return 'split';
    }
    if (status === 408 || status === 429 || status >= 500) {
      return this.retryLater(batch, `${status} ${result.error ?? ''}`, result.retryAfterMs);
    }
    // 400, 401, 403, 404, a single event over the size limit: sending again cannot succeed.
    this.stats.dropped += batch.length;
    this.warnOnce(`status:${status}`, `the collector refused ${batch.length} events: ${status} ${result.error ?? ''} ${result.detail ?? ''}`);
    return 'done';
  }

  private retryLater(batch: WireEvent[], cause: unknown, retryAfterMs?: number): Outcome {
    this.requeue(batch);
    this.backoff(retryAfterMs);
    this.o.log.debug(`pulse: will retry ${batch.length} events`, cause);
    return 'retry';
  }

  private backoff(retryAfterMs: number | undefined): void {
    this.failures += 1;
    this.stats.retries += 1;
    const exp = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1));
    const jittered = exp / 2 + (this.o.clock.random() * exp) / 2;
    const delay = retryAfterMs ?? jittered;
    this.notBefore = this.o.clock.now() + delay;
    this.schedule(delay);
  }

  private requeue(batch: WireEvent[]): void {
    const queued = new Set(this.queue);
    this.queue.unshift(...batch.filter(e => !queued.has(e)));
    this.trim();
  }

  /** Keeps the queue bounded by dropping the oldest events. */
  private trim(): void {
    const over = this.queue.length + this.inFlight.length - this.o.maxQueueSize;
    if (over > 0) {
      this.queue.splice(0, over);
      this.stats.dropped += over;
      this.warnOnce('overflow', `the queue is full (${this.o.maxQueueSize}): dropping the oldest events`);
    }
  }

  private schedule(delay: number): void {
    const at = Math.max(this.o.clock.now() + delay, this.notBefore);
    if (this.timer && this.timer.at <= at) return;
    if (this.timer) this.o.clock.clearTimeout(this.timer.handle);
    const handle = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, at - this.o.clock.now());
    this.timer = { handle, at };
  }

  private persistPending(events: WireEvent[]): void {
    try {
      this.o.persist?.setItem(PENDING_PREFIX + this.o.tabId, JSON.stringify(events.slice(-this.o.maxQueueSize)));
    } catch (error) {
      this.warnOnce('persist', 'could not keep unsent events for the next page load', error);
    }
  }

  private removePersisted(): void {
    try {
      this.o.persist?.removeItem(PENDING_PREFIX + this.o.tabId);
    } catch {
      // Blocked storage: nothing was persisted either.
    }
  }

  private warnOnce(code: string, message: string, ...rest: unknown[]): void {
    if (this.warned.has(code)) return;
    this.warned.add(code);
    this.o.log.warn(`pulse analytics: ${message}`, ...rest);
  }
}
