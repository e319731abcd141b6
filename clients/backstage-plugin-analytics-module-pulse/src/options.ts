/** `app.analytics.pulse` read and checked once, so a misconfigured app fails at startup. */

import type { ConfigApi } from '@backstage/core-plugin-api';
import type { OptOutMode } from './privacy.js';

export type IdentityMode = 'disabled' | 'optional' | 'required';

/** How a user entity ref is sent: as is, as `sha256:<hex>`, or through your own function. */
export type UserIdTransform = 'none' | 'sha-256' | ((userEntityRef: string) => Promise<string>);

export interface PulseOptions {
  /**
   * The collector's URL (or a proxied path), for direct mode; undefined: Backstage's own backend
   * (`/api/pulse/events` of Pulse's backend plugin), which sets the signed-in user itself.
   */
  endpoint?: string;
  token?: string;
  enabled: boolean;
  flushIntervalMs: number;
  maxBatchSize: number;
  maxQueueSize: number;
  identity: IdentityMode;
  userIdTransform: UserIdTransform;
  sessionIdleMinutes: number;
  /** What an opted-out user's events become: sent without identity, or not sent. */
  optOut: OptOutMode;
  /** Treat the browser's Global Privacy Control signal as an opt-out. */
  honorGlobalPrivacyControl: boolean;
  appVersion?: string;
  backstageVersion?: string;
  debug: boolean;
}

export const DEFAULTS = {
  enabled: true,
  flushIntervalMs: 5_000,
  maxBatchSize: 50,
  maxQueueSize: 2_000,
  identity: 'optional',
  userIdTransform: 'none',
  sessionIdleMinutes: 30,
  optOut: 'anonymous',
  honorGlobalPrivacyControl: false,
  debug: false,
} as const satisfies Partial<PulseOptions>;

/** The collector takes at most 1000 events per request (its hard cap is 1024). */
export const MAX_BATCH_SIZE = 1000;

export class PulseConfigError extends Error {
  constructor(key: string, problem: string) {
    super(`app.analytics.pulse.${key}: ${problem}`);
    this.name = 'PulseConfigError';
  }
}

function bounded(key: string, value: number | undefined, fallback: number, min: number, max: number) {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new PulseConfigError(key, `must be an integer from ${min} to ${max}, not ${value}`);
  }
  return value;
}

function oneOf<T extends string>(key: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new PulseConfigError(key, `must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** Reads `app.analytics.pulse` (all optional); throws {@link PulseConfigError} naming the bad key. */
export function readOptions(config: ConfigApi): PulseOptions {
  const c = config.getOptionalConfig('app.analytics.pulse');
  const enabled = c?.getOptionalBoolean('enabled') ?? DEFAULTS.enabled;
  const endpoint = c?.getOptionalString('endpoint');
  if (endpoint !== undefined && !/^https?:\/\/[^\s]+$/i.test(endpoint) && !/^\/[^\s]*$/.test(endpoint)) {
    throw new PulseConfigError('endpoint', `must be an http(s) URL or a path, not ${JSON.stringify(endpoint)}`);
  }
  const token = c?.getOptionalString('token');
  if (token !== undefined && endpoint === undefined) {
    throw new PulseConfigError('token', "is the collector's token, for an endpoint; without one, events go through Backstage's backend, which holds its own");
  }
  if (token !== undefined && (token.length < 16 || /\s/.test(token))) {
    throw new PulseConfigError('token', 'must be the collector token (16+ characters, no spaces)');
  }
  const maxBatchSize = bounded('maxBatchSize', c?.getOptionalNumber('maxBatchSize'), DEFAULTS.maxBatchSize, 1, MAX_BATCH_SIZE);
  return {
    endpoint,
    token,
    enabled,
    flushIntervalMs: bounded('flushIntervalMs', c?.getOptionalNumber('flushIntervalMs'), DEFAULTS.flushIntervalMs, 100, 600_000),
    maxBatchSize,
    maxQueueSize: bounded('maxQueueSize', c?.getOptionalNumber('maxQueueSize'), Math.max(DEFAULTS.maxQueueSize, maxBatchSize), maxBatchSize, 100_000),
    identity: oneOf<IdentityMode>('identity', c?.getOptionalString('identity'), ['disabled', 'optional', 'required'], DEFAULTS.identity),
    userIdTransform: oneOf<'none' | 'sha-256'>('userIdTransform', c?.getOptionalString('userIdTransform'), ['none', 'sha-256'], DEFAULTS.userIdTransform),
    sessionIdleMinutes: bounded('sessionIdleMinutes', c?.getOptionalNumber('sessionIdleMinutes'), DEFAULTS.sessionIdleMinutes, 1, 24 * 60),
    optOut: oneOf<OptOutMode>('optOut', c?.getOptionalString('optOut'), ['anonymous', 'drop'], DEFAULTS.optOut),
    honorGlobalPrivacyControl: c?.getOptionalBoolean('honorGlobalPrivacyControl') ?? DEFAULTS.honorGlobalPrivacyControl,
    appVersion: c?.getOptionalString('appVersion'),
    backstageVersion: c?.getOptionalString('backstageVersion'),
    debug: c?.getOptionalBoolean('debug') ?? DEFAULTS.debug,
  };
}
