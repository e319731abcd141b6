import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigReader } from '@backstage/config';
import { analyticsModulePulse, pulseAnalyticsImplementation } from '../dist/alpha.js';
import { MODULE_VERSION, PulseAnalytics, PulseConfigError, readOptions } from '../dist/index.js';
import { SESSION_KEY, SessionTracker } from '../dist/session.js';
import { toWireEvent } from '../dist/wire.js';
import { FakeClock, FakeCollector, FakeTarget, MemoryStorage, quietLog, settle, uuid } from './helpers.mjs';

const TOKEN = 'test-token-0123456789abcdef';
const config = (pulse = {}) =>
  new ConfigReader({ app: { analytics: { pulse: { endpoint: 'https://pulse.example/v1/events', token: TOKEN, ...pulse } } } });
/** The default: no endpoint, so events go through Backstage's backend. */
const backendConfig = (pulse = {}) => new ConfigReader({ app: { analytics: { pulse } } });
const discovery = { getBaseUrl: async pluginId => `https://backstage.example/api/${pluginId}` };

function analytics(pulse = {}, deps = {}) {
  const clock = new FakeClock();
  const collector = new FakeCollector();
  const env = {
    fetch: collector.fetch,
    sessionStorage: new MemoryStorage(),
    localStorage: new MemoryStorage(),
    document: new FakeTarget(),
    window: new FakeTarget(),
    clock,
    randomUUID: uuid,
    log: quietLog,
    ...deps.environment,
  };
  const api = PulseAnalytics.fromConfig(config(pulse), { ...deps, environment: env });
  return { api, clock, collector, env };
}

const navigate = {
  action: 'navigate',
  subject: '/catalog/default/component/pulse?tab=ci#top',
  attributes: { kind: 'component', namespace: 'default', name: 'pulse' },
  context: { pluginId: 'catalog', routeRef: 'catalog:entity', extension: 'App', entityRef: 'component:default/pulse', unset: undefined },
};

const identity = ref => ({ getBackstageIdentity: async () => ({ userEntityRef: ref, ownershipEntityRefs: [], type: 'user' }) });

describe('options', () => {
  it('has defaults a browser can live with', () => {
    const o = readOptions(config());
    assert.deepEqual(
      { ...o, endpoint: undefined, token: undefined },
      { endpoint: undefined, token: undefined, enabled: true, flushIntervalMs: 5000, maxBatchSize: 50, maxQueueSize: 2000, identity: 'optional', userIdTransform: 'none', sessionIdleMinutes: 30, optOut: 'anonymous', honorGlobalPrivacyControl: false, appVersion: undefined, backstageVersion: undefined, debug: false },
    );
  });

  for (const [pulse, key] of [
    [{ endpoint: 'ftp://x' }, 'endpoint'],
    [{ token: 'short' }, 'token'],
    [{ maxBatchSize: 5000 }, 'maxBatchSize'],
    [{ maxBatchSize: 100, maxQueueSize: 10 }, 'maxQueueSize'],
    [{ flushIntervalMs: 10 }, 'flushIntervalMs'],
    [{ identity: 'always' }, 'identity'],
    [{ userIdTransform: 'md5' }, 'userIdTransform'],
    [{ optOut: 'never' }, 'optOut'],
  ]) {
    it(`names the bad key: ${key}`, () => {
      assert.throws(() => readOptions(config(pulse)), e => e instanceof PulseConfigError && e.message.startsWith(`app.analytics.pulse.${key}:`));
    });
  }

  it("needs no section: events go through Backstage's backend", () => {
    const o = readOptions(new ConfigReader({ app: {} }));
    assert.equal(o.endpoint, undefined);
    assert.equal(o.token, undefined);
    assert.equal(o.enabled, true);
  });

  it("refuses a collector token without an endpoint: Backstage's backend holds its own", () => {
    assert.throws(() => readOptions(backendConfig({ token: TOKEN })), e => e instanceof PulseConfigError && /^app\.analytics\.pulse\.token:/.test(e.message));
  });

  it('is a no-op when disabled', async () => {
    const { api, clock, collector } = analytics({ enabled: false });
    api.captureEvent(navigate);
    await clock.advance(60_000);
    assert.equal(collector.requests.length, 0);
    assert.equal(api.stats, undefined);
  });
});

