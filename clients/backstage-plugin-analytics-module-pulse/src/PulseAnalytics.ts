/**
 * Backstage's `AnalyticsApi` shipping to Pulse: each captured event gets an id, a time and the
 * tab's session, and goes to the {@link Shipper}. By default batches go to Backstage's own
 * backend (Pulse's backend plugin, `/api/pulse/events`), which adds the signed-in user from
 * Backstage's credentials; with an `endpoint`, straight to a collector, the user ref added at
 * send time as the identity mode allows.
 */

import type { AnalyticsApi, ConfigApi } from '@backstage/core-plugin-api';
import { browserEnvironment, type BrowserEnvironment } from './environment.js';
import { UserResolver, type IdentitySource } from './identity.js';
import { readOptions, type PulseOptions, type UserIdTransform } from './options.js';
import { globalPrivacyControl, Privacy, type PreferenceStorage } from './privacy.js';
import { SessionTracker } from './session.js';
import { Shipper, type ShipperStats } from './shipper.js';
import { fetchTransport, type FetchLike, type Send } from './transport.js';
import { MODULE_NAME, MODULE_VERSION } from './version.js';
import { toWireEvent, type CapturedEvent, type FrontendSystem } from './wire.js';

export interface PulseAnalyticsDeps {
  /** Backstage's identity API; needed unless `identity` is `disabled`. */
  identityApi?: IdentitySource;
  /** Backstage's fetch API, so that its middleware (e.g. auth for a proxy) applies; needed
   * to send through Backstage's backend (it adds the user's Backstage token). */
  fetchApi?: { fetch: FetchLike };
  /** Backstage's discovery API: where the `pulse` backend plugin is (when no `endpoint`). */
  discoveryApi?: { getBaseUrl(pluginId: string): Promise<string> };
  /** Backstage's storage API, where the user's opt-out is kept (bucket `pulse`, `optOut`). */
  storageApi?: PreferenceStorage;
  /** Replaces the configured `userIdTransform`, e.g. with your own keyed hash. */
  userIdTransform?: UserIdTransform;
  /** Set by the new frontend system's extension; LEGACY otherwise. */
  frontendSystem?: FrontendSystem;
  /** Browser facilities, for tests and unusual hosts. */
  environment?: Partial<BrowserEnvironment>;
}

export class PulseAnalytics implements AnalyticsApi {
  private readonly shipper?: Shipper;
  private readonly session?: SessionTracker;
  private readonly privacy?: Privacy;
  private readonly env: BrowserEnvironment;
  private readonly detach: Array<() => void> = [];

  /** Reads `app.analytics.pulse` and starts shipping; throws on invalid configuration. */
  static fromConfig(config: ConfigApi, deps: PulseAnalyticsDeps = {}): PulseAnalytics {
    return new PulseAnalytics(readOptions(config), deps);
  }

  constructor(
    readonly options: PulseOptions,
    deps: PulseAnalyticsDeps = {},
  ) {
    this.env = { ...browserEnvironment(), ...deps.environment };
    if (!options.enabled) return;
    const { clock } = this.env;
    const { send, user } = destination(options, deps, this.env);
    const privacy = (this.privacy = new Privacy(options.optOut, deps.storageApi, globalPrivacyControl(options.honorGlobalPrivacyControl, this.env.navigator)));
    this.detach.push(() => privacy.dispose());
    this.session = new SessionTracker(this.env.sessionStorage, options.sessionIdleMinutes * 60_000, clock.now, this.env.randomUUID);
    // Through the backend, `identity: disabled` is asked for as an opt-out is: no user added.
    const neverIdentified = options.endpoint === undefined && options.identity === 'disabled';
    this.shipper = newShipper(options, deps.frontendSystem ?? 'LEGACY', send, user, this.env, () => neverIdentified || privacy.declined);
    // Asked now, so that a page hidden before the first flush can still send the user.
    user.resolve().catch(() => {});
    this.shipper.restorePersisted();
    this.detach.push(...followPageLifecycle(this.env, this.shipper));
  }

