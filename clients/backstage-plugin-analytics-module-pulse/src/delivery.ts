/**
 * The collector's answer to a batch, acted on: accepted (counted, backoff reset), split (the
 * collector's limits are below ours), retried with backoff, or refused for good.
 */

import { keepaliveSends } from './keepalive.js';
import type { Pacing } from './pacing.js';
import type { BoundedQueue } from './queue.js';
import type { Logger, ShipperStats } from './shipper.js';
import type { Send, SendResult } from './transport.js';
import { requestBody, type EnvelopeMeta, type WireEvent } from './wire.js';

export type Outcome = 'done' | 'retry' | 'split';
/** What the collector's answer means for the batch. */
export type Verdict = 'accepted' | 'split' | 'retry' | 'refused';

export function verdict(status: number, batchSize: number): Verdict {
  if (status >= 200 && status < 300) return 'accepted';
  if (status === 413 && batchSize > 1) return 'split';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  // 400, 401, 403, 404, a single event over the size limit: sending again cannot succeed.
  return 'refused';
}

export type Warn = (code: string, message: string, ...rest: unknown[]) => void;

export class Delivery {
  constructor(
    private readonly send: Send,
    private readonly meta: EnvelopeMeta,
    private readonly queue: BoundedQueue,
    private readonly pacing: Pacing,
    private readonly stats: ShipperStats,
    private readonly log: Logger,
    private readonly warn: Warn,
    private readonly onAccepted: () => void,
    /** The largest batch to send; halved when the collector says 413. */
    public batchLimit: number,
  ) {}

  /** The envelope of a send: marked anonymous when the user declined to be identified. */
  private envelope(anonymous: boolean): EnvelopeMeta {
    return anonymous ? { ...this.meta, anonymous: true } : this.meta;
  }

  /** Sends the next batch (without identity when `anonymous`) and acts on the answer. */
  async next(user: string | undefined, anonymous = false): Promise<Outcome> {
    const batch = this.queue.take(this.batchLimit);
    try {
      const result = await this.send({ body: requestBody(batch, this.envelope(anonymous), anonymous ? undefined : user), keepalive: false });
      return this.settle(batch, result);
    } catch (error) {
      return this.retryLater(batch, error);
    } finally {
      this.queue.landed();
    }
  }

  /** Sends what fits the keepalive budget (a page being hidden); returns the rest. */
  keepalive(held: WireEvent[], user: string | undefined, anonymous = false): WireEvent[] {
    const { sends, rest } = keepaliveSends(held, this.batchLimit, this.envelope(anonymous), anonymous ? undefined : user);
    for (const { batch, body } of sends) {
      this.queue.remove(batch);
      this.send({ body, keepalive: true }).then(
        result => this.settle(batch, result),
        error => this.retryLater(batch, error),
      );
    }
    return rest;
  }

  settle(batch: WireEvent[], result: SendResult): Outcome {
    const { status } = result;
    this.log.debug(`pulse: ${batch.length} events -> ${status}`, result);
    switch (verdict(status, batch.length)) {
      case 'accepted':
        this.pacing.reset();
        this.stats.rejected += result.rejected.length;
        this.stats.accepted += batch.length - result.rejected.length;
        for (const r of result.rejected) {
          this.warn(`rejected:${r.reason}`, `the collector refused an event (${r.reason}): ${r.detail ?? ''}`);
        }
        this.onAccepted();
        return 'done';
      case 'split':
        this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
        this.queue.requeue(batch);
        return 'split';
      case 'retry':
        return this.retryLater(batch, `${status} ${result.error ?? ''}`, result.retryAfterMs);
      case 'refused':
        this.stats.dropped += batch.length;
        this.warn(`status:${status}`, `the collector refused ${batch.length} events: ${status} ${result.error ?? ''} ${result.detail ?? ''}`);
        return 'done';
    }
  }

  retryLater(batch: WireEvent[], cause: unknown, retryAfterMs?: number): Outcome {
    this.queue.requeue(batch);
    this.backoff(retryAfterMs);
    this.log.debug(`pulse: will retry ${batch.length} events`, cause);
    return 'retry';
  }

  backoff(retryAfterMs: number | undefined): void {
    this.stats.retries += 1;
    this.pacing.backoff(retryAfterMs);
  }
}
