/** One POST to the collector, its answer reduced to what the shipper decides on. */

export interface SendRequest {
  body: string;
  /** For page hide: the browser finishes the request after the page is gone. */
  keepalive: boolean;
}

export interface Rejection {
  index: number;
  reason: string;
  detail?: string;
}

export interface SendResult {
  status: number;
  retryAfterMs?: number;
  /** The collector's error code (`rate_limited`, `unauthorized`, ...), when it refused. */
  error?: string;
  detail?: string;
  /** Events of an accepted batch that the collector could not take, and why. */
  rejected: Rejection[];
}

/** Resolves with the collector's answer; rejects when there was none (network, CORS). */
export type Send = (request: SendRequest) => Promise<SendResult>;

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function fetchTransport(options: {
  /** The URL, or its promise (Backstage's discovery API answers asynchronously). */
  endpoint: string | Promise<string>;
  token?: string;
  fetch: FetchLike;
  now: () => number;
}): Send {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  // Once known, the URL is used at once: a page being hidden gets no later turn.
  let url = typeof options.endpoint === 'string' ? options.endpoint : undefined;
  if (url === undefined) Promise.resolve(options.endpoint).then(known => (url = known), () => {});
  return async ({ body, keepalive }) => {
    const response = await options.fetch(url ?? (await options.endpoint), {
      method: 'POST',
      headers,
      body,
      keepalive,
      credentials: 'omit',
    });
    let payload: { error?: unknown; detail?: unknown; rejected?: unknown } = {};
    try {
      payload = (await response.json()) ?? {};
    } catch {
      // A proxy's HTML error page: the status alone decides.
    }
    return {
      status: response.status,
      retryAfterMs: parseRetryAfter(response.headers.get('Retry-After'), options.now()),
      error: typeof payload.error === 'string' ? payload.error : undefined,
      detail: typeof payload.detail === 'string' ? payload.detail : undefined,
      rejected: Array.isArray(payload.rejected) ? (payload.rejected as Rejection[]) : [],
    };
  };
}
