/** The page's client of the `pulse` backend plugin: Pulse's saved questions, asked through
 * Backstage's own fetch (which adds the signed-in user's token), failures as typed errors. */

import { createApiRef, type DiscoveryApi, type FetchApi } from '@backstage/core-plugin-api';

export type Grouping = 'hour' | 'day' | 'week' | 'month' | 'total';

/** What a question is asked with; `since`/`until` take Pulse's forms (7d, 24h, now, ISO dates). */
export interface QuestionParams {
  since: string;
  until?: string;
  group_by?: Grouping;
  instance?: string;
  plugin?: string;
  /** One group's members (a ref such as `group:default/web`); on rows of groups, that group
   * and the groups below it. */
  group?: string;
  group_type?: string;
  /** `verified`: only users Backstage verified; `all`; unset: verified when any is. */
  identity?: 'verified' | 'all';
  limit?: number;
}

export type Cell = string | number | boolean | null | string[];

export interface Answer {
  question: string;
  title: string;
  columns: { name: string; type: string }[];
  /** Each row's `withheld` lists the columns Pulse withheld (figures about fewer than
   * `min_group_size` people). */
  rows: Record<string, Cell>[];
  min_group_size?: number;
}

export interface Catalogue {
  questions: { name: string; title: string; grouped: boolean }[];
}

/** Why a request failed: the user lacks `pulse.insights.read`, Pulse (or the backend plugin)
 * cannot answer now, the request was outside a question's domain, or anything else. */
export type PulseErrorKind = 'not-allowed' | 'unavailable' | 'bad-request' | 'failed';

export class PulseError extends Error {
  constructor(
    readonly kind: PulseErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PulseError';
  }
}

export interface PulseApi {
  catalogue(): Promise<Catalogue>;
  answer(question: string, params: QuestionParams): Promise<Answer>;
  csv(question: string, params: QuestionParams): Promise<Blob>;
}

export const pulseApiRef = createApiRef<PulseApi>({ id: 'plugin.pulse.insights' });

const KINDS: Record<number, PulseErrorKind> = { 400: 'bad-request', 401: 'not-allowed', 403: 'not-allowed', 404: 'bad-request', 502: 'unavailable', 503: 'unavailable', 504: 'unavailable' };

export class PulseClient implements PulseApi {
  private readonly discoveryApi: DiscoveryApi;
  private readonly fetchApi: FetchApi;

  constructor(options: { discoveryApi: DiscoveryApi; fetchApi: FetchApi }) {
    this.discoveryApi = options.discoveryApi;
    this.fetchApi = options.fetchApi;
  }

  async catalogue(): Promise<Catalogue> {
    return (await this.request('/questions', 'application/json')).json();
  }

  async answer(question: string, params: QuestionParams): Promise<Answer> {
    return (await this.request(path(question, params), 'application/json')).json();
  }

  async csv(question: string, params: QuestionParams): Promise<Blob> {
    return (await this.request(path(question, params), 'text/csv')).blob();
  }

  private async request(route: string, accept: string): Promise<Response> {
    const base = await this.discoveryApi.getBaseUrl('pulse');
    let response: Response;
    try {
      response = await this.fetchApi.fetch(`${base}${route}`, { headers: { Accept: accept } });
    } catch (error) {
      throw new PulseError('unavailable', `the Pulse backend plugin cannot be reached (${String(error)})`);
    }
    if (!response.ok) {
      throw new PulseError(KINDS[response.status] ?? 'failed', await reason(response), response.status);
    }
    return response;
  }
}

function path(question: string, params: QuestionParams): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') query.set(key, String(value));
  }
  return `/questions/${encodeURIComponent(question)}?${query}`;
}

/** The message of Backstage's error body (`{error: {name, message}}`) or Pulse's (`{error, message}`),
 * never more: a stack trace, if a backend sent one, stays out of the page. */
async function reason(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    const message = body?.error?.message ?? body?.message;
    if (typeof message === 'string' && message) return message.slice(0, 500);
  } catch {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`.trim();
}
