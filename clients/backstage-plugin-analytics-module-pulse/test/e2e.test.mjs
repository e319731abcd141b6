// Cross-language end to end: the module, in Node, captures events and ships them to the real
// collector of a real embedded Pulse stack (`python -m deploy.local`: Tansu, the faust worker,
// the sink into chDB); the rows are then read back through the sink's query server.
//
// PULSE_PYTHON names the interpreter with Pulse installed (make test passes .venv's).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigReader } from '@backstage/config';
import { analyticsModulePulse } from '../dist/alpha.js';
import { PulseAnalytics } from '../dist/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PYTHON = process.env.PULSE_PYTHON ?? join(ROOT, '.venv/bin/python');
const STARTUP_MS = 240_000;
const ARRIVAL_MS = 120_000;

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(what, check, timeoutMs, stack) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (stack?.exited) throw new Error(`the stack exited while waiting for ${what}:\n${stack.output.slice(-4000)}`);
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise(resolve => setTimeout(resolve, 250));
  }
  throw new Error(`timed out waiting for ${what} (${last ?? 'not yet'})\n${stack?.output.slice(-4000) ?? ''}`);
}

const ok = url => async () => (await fetch(url)).ok;

describe('module -> collector -> Kafka -> streams -> ClickHouse', { timeout: STARTUP_MS + 3 * ARRIVAL_MS }, () => {
  const stack = { output: '', exited: false };
  let ports;
  let data;
  let child;

  before(async () => {
    ports = { kafka: await freePort(), query: await freePort(), web: await freePort(), metrics: await freePort(), collector: await freePort() };
    data = mkdtempSync(join(tmpdir(), 'pulse-module-e2e-'));
    child = spawn(
      PYTHON,
      ['-m', 'deploy.local', '--data-dir', data, '--no-traffic', '--partitions', '2',
        '--kafka-port', ports.kafka, '--query-port', ports.query, '--streams-web-port', ports.web,
        '--sink-metrics-port', ports.metrics, '--collector-port', ports.collector].map(String),
      { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    for (const stream of [child.stdout, child.stderr]) stream.on('data', chunk => (stack.output += chunk));
    child.on('exit', () => (stack.exited = true));
    const host = 'http://127.0.0.1';
    await waitFor('the collector', ok(`${host}:${ports.collector}/readyz`), STARTUP_MS, stack);
    await waitFor('the streams worker', ok(`${host}:${ports.web}/readyz`), STARTUP_MS, stack);
    await waitFor('the sink', ok(`${host}:${ports.metrics}/readyz`), STARTUP_MS, stack);
  });

  after(async () => {
    if (child && !stack.exited) {
      const exited = new Promise(resolve => child.once('exit', resolve));
      process.kill(-child.pid, 'SIGTERM');
      const killer = setTimeout(() => process.kill(-child.pid, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
    }
    if (data) rmSync(data, { recursive: true, force: true });
  });

  async function rows(ids) {
    const sql = `SELECT toString(event_id) AS id, toUnixTimestamp64Milli(event_time) AS time, instance_id, frontend_system,
        session_id, user_id, plugin_id, extension, route_ref, action, subject, value, attributes, entity_ref, search_types
      FROM pulse.events FINAL WHERE event_id IN (${ids.map(id => `'${id}'`).join(',')}) ORDER BY event_time FORMAT JSONEachRow`;
    const response = await fetch(`http://127.0.0.1:${ports.query}/?query=${encodeURIComponent(sql)}`);
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.text()).split('\n').filter(Boolean).map(line => JSON.parse(line));
  }

  it('stores what both frontend systems capture, with the user keyed and nothing doubled', async () => {
    const token = readFileSync(join(data, 'collector-token'), 'utf8').trim();
    const secret = readFileSync(join(data, 'user-id-secret'), 'utf8').trim();
    const endpoint = `http://127.0.0.1:${ports.collector}/v1/events`;
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
      const found = await rows(captured);
      return found.length >= 4 && found;
    }, ARRIVAL_MS, stack);
    assert.equal(got.length, 4, 'a re-sent batch is stored once');

    const hmac = text => createHmac('sha256', secret).update(text).digest('hex');
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
});
