/**
 * The collector's JSON: one request is an envelope of events, each a Backstage
 * `AnalyticsEvent` plus what this module adds (id, time, session, user). Pure.
 */

export type FrontendSystem = 'LEGACY' | 'NEW';

/** What both frontend systems hand to an analytics implementation. */
export interface CapturedEvent {
  action: string;
  subject: string;
  value?: number;
  attributes?: { [key: string]: string | boolean | number };
  context: { [key: string]: unknown };
}

export interface WireEvent {
  id: string;
  timestamp: number;
  sessionId: string;
  user?: string;
  action: string;
  subject: string;
  value?: number;
  attributes?: { [key: string]: string | boolean | number };
  context: { [key: string]: string | boolean | number | string[] };
}

export interface EnvelopeMeta {
  frontendSystem: FrontendSystem;
  appVersion?: string;
  backstageVersion?: string;
  collector: string;
  /** Asks Pulse's backend plugin not to add the signed-in user. */
  anonymous?: boolean;
}

function plain(value: unknown): value is string | boolean | number {
  return typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * An event as sent. Context values that JSON or the collector cannot hold (undefined,
 * functions, objects, NaN) are left out, as Backstage's own modules do; string arrays
 * (`searchTypes`) are kept.
 */
export function toWireEvent(
  event: CapturedEvent,
  stamp: { id: string; timestamp: number; sessionId: string },
): WireEvent {
  const context: WireEvent['context'] = {};
  for (const [key, value] of Object.entries(event.context ?? {})) {
    if (plain(value)) context[key] = value;
    else if (Array.isArray(value) && value.every(v => typeof v === 'string')) context[key] = value;
  }
  const wire: WireEvent = {
    id: stamp.id,
    timestamp: stamp.timestamp,
    sessionId: stamp.sessionId,
    action: String(event.action),
    subject: String(event.subject),
    context,
  };
  if (typeof event.value === 'number' && Number.isFinite(event.value)) wire.value = event.value;
  if (event.attributes) {
    const attributes: NonNullable<WireEvent['attributes']> = {};
    for (const [key, value] of Object.entries(event.attributes)) {
      if (plain(value)) attributes[key] = value;
    }
    wire.attributes = attributes;
  }
  return wire;
}

/** The request body for a batch; events without a user are given this page's (if any). */
export function requestBody(events: WireEvent[], meta: EnvelopeMeta, user: string | undefined): string {
  return JSON.stringify({
    ...meta,
    events: user === undefined ? events : events.map(e => (e.user === undefined ? { ...e, user } : e)),
  });
}

const encoder = new TextEncoder();

export function byteLength(text: string): number {
  return encoder.encode(text).length;
}
