/**
 * Events from the analytics module, sent on to Pulse's collector as the signed-in user's: the
 * user comes from Backstage's credentials, never from the body, and the collector token that
 * marks users as verified stays in this backend. Answers keep the collector's shape
 * (`{error, detail}`, `rejected` indexes, `Retry-After`), so the module acts on them as on the
 * collector's own.
 */

import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

export interface IngestOptions {
  /** The collector's base URL (its `/v1/events` is posted to). */
  url: string;
  /** A token in the collector's PULSE_COLLECTOR_BACKEND_TOKENS. */
  token: string;
  timeoutMs: number;
  /** Events one user may send per minute (the module's bursts included). */
  eventsPerMinute: number;
  /** Called once per kind of failure: the operator's log line (never with the token). */
  warn(message: string): void;
}

/** An answer to pass to the browser as it is. */
export interface IngestAnswer {
  status: number;
  body: string;
  retryAfter?: string;
}

export function refusal(status: number, error: string, detail: string, retryAfterS?: number): IngestAnswer {
  return {
    status,
    body: JSON.stringify({ error, detail }),
    retryAfter: retryAfterS === undefined ? undefined : String(Math.max(1, Math.ceil(retryAfterS))),
  };
}

/**
 * The request body with every event's user set to `user` (or removed when the sender asked
 * not to be identified, `"anonymous": true`); an error answer when it is not an envelope of
 * events. Events that are not objects are left in place, so the collector's `rejected`
 * indexes stay those of the sender's batch.
 */
export function signedBody(raw: Buffer, user: string): { body: string; events: number } | IngestAnswer {
  let envelope: unknown;
  try {
    envelope = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    const deep = error instanceof RangeError; // nested past the parser's stack
    return refusal(400, 'invalid_json', deep ? 'the body is nested too deeply' : 'the body is not JSON');
  }
  if (!envelope || typeof envelope !== 'object' || Array.isArray(envelope) || !Array.isArray((envelope as { events?: unknown }).events)) {
    return refusal(400, 'invalid_body', 'the body must be {"events": [...]}');
  }
  const { events, anonymous, ...meta } = envelope as { events: unknown[]; anonymous?: unknown };
  const signed = events.map(event => {
    if (!event || typeof event !== 'object' || Array.isArray(event)) return event;
    const { user: _claimed, ...rest } = event as { user?: unknown };
    return anonymous === true ? rest : { ...rest, user };
  });
  try {
    return { body: JSON.stringify({ ...meta, events: signed }), events: events.length };
  } catch {
    return refusal(400, 'invalid_json', 'the body is nested too deeply');
  }
}

export class EventForwarder {
  private readonly warned = new Set<string>();
  private readonly perUser: RateLimiterMemory;

  constructor(private readonly o: IngestOptions) {
    this.perUser = new RateLimiterMemory({ points: o.eventsPerMinute, duration: 60 });
  }

  /** Sends `raw` (the module's request body) as `user`'s, if the user is within the rate. */
  async forward(raw: Buffer, user: string): Promise<IngestAnswer> {
    const signed = signedBody(raw, user);
    if ('status' in signed) return signed;
    if (signed.events > this.o.eventsPerMinute) {
      // Never within the rate at once: the module halves its batch on 413.
      return refusal(413, 'too_many_events', `${signed.events} events, at most ${this.o.eventsPerMinute} a minute per user`);
    }
    if (signed.events > 0) {
      try {
        await this.perUser.consume(user, signed.events);
      } catch (limited) {
        if (!(limited instanceof RateLimiterRes)) throw limited;
        return refusal(429, 'rate_limited', `over ${this.o.eventsPerMinute} events a minute for this user`, limited.msBeforeNext / 1000);
      }
    }
    return this.post(signed.body);
  }

  private async post(body: string): Promise<IngestAnswer> {
    let response: Response;
    try {
      response = await fetch(`${this.o.url.replace(/\/+$/, '')}/v1/events`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${this.o.token}`, 'Content-Type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
    } catch (error) {
      this.warnOnce('unreachable', `Pulse's collector at ${this.o.url} did not answer: ${String(error)}`);
      return refusal(503, 'unavailable', "Pulse's collector is unreachable or slow", 5);
    }
    const text = await response.text().catch(() => '');
    if (response.status === 401 || response.status === 403) {
      // The browser cannot fix this backend's token; it keeps its events and tries later.
      this.warnOnce('token', `Pulse's collector refused this backend's token (${response.status}): check pulse.collector.token`);
      return refusal(503, 'unavailable', "Pulse's collector refused the backend's credential", 60);
    }
    return { status: response.status, body: text, retryAfter: response.headers.get('retry-after') ?? undefined };
  }

  private warnOnce(kind: string, message: string): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    this.o.warn(message);
  }
}
