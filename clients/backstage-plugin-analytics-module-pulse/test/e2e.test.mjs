// Cross-language end to end: the module captures events and ships them to the real collector
// of a real embedded Pulse stack (Apache Kafka, the faust worker, the sink into chDB); the rows are
// read back through the sink's query server. Once in Node, once in Chromium.

import assert from 'node:assert/strict';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigReader } from '@backstage/config';
import { chromium } from 'playwright-core';
import { analyticsModulePulse } from '../dist/alpha.js';
import { PulseAnalytics } from '../dist/index.js';
import { freePort, Stack, waitFor } from './stack.mjs';

const STARTUP_MS = 240_000;
const ARRIVAL_MS = 120_000;
const CHROMIUM = '/usr/bin/chromium'; // Debian's package; make test installs it
const PACKAGE = new URL('../', import.meta.url).pathname;

describe('module -> collector -> Kafka -> streams -> ClickHouse', { timeout: STARTUP_MS + 4 * ARRIVAL_MS }, () => {
  const stack = new Stack();
  let page;

  before(async () => {
    page = await servePage();
    await stack.start({ corsOrigins: page.origin, timeoutMs: STARTUP_MS });
  });

  after(async () => {
    await stack.stop();
    page?.server.close();
  });

  const hmac = text => createHmac('sha256', stack.secret).update(text).digest('hex');

  it('stores what both frontend systems capture, with the user keyed and nothing doubled', async () => {
    const { endpoint, token } = stack;
    const config = extra => new ConfigReader({ app: { analytics: { pulse: { endpoint, token, flushIntervalMs: 200, appVersion: '9.9.9', ...extra } } } });
    const captured = [];
    const record = fetchImpl => async (url, init) => {
      for (const e of JSON.parse(init.body).events) if (!captured.includes(e.id)) captured.push(e.id);
      return fetchImpl(url, init);
    };

    // Legacy system, user sent as a ref; the first answer is "lost" after the collector took
    // the batch, so the module sends it again.
    let lose = true;
    const losing = async (url, init) => {
      const response = await fetch(url, init);
      if (lose) {
        lose = false;
        throw new TypeError('network connection lost');
      }
      return response;
    };
    const legacy = PulseAnalytics.fromConfig(config(), {
      identityApi: { getBackstageIdentity: async () => ({ userEntityRef: 'user:default/ada' }) },
      environment: { fetch: record(losing) },
    });
    const subject = `'; DROP TABLE pulse.events; -- "quoted"\nnew line 🚀 עברית`;
    legacy.captureEvent({
      action: 'navigate', subject: '/catalog/default/component/pulse',
      attributes: { kind: 'component', name: 'pulse' },
      context: { pluginId: 'catalog', routeRef: 'catalog:entity', extension: 'App', entityRef: 'component:default/pulse' },
    });
    legacy.captureEvent({ action: 'search', subject, value: 3, context: { pluginId: 'search', routeRef: 'search', extension: 'SearchPage', searchTypes: ['techdocs', 'software-catalog'] } });
    legacy.captureEvent({ action: 'create', subject: 'Task has been created', value: 42.5, attributes: { templateSteps: 4 }, context: { pluginId: 'scaffolder', routeRef: 'scaffolder', extension: 'ScaffolderPage', entityRef: 'template:default/service' } });

    // New frontend system through the extension's factory, user sent as SHA-256.
    const [extension] = analyticsModulePulse.extensions;
    const { value: factory } = [...extension.factory({ node: {}, config: undefined, inputs: {}, apis: {} })][0];
    const nfs = factory.factory({
      config: config({ userIdTransform: 'sha-256' }),
      identity: { getBackstageIdentity: async () => ({ userEntityRef: 'user:default/grace' }) },
      fetch: { fetch: record(fetch) },
    });
    nfs.captureEvent({ action: 'click', subject: 'Create', context: { pluginId: 'scaffolder', extensionId: 'page:scaffolder' } });

    await waitFor('the module to deliver', async () => legacy.pending === 0 && nfs.pending === 0 && legacy.stats.retries === 1, 30_000);
    assert.equal(captured.length, 4);
    assert.deepEqual([legacy.stats.accepted, nfs.stats.accepted], [3, 1]);

    const got = await waitFor('the rows in ClickHouse', async () => {
      const found = await stack.rows(`event_id IN (${captured.map(id => `'${id}'`).join(',')})`);
      return found.length >= 4 && found;
    }, ARRIVAL_MS, stack);
    assert.equal(got.length, 4, 'a re-sent batch is stored once');

    const byAction = Object.fromEntries(got.map(r => [r.action, r]));
    assert.deepEqual(new Set(got.map(r => r.id)), new Set(captured));
    for (const r of got) {
      assert.equal(r.instance_id, 'local');
      assert.doesNotMatch(r.user_id, /user:default/);
    }
    assert.equal(byAction.navigate.frontend_system, 'LEGACY');
    assert.equal(byAction.navigate.user_id, hmac('user:default/ada'));
    assert.equal(byAction.navigate.plugin_id, 'catalog');
    assert.equal(byAction.navigate.route_ref, 'catalog:entity');
    assert.equal(byAction.navigate.entity_ref, 'component:default/pulse');
    assert.deepEqual(byAction.navigate.attributes, { kind: 'component', name: 'pulse' });
    assert.equal(byAction.search.subject, subject, 'byte for byte');
    assert.equal(byAction.search.value, 3);
    assert.equal(byAction.search.search_types, 'techdocs,software-catalog');
    assert.equal(byAction.create.value, 42.5);
    assert.equal(byAction.create.entity_ref, 'template:default/service');
    assert.equal(byAction.click.frontend_system, 'NEW');
    assert.equal(byAction.click.extension, 'page:scaffolder');
    assert.equal(byAction.click.user_id, hmac(`sha256:${createHash('sha256').update('user:default/grace').digest('hex')}`));
    assert.equal(new Set(got.filter(r => r.frontend_system === 'LEGACY').map(r => r.session_id)).size, 1);
  });

  it('ships from Chromium: one session across a reload, and the events held when the page goes away', async () => {
    const run = randomUUID().slice(0, 8);
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const tab = await browser.newPage();
      const errors = [];
      tab.on('pageerror', error => errors.push(String(error)));
      // The app page: the module as the browser loads it (ES modules from dist/, no bundler),
      // a batch interval too long to fire, so only page hide can send.
      const boot = async () => {
        await tab.goto(`${page.origin}/`);
        await tab.evaluate(async ({ endpoint, token }) => {
          const { PulseAnalytics, DEFAULTS } = await import('/dist/index.js');
          const identityApi = { getBackstageIdentity: async () => ({ userEntityRef: 'user:default/linus' }) };
          window.pulse = new PulseAnalytics({ ...DEFAULTS, endpoint, token, flushIntervalMs: 600_000 }, { identityApi });
        }, { endpoint: stack.endpoint, token: stack.token });
      };
      const capture = (subject, action = 'navigate') =>
        tab.evaluate(([s, a]) => window.pulse.captureEvent({ action: a, subject: s, context: { pluginId: 'catalog', extension: 'App', routeRef: 'unknown' } }), [subject, action]);

      await boot();
      for (let i = 0; i < 3; i += 1) await capture(`/browser/${run}/${i}`);
      const session = await tab.evaluate(() => JSON.parse(sessionStorage.getItem('pulse-analytics:session')).id);
      assert.equal(await tab.evaluate(() => window.pulse.pending), 3);
      await tab.goto(`${page.origin}/elsewhere`); // pagehide: the three leave with keepalive
      await boot(); // the same tab, back again: the same session
      await capture(`/browser/${run}/last`, 'click');
      await tab.close({ runBeforeUnload: true }); // pagehide again, then the page is gone

      const got = await waitFor("the browser's rows", async () => {
        const found = await stack.rows(`subject LIKE '/browser/${run}/%'`);
        return found.length >= 4 && found;
      }, ARRIVAL_MS, stack);
      assert.deepEqual(got.map(r => r.subject).sort(), [0, 1, 2, 'last'].map(n => `/browser/${run}/${n}`));
      assert.deepEqual(new Set(got.map(r => r.session_id)), new Set([session]));
      assert.deepEqual(new Set(got.map(r => r.user_id)), new Set([hmac('user:default/linus')]));
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});

/** Serves the app page and the built module on its own origin (so the collector is cross-origin). */
async function servePage() {
  const server = createServer((request, response) => {
    const path = new URL(request.url, 'http://x').pathname;
    if (path.startsWith('/dist/') && !path.includes('..')) {
      try {
        const body = readFileSync(join(PACKAGE, path));
        response.writeHead(200, { 'Content-Type': path.endsWith('.js') ? 'text/javascript' : 'application/json' });
        response.end(body);
      } catch {
        response.writeHead(404).end();
      }
      return;
    }
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end(`<!doctype html><meta charset="utf-8"><title>Backstage ${path}</title><p>${path}</p>`);
  });
  const port = await freePort();
  await new Promise(resolve => server.listen(port, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${port}` };
}
