// The events route in Backstage's test backend: what reaches the collector (a recording HTTP
// server standing in for it; test_collector.py and the app test cover the real one) carries
// the signed-in user whatever the body says, and every refusal has the collector's shape.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { mockCredentials, mockServices, startTestBackend } from '@backstage/backend-test-utils';
import backend from '../dist/index.js';
import { freePort } from './pulse.mjs';

const pulsePlugin = backend.default;
const INGEST_TOKEN = 'backend-ingest-token-0123456789';
const backends = [];

/** Answers like the collector: 202 with the non-object events rejected by index, or `next`. */
class Collector {
  received = [];
  next = undefined;

  async start() {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', chunk => (body += chunk));
      req.on('end', () => {
        const parsed = JSON.parse(body);
        this.received.push({ authorization: req.headers.authorization, origin: req.headers.origin, body: parsed });
        const [status, answer, headers] = this.next ?? [202, null, {}];
        const rejected = parsed.events.flatMap((e, index) => (e && typeof e === 'object' ? [] : [{ index, reason: 'invalid_type' }]));
        res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
        res.end(JSON.stringify(answer ?? { accepted: parsed.events.length - rejected.length, rejected }));
      });
    });
    this.port = await freePort();
    await new Promise(resolve => this.server.listen(this.port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.port}`;
  }
}

const collector = new Collector();

async function start(ingest = {}) {
  const server = await startTestBackend({
    features: [
      pulsePlugin,
      mockServices.rootConfig.factory({
        data: {
          pulse: {
            baseUrl: 'http://127.0.0.1:9', token: 'unused-read-token-0123456789',
            ...(ingest === null ? {} : { collector: { url: collector.url, token: INGEST_TOKEN, ...ingest } }),
          },
        },
      }),
    ],
  });
  backends.push(server);
  const { port } = server.server.address();
  return (body, { user = mockCredentials.user.header('user:default/alice'), headers = {} } = {}) =>
    fetch(`http://127.0.0.1:${port}/api/pulse/events`, {
      method: 'POST',
      headers: { Authorization: user, 'Content-Type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
}

const event = (extra = {}) => ({ id: crypto.randomUUID(), timestamp: Date.now(), sessionId: 's', action: 'click', subject: 'x', context: {}, ...extra });

before(() => collector.start());

after(async () => {
  for (const b of backends) await b.stop();
  collector.server.close();
});

describe('POST /api/pulse/events', () => {
  it("sends the batch as the signed-in user's, whatever user the body names, with the backend's token", async () => {
    const post = await start();
    collector.received = [];
    const body = { frontendSystem: 'NEW', events: [event({ user: 'user:default/mallory' }), event(), 'not an event', event({ user: null })] };
    const response = await post(body);
    assert.equal(response.status, 202);
    assert.deepEqual(await response.json(), { accepted: 3, rejected: [{ index: 2, reason: 'invalid_type' }] });
    const [sent] = collector.received;
    assert.equal(sent.authorization, `Bearer ${INGEST_TOKEN}`);
    assert.equal(sent.origin, undefined);
    assert.equal(sent.body.frontendSystem, 'NEW');
    assert.deepEqual(sent.body.events.map(e => e?.user ?? e), ['user:default/alice', 'user:default/alice', 'not an event', 'user:default/alice']);
    assert.deepEqual(sent.body.events[0].id, body.events[0].id);
  });

  it('sends no user at all for a sender that asks to stay anonymous', async () => {
    const post = await start();
    collector.received = [];
    assert.equal((await post({ anonymous: true, events: [event({ user: 'user:default/alice' })] })).status, 202);
    const [sent] = collector.received;
    assert.equal('user' in sent.body.events[0], false);
    assert.equal('anonymous' in sent.body, false);
  });

  // (The test backend takes a request with no Authorization header as a default user; the app
  // test sends one to a real Backstage.)
  it('refuses a request without a Backstage user (401) and a service (403), reading no body', async () => {
    const post = await start();
    collector.received = [];
    assert.equal((await post({ events: [event()] }, { user: mockCredentials.none.header() })).status, 401);
    const service = await post({ events: [event()] }, { user: mockCredentials.service.header() });
    assert.equal(service.status, 403);
    assert.equal((await service.json()).error.name, 'NotAllowedError');
    assert.equal(collector.received.length, 0);
  });

  it("answers malformed bodies with the collector's codes, never a stack trace", async () => {
    const post = await start({ maxRequestBytes: 4096 });
    collector.received = [];
    const cases = [
      ['{"events": [', 400, 'invalid_json'],
      ['['.repeat(100_000) + ']'.repeat(100_000), 413, 'request_too_large'],
      [JSON.stringify({ events: 'no' }), 400, 'invalid_body'],
      ['[1, 2]', 400, 'invalid_body'],
      ['null', 400, 'invalid_body'],
      [JSON.stringify({ events: [event({ attributes: { big: 'x'.repeat(5000) } })] }), 413, 'request_too_large'],
    ];
    for (const [body, status, error] of cases) {
      const response = await post(body);
      const text = await response.text();
      assert.equal(response.status, status, `${body.slice(0, 40)}: ${text}`);
      assert.equal(JSON.parse(text).error, error);
      assert.doesNotMatch(text, /\bat .+:\d+:\d+/);
    }
    const deep = await start({ maxRequestBytes: 1_048_576 });
    const nested = await deep('{"events": [' + '['.repeat(200_000) + ']'.repeat(200_000) + ']}');
    assert.equal(nested.status, 400);
    assert.equal((await nested.json()).error, 'invalid_json');
    assert.equal(collector.received.length, 0);
  });

  it('limits each user to its events a minute, with Retry-After, and splits what can never fit', async () => {
    const post = await start({ eventsPerMinute: 5 });
    collector.received = [];
    assert.equal((await post({ events: [event(), event(), event()] })).status, 202);
    const over = await post({ events: [event(), event(), event()] });
    assert.equal(over.status, 429);
    assert.equal((await over.json()).error, 'rate_limited');
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
    // Another user has a rate of its own.
    const bob = mockCredentials.user.header('user:default/bob');
    assert.equal((await post({ events: [event(), event()] }, { user: bob })).status, 202);
    const huge = await post({ events: Array.from({ length: 6 }, () => event()) }, { user: bob });
    assert.equal(huge.status, 413);
    assert.equal((await huge.json()).error, 'too_many_events');
    assert.equal(collector.received.length, 2);
  });

  it("passes the collector's refusals on, and says 503 when it is down or refuses the backend's token", async () => {
    const post = await start();
    collector.next = [429, { error: 'rate_limited', detail: 'instance over its rate' }, { 'Retry-After': '7' }];
    const limited = await post({ events: [event()] });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '7');
    collector.next = [401, { error: 'unauthorized', detail: 'a valid bearer token is required' }, {}];
    const refused = await post({ events: [event()] });
    assert.equal(refused.status, 503);
    assert.match(await refused.text(), /credential/);
    collector.next = undefined;
    const down = await start({ url: `http://127.0.0.1:${await freePort()}` });
    const unreachable = await down({ events: [event()] });
    assert.equal(unreachable.status, 503);
    assert.equal((await unreachable.json()).error, 'unavailable');
  });

  it('answers 404 where no collector is configured', async () => {
    const post = await start(null);
    const response = await post({ events: [event()] });
    assert.equal(response.status, 404);
    assert.equal((await response.json()).error.name, 'NotFoundError');
  });
});