describe('wire format', () => {
  it('keeps what the collector can hold and leaves out the rest', () => {
    const wire = toWireEvent(
      {
        action: 'search',
        subject: 'kafka',
        value: Number.NaN,
        attributes: { ok: true, n: 3, bad: { nested: 1 } },
        context: { pluginId: 'search', searchTypes: ['software-catalog', 'techdocs'], fn: () => 1, inf: Infinity, gone: undefined },
      },
      { id: 'i', timestamp: 1, sessionId: 's' },
    );
    assert.deepEqual(wire, {
      id: 'i',
      timestamp: 1,
      sessionId: 's',
      action: 'search',
      subject: 'kafka',
      attributes: { ok: true, n: 3 },
      context: { pluginId: 'search', searchTypes: ['software-catalog', 'techdocs'] },
    });
  });
});

describe('sessions', () => {
  it('keeps a tab session across reloads and starts a new one after the idle time', () => {
    const storage = new MemoryStorage();
    const clock = new FakeClock();
    const first = new SessionTracker(storage, 30 * 60_000, clock.now, uuid).current();
    clock.time += 29 * 60_000;
    assert.equal(new SessionTracker(storage, 30 * 60_000, clock.now, uuid).current(), first);
    clock.time += 31 * 60_000;
    const later = new SessionTracker(storage, 30 * 60_000, clock.now, uuid).current();
    assert.notEqual(later, first);
    assert.equal(JSON.parse(storage.getItem(SESSION_KEY)).id, later);
  });

  it('works when storage is blocked', () => {
    const blocked = { getItem() { throw new Error('SecurityError'); }, setItem() { throw new Error('SecurityError'); }, removeItem() {} };
    const tracker = new SessionTracker(blocked, 60_000, () => 1, uuid);
    assert.equal(tracker.current(), tracker.current());
  });
});

describe('PulseAnalytics (legacy frontend system)', () => {
  it('sends the event, its envelope and the bearer token', async () => {
    const { api, clock, collector } = analytics({ appVersion: '1.2.3', backstageVersion: '1.45.0' }, { identityApi: identity('user:default/ada') });
    api.captureEvent(navigate);
    await clock.advance(5000);
    const [request] = collector.requests;
    assert.equal(request.url, 'https://pulse.example/v1/events');
    assert.equal(request.headers.Authorization, `Bearer ${TOKEN}`);
    assert.equal(request.credentials, 'omit');
    const body = JSON.parse(request.body);
    assert.deepEqual(
      { ...body, events: undefined },
      { frontendSystem: 'LEGACY', appVersion: '1.2.3', backstageVersion: '1.45.0', collector: `backstage-plugin-analytics-module-pulse/${MODULE_VERSION}`, events: undefined },
    );
    const [sent] = body.events;
    assert.match(sent.id, /^[0-9a-f-]{36}$/);
    assert.equal(sent.timestamp, clock.time - 5000);
    assert.equal(sent.user, 'user:default/ada');
    assert.deepEqual(sent.context, { pluginId: 'catalog', routeRef: 'catalog:entity', extension: 'App', entityRef: 'component:default/pulse' });
    assert.equal(api.stats.accepted, 1);
  });

  it('sends no user when identity is disabled, and SHA-256 when asked', async () => {
    const off = analytics({ identity: 'disabled' }, { identityApi: identity('user:default/ada') });
    off.api.captureEvent(navigate);
    await off.clock.advance(5000);
    assert.equal(off.collector.events[0].user, undefined);

    const hashed = analytics({ userIdTransform: 'sha-256' }, { identityApi: identity('user:default/ada') });
    hashed.api.captureEvent(navigate);
    await hashed.api.flush(); // WebCrypto's digest settles outside the fake clock
    assert.equal(hashed.collector.events[0].user, `sha256:${createHash('sha256').update('user:default/ada').digest('hex')}`);
  });

  it('sends without a user when an optional identity fails', async () => {
    const failing = { getBackstageIdentity: async () => { throw new Error('guest'); } };
    const { api, clock, collector } = analytics({}, { identityApi: failing });
    api.captureEvent(navigate);
    await clock.advance(5000);
    assert.equal(collector.events.length, 1);
    assert.equal(collector.events[0].user, undefined);
  });

  it('flushes with keepalive when the page is hidden', async () => {
    const { api, clock, collector, env } = analytics({}, { identityApi: identity('user:default/ada') });
    api.captureEvent(navigate);
    await api.flush(); // resolves the identity, as the first interval flush would
    api.captureEvent({ ...navigate, subject: '/docs' });
    env.document.visibilityState = 'hidden';
    env.document.dispatch('visibilitychange');
    assert.equal(collector.requests.at(-1).keepalive, true);
    assert.equal(collector.events.at(-1).user, 'user:default/ada');
    assert.equal(collector.events.at(-1).subject, '/docs');
    await clock.advance(60_000);
    assert.equal(collector.requests.length, 2);
  });

  it('never throws from captureEvent', () => {
    let calls = 0;
    const randomUUID = () => {
      calls += 1;
      if (calls > 1) throw new Error('no crypto'); // the first is the tab id, at construction
      return uuid();
    };
    const { api } = analytics({}, { environment: { randomUUID } });
    assert.doesNotThrow(() => api.captureEvent(navigate));
  });

  it('states its version as package.json does', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url)));
    assert.equal(MODULE_VERSION, pkg.version);
  });
});

