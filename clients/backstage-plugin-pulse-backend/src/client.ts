/**
 * Pulse's JSON API, asked with this backend's read token. Every failure becomes one of
 * Backstage's errors with a stable name, so the frontend shows it and no stack trace or token
 * leaves the backend.
 */

import { InputError, NotFoundError, ServiceUnavailableError } from '@backstage/errors';
import pLimit from 'p-limit';

/** Parameters of a saved question, as Pulse's API and CLI take them. */
export const QUESTION_PARAMETERS = ['since', 'until', 'group_by', 'instance', 'plugin', 'frontend_system', 'group', 'group_type', 'identity', 'limit', 'format'];

export interface PulseAnswer {
  status: number;
  contentType: string;
  body: string;
}

export interface PulseClientOptions {
  baseUrl: string;
  token: string;
  timeoutMs: number;
  /** Requests to Pulse at once (Pulse's PULSE_QUERY_MAX_CONCURRENT); the rest wait their turn. */
  maxConcurrent: number;
  /** Called once per kind of failure: the operator's log line (never with the token). */
  warn(message: string): void;
  /** Pulse's admin token (PULSE_QUERY_ADMIN_TOKEN), for erasures; none: erasures are off. */
  adminToken?: string;
  /** How long an erasure may take, in milliseconds (it waits for Pulse's sinks). */
  erasureTimeoutMs?: number;
}

/** Whom an erasure names: an entity ref, or the keyed id Pulse stores. */
export type ErasureSubject = { user: string } | { user_id: string };

export class PulseClient {
  private readonly warned = new Set<string>();
  private readonly limit: pLimit.Limit;

  constructor(private readonly o: PulseClientOptions) {
    this.limit = pLimit(o.maxConcurrent);
  }

  /** GET /v1/questions */
  catalogue(): Promise<PulseAnswer> {
    return this.get('/v1/questions', new URLSearchParams(), 'application/json');
  }

  /** GET /v1/questions/<name>, with the known parameters only. */
  question(name: string, query: Record<string, unknown>, accept: string): Promise<PulseAnswer> {
    if (!/^[a-z0-9_]{1,64}$/.test(name)) throw new InputError(`not a question name: ${name.slice(0, 64)}`);
    const params = new URLSearchParams();
    for (const key of QUESTION_PARAMETERS) {
      const value = query[key];
      if (typeof value === 'string') params.set(key, value);
    }
    return this.get(`/v1/questions/${name}`, params, accept);
  }

  get erases(): boolean {
    return Boolean(this.o.adminToken);
  }

  /** POST /v1/erasures (or /v1/erasures/verify) with the admin token: Pulse's receipt, or its
   * verification, as it came. Not queued behind the questions: it is one admin's request. */
  async erasure(action: 'erase' | 'verify', subject: ErasureSubject, requestedBy: string): Promise<PulseAnswer> {
    const path = action === 'verify' ? '/v1/erasures/verify' : '/v1/erasures';
    let response: Response;
    try {
      response = await fetch(`${this.o.baseUrl.replace(/\/+$/, '')}${path}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${this.o.adminToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ ...subject, requested_by: requestedBy }),
        signal: AbortSignal.timeout(this.o.erasureTimeoutMs ?? 600_000),
      });
    } catch (error) {
      this.warnOnce('unreachable', `Pulse at ${this.o.baseUrl} did not answer: ${String(error)}`);
      throw new ServiceUnavailableError('Pulse is unreachable or slow; the erasure can be asked again');
    }
    const body = await response.text();
    if (response.ok) return { status: response.status, contentType: 'application/json', body };
    const detail = detailOf(body);
    if (response.status === 400) throw new InputError(detail.detail);
    if (response.status === 401 || response.status === 403) {
      this.warnOnce('admin', "Pulse refused this backend's admin token: check pulse.adminToken");
      throw new ServiceUnavailableError("Pulse refused the backend's credential; ask an administrator");
    }
    throw new ServiceUnavailableError(`Pulse could not erase (${detail.error}): ${detail.detail}`);
  }

  /** One request, queued behind this backend's others; a 429 (Pulse's slots taken by other
   * clients) is asked again after a growing pause, all within `timeoutMs` of the call. */
  private async get(path: string, params: URLSearchParams, accept: string): Promise<PulseAnswer> {
    const qs = params.toString();
    const url = `${this.o.baseUrl.replace(/\/+$/, '')}${path}${qs ? `?${qs}` : ''}`;
    const deadline = Date.now() + this.o.timeoutMs;
    for (let pause = 50; ; pause = Math.min(2 * pause, 1000)) {
      const response = await this.limit(() => this.fetch(url, accept, deadline));
      const body = await response.text();
      if (response.status === 429 && Date.now() + pause < deadline) {
        await new Promise(resolve => setTimeout(resolve, pause));
        continue;
      }
      const contentType = response.headers.get('content-type') ?? 'application/json';
      if (response.ok) return { status: response.status, contentType, body };
      throw this.failure(response.status, body);
    }
  }

  private async fetch(url: string, accept: string, deadline: number): Promise<Response> {
    try {
      return await fetch(url, {
        headers: { Authorization: `Bearer ${this.o.token}`, Accept: accept },
        signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      });
    } catch (error) {
      this.warnOnce('unreachable', `Pulse at ${this.o.baseUrl} did not answer: ${String(error)}`);
      throw new ServiceUnavailableError('Pulse is unreachable or slow; try again');
    }
  }

  private failure(status: number, body: string): Error {
    const detail = detailOf(body);
    if (status === 400) {
      return detail.error === 'unknown_question' ? new NotFoundError(detail.detail) : new InputError(detail.detail);
    }
    if (status === 401) {
      this.warnOnce('token', 'Pulse refused this backend\'s read token: check pulse.token');
      return new ServiceUnavailableError('Pulse refused the backend\'s credential; ask an administrator');
    }
    if (status === 429) return new ServiceUnavailableError('Pulse is busy; try again');
    this.warnOnce(`status:${status}`, `Pulse answered ${status}: ${detail.detail}`);
    return new ServiceUnavailableError(`Pulse could not answer (${detail.error})`);
  }

  private warnOnce(kind: string, message: string): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    this.o.warn(message);
  }
}

function detailOf(body: string): { error: string; detail: string } {
  try {
    const parsed = JSON.parse(body);
    if (typeof parsed?.error === 'string') return { error: parsed.error, detail: String(parsed.detail ?? '') };
  } catch {
    // not JSON: say what status it was
  }
  return { error: 'unavailable', detail: body.slice(0, 200) };
}