  /** Takes an event from either frontend system; never throws, never blocks. */
  captureEvent(event: CapturedEvent): void {
    if (!this.shipper || !this.session) return;
    if (this.privacy?.drops) {
      this.shipper.decline();
      return;
    }
    try {
      const wire = toWireEvent(event, {
        id: this.env.randomUUID(),
        timestamp: this.env.clock.now(),
        sessionId: this.session.current(),
      });
      if (this.options.debug) this.env.log.debug('pulse: captured', wire);
      this.shipper.enqueue(wire);
    } catch (error) {
      // Analytics must never break the page that reports it.
      this.env.log.warn('pulse analytics: could not capture an event', error);
    }
  }

  /** Sends what is queued now (e.g. before a test asserts, or a programmatic sign-out). */
  flush(): Promise<void> {
    return this.shipper?.flush() ?? Promise.resolve();
  }

  get stats(): ShipperStats | undefined {
    return this.shipper ? { ...this.shipper.stats } : undefined;
  }

  /** Events queued or in flight. */
  get pending(): number {
    return this.shipper?.pending ?? 0;
  }

  /** Stops listening to page lifecycle events (the queue is left as it is). */
  dispose(): void {
    for (const undo of this.detach.splice(0)) undo();
  }

}

/**
 * Where batches go and whose they are. Through Backstage's backend, the backend sets the user
 * (none is sent; `identity: disabled` asks it to set none); straight to a collector, this
 * page's user is sent as the identity mode and transform allow.
 */
function destination(options: PulseOptions, deps: PulseAnalyticsDeps, env: BrowserEnvironment): { send: Send; user: UserResolver } {
  const now = env.clock.now;
  if (options.endpoint === undefined) {
    if (!deps.fetchApi || !deps.discoveryApi) {
      throw new Error("pulse analytics: sending through Backstage's backend needs fetchApi and discoveryApi (or set app.analytics.pulse.endpoint)");
    }
    const fetch = deps.fetchApi.fetch.bind(deps.fetchApi);
    const endpoint = deps.discoveryApi.getBaseUrl('pulse').then(base => `${base.replace(/\/+$/, '')}/events`);
    return { send: fetchTransport({ endpoint, fetch, now }), user: new UserResolver('disabled', undefined, 'none') };
  }
  const fetch = deps.fetchApi ? deps.fetchApi.fetch.bind(deps.fetchApi) : env.fetch;
  if (!fetch) throw new Error('pulse analytics: no fetch implementation is available');
  return {
    send: fetchTransport({ endpoint: options.endpoint, token: options.token, fetch, now }),
    user: new UserResolver(options.identity, deps.identityApi, deps.userIdTransform ?? options.userIdTransform),
  };
}

function newShipper(
  options: PulseOptions,
  frontendSystem: FrontendSystem,
  send: Send,
  user: UserResolver,
  env: BrowserEnvironment,
  anonymous: () => boolean,
): Shipper {
  return new Shipper({
    meta: {
      frontendSystem,
      appVersion: options.appVersion,
      backstageVersion: options.backstageVersion,
      collector: `${MODULE_NAME}/${MODULE_VERSION}`,
    },
    maxBatchSize: options.maxBatchSize,
    maxQueueSize: options.maxQueueSize,
    flushIntervalMs: options.flushIntervalMs,
    send,
    user,
    anonymous,
    clock: env.clock,
    log: options.debug ? env.log : { ...env.log, debug: () => {} },
    persist: env.localStorage,
    tabId: env.randomUUID(),
  });
}

/** Hidden pages send what they hold; returns what stops listening. */
function followPageLifecycle(env: BrowserEnvironment, shipper: Shipper): Array<() => void> {
  const { document, window } = env;
  const detach: Array<() => void> = [];
  const onVisibility = () => (document?.visibilityState === 'hidden' ? shipper.hide() : shipper.shown());
  const onPageHide = () => shipper.hide();
  if (document) {
    document.addEventListener('visibilitychange', onVisibility);
    detach.push(() => document.removeEventListener('visibilitychange', onVisibility));
  }
  if (window) {
    window.addEventListener('pagehide', onPageHide);
    detach.push(() => window.removeEventListener('pagehide', onPageHide));
  }
  return detach;
}