describe("through Backstage's backend (the default)", () => {
  function throughBackend(pulse = {}) {
    const clock = new FakeClock();
    const collector = new FakeCollector();
    const fetchApi = { fetch: collector.fetch };
    const env = { sessionStorage: new MemoryStorage(), localStorage: new MemoryStorage(), document: new FakeTarget(), window: new FakeTarget(), clock, randomUUID: uuid, log: quietLog };
    const api = PulseAnalytics.fromConfig(backendConfig(pulse), { identityApi: identity('user:default/ada'), fetchApi, discoveryApi: discovery, environment: env });
    return { api, clock, collector, env };
  }

  it("posts to the pulse backend plugin through Backstage's fetch API, with no token and no user", async () => {
    const { api, clock, collector } = throughBackend();
    api.captureEvent(navigate);
    await clock.advance(5000);
    const [request] = collector.requests;
    assert.equal(request.url, 'https://backstage.example/api/pulse/events');
    assert.equal(request.headers.Authorization, undefined); // Backstage's fetch API adds the user's token
    const body = JSON.parse(request.body);
    assert.equal(body.events[0].user, undefined);
    assert.equal(body.anonymous, undefined);
    assert.equal(api.stats.accepted, 1);
  });

  it('asks the backend to leave the user out when identity is disabled', async () => {
    const { api, clock, collector } = throughBackend({ identity: 'disabled' });
    api.captureEvent(navigate);
    await clock.advance(5000);
    assert.equal(JSON.parse(collector.requests[0].body).anonymous, true);
  });

  it('sends from a page being hidden too', async () => {
    const { api, collector, env } = throughBackend();
    await api.flush(); // the backend's URL is known once discovery answered
    api.captureEvent(navigate);
    env.document.visibilityState = 'hidden';
    env.document.dispatch('visibilitychange');
    await settle();
    assert.equal(collector.requests.at(-1).keepalive, true);
    assert.equal(collector.requests.at(-1).url, 'https://backstage.example/api/pulse/events');
  });

  it("needs Backstage's fetch and discovery APIs", () => {
    assert.throws(() => PulseAnalytics.fromConfig(backendConfig(), { fetchApi: { fetch: async () => new Response() } }), /discoveryApi/);
  });
});

/** Backstage's storage API as the module sees it: one bucket, observable. */
class FakeStorage {
  constructor(values = {}) {
    this.values = { ...values };
    this.observers = [];
  }
  forBucket(name) {
    assert.equal(name, 'pulse');
    return {
      snapshot: key => ({ key, value: this.values[key], presence: key in this.values ? 'present' : 'absent' }),
      observe$: key => ({
        subscribe: observer => {
          this.observers.push([key, observer]);
          return { unsubscribe: () => (this.observers = this.observers.filter(([, o]) => o !== observer)) };
        },
      }),
    };
  }
  set(key, value) {
    this.values[key] = value;
    for (const [k, o] of this.observers) if (k === key) o.next({ key, value, presence: 'present' });
  }
}

describe('opting out', () => {
  it("sends an opted-out user's events without identity, from the moment the switch moves", async () => {
    const storage = new FakeStorage();
    const { api, clock, collector } = analytics({}, { identityApi: identity('user:default/ada'), storageApi: storage });
    api.captureEvent(navigate);
    await clock.advance(5000);
    storage.set('optOut', true);
    api.captureEvent(navigate);
    await clock.advance(5000);
    const bodies = collector.requests.map(r => JSON.parse(r.body));
    assert.deepEqual(bodies.map(b => [b.events[0].user, b.anonymous]), [['user:default/ada', undefined], [undefined, true]]);
    storage.set('optOut', false);
    api.captureEvent(navigate);
    await clock.advance(5000);
    assert.equal(JSON.parse(collector.requests[2].body).events[0].user, 'user:default/ada');
  });

  it("asks Backstage's backend to leave the user out, and a hidden page's send too", async () => {
    const clock = new FakeClock();
    const collector = new FakeCollector();
    const env = { sessionStorage: new MemoryStorage(), localStorage: new MemoryStorage(), document: new FakeTarget(), window: new FakeTarget(), clock, randomUUID: uuid, log: quietLog };
    const api = PulseAnalytics.fromConfig(backendConfig(), { fetchApi: { fetch: collector.fetch }, discoveryApi: discovery, storageApi: new FakeStorage({ optOut: true }), environment: env });
    api.captureEvent(navigate);
    await clock.advance(5000);
    api.captureEvent(navigate);
    env.document.visibilityState = 'hidden';
    env.document.dispatch('visibilitychange');
    await settle();
    assert.deepEqual(collector.requests.map(r => [JSON.parse(r.body).anonymous, r.keepalive]), [[true, false], [true, true]]);
  });

  it('sends nothing of an opted-out user when configured to drop', async () => {
    const storage = new FakeStorage({ optOut: true });
    const { api, clock, collector } = analytics({ optOut: 'drop' }, { identityApi: identity('user:default/ada'), storageApi: storage });
    api.captureEvent(navigate);
    api.captureEvent(navigate);
    await clock.advance(60_000);
    assert.equal(collector.requests.length, 0);
    assert.equal(api.stats.declined, 2);
    assert.equal(api.stats.captured, 0);
  });

  it("honours the browser's Global Privacy Control only when configured to", async () => {
    const navigator = { globalPrivacyControl: true };
    for (const [honorGlobalPrivacyControl, user] of [[true, undefined], [false, 'user:default/ada']]) {
      const { api, clock, collector } = analytics({ honorGlobalPrivacyControl }, { identityApi: identity('user:default/ada'), environment: { navigator } });
      api.captureEvent(navigate);
      await clock.advance(5000);
      assert.equal(collector.events[0].user, user);
    }
  });
});

describe('new frontend system', () => {
  it('is an analytics implementation attached to the app analytics API', () => {
    assert.equal(analyticsModulePulse.pluginId, 'app');
    assert.equal(String(pulseAnalyticsImplementation), 'ExtensionDefinition{kind=analytics,name=pulse,attachTo=api:app/analytics@implementations}');
    assert.deepEqual(analyticsModulePulse.extensions.map(e => e.id), ['analytics:app/pulse']);
  });

  it('builds PulseAnalytics from the core APIs and marks events NEW', async () => {
    // Run the extension as the app would: its factory yields the implementation factory.
    const [extension] = analyticsModulePulse.extensions;
    const outputs = [...extension.factory({ node: {}, config: undefined, inputs: {}, apis: {} })];
    const { value } = outputs.find(o => o.id === 'core.analytics.factory');
    assert.deepEqual(Object.fromEntries(Object.entries(value.deps).map(([k, ref]) => [k, ref.id])), { config: 'core.config', identity: 'core.identity', fetch: 'core.fetch', discovery: 'core.discovery', storage: 'core.storage' });
    const collector = new FakeCollector();
    const implementation = value.factory({ config: config(), identity: identity('user:default/grace'), fetch: { fetch: collector.fetch } });
    implementation.captureEvent({ action: 'click', subject: 'Create', context: { pluginId: 'scaffolder', extensionId: 'page:scaffolder' } });
    await implementation.flush();
    const body = JSON.parse(collector.requests[0].body);
    assert.equal(body.frontendSystem, 'NEW');
    assert.deepEqual(body.events[0].context, { pluginId: 'scaffolder', extensionId: 'page:scaffolder' });
    assert.equal(body.events[0].user, 'user:default/grace');
  });
});
