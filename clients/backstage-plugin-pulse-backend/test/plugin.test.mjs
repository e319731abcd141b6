import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mockCredentials, mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import backend from '../dist/index.js';
import { ADMIN_TOKEN, freePort, Pulse, READ_TOKEN } from './pulse.mjs';

const pulsePlugin = backend.default;
const pulse = new Pulse();
const backends = [];

async function start({ baseUrl = pulse.url, token = READ_TOKEN, result = AuthorizeResult.ALLOW, timeoutMs = 5000, adminToken } = {}) {
  const server = await startTestBackend({
    features: [
      pulsePlugin,
      mockServices.rootConfig.factory({ data: { pulse: { baseUrl, token, timeoutMs, adminToken } } }),
      mockServices.permissions.factory({ result }),
    ],
  });
  backends.push(server);
  const { port } = server.server.address();
  return (path, { user = mockCredentials.user.header(), headers = {}, body } = {}) =>
    fetch(`http://127.0.0.1:${port}/api/pulse${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { Authorization: user, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
}

async function json(response) {
  const text = await response.text();
  assert.ok(!/\bat .+\(.*:\d+:\d+\)/.test(text), `a stack trace in ${text}`);
  assert.ok(!text.includes(READ_TOKEN), 'the token in an answer');
  return JSON.parse(text);
}

before(async () => {
  await pulse.start();
  // Ten page views today: catalog by users u0..u3 (six of them), techdocs by u2, u3, u0, u1.
  await pulse.admin(`INSERT INTO pulse.events (event_id, event_time, received_at, instance_id,
      frontend_system, session_id, user_id, plugin_id, extension, action, subject, is_page_view)
    SELECT generateUUIDv4(), now64(3) - number, now64(3), 'backstage.test', 'NEW',
      concat('s', toString(number % 3)), concat('u', toString(number % 4)),
      if(number < 6, 'catalog', 'techdocs'), 'app', 'navigate', '/x', true FROM numbers(10)`);
});

after(async () => {
  for (const b of backends) await b.stop();
  await pulse.stop();
});

describe('the pulse backend plugin', () => {
  it('answers a signed-in user holding pulse.insights.read with Pulse\'s answer', async () => {
    const get = await start();
    const catalogue = await json(await get('/questions'));
    assert.ok(catalogue.questions.some(q => q.name === 'top_plugins'));
    const answer = await json(await get('/questions/top_plugins?since=1d&limit=5'));
    assert.deepEqual(
      answer.rows.map(r => [r.plugin_id, r.page_views, r.users, r.events]),
      [['catalog', 6, 4, 6], ['techdocs', 4, 4, 4]],
    );
    const csv = await get('/questions/top_plugins?since=1d&format=csv');
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type'), /text\/csv/);
    assert.match(await csv.text(), /^"plugin_id","events"/);
  });

  it('refuses a user without the permission (403) and a request without a user (401)', async () => {
    const denied = await start({ result: AuthorizeResult.DENY });
    const refused = await denied('/questions/top_plugins');
    assert.equal(refused.status, 403);
    assert.equal((await json(refused)).error.name, 'NotAllowedError');
    const allowed = await start();
    const anonymous = await allowed('/questions', { user: mockCredentials.none.header() });
    assert.equal(anonymous.status, 401);
  });

  it("answers every one of the page's requests at once, though Pulse runs one query at a time", async () => {
    // Waiting is what is tested, not how long it takes: a deadline no machine reaches.
    const get = await start({ timeoutMs: 600_000 });
    const names = ['active_users', 'new_vs_returning', 'top_plugins', 'top_templates', 'top_techdocs', 'top_entities'];
    const answers = await Promise.all([...names, ...names].map(name => get(`/questions/${name}?since=7d`)));
    assert.deepEqual(answers.map(a => a.status), answers.map(() => 200));
    for (const a of answers) assert.ok((await json(a)).columns.length > 0);
  });

  it('passes parameters outside their domain on as 400 and unknown questions as 404', async () => {
    const get = await start();
    const bad = await get('/questions/top_plugins?limit=10001');
    assert.equal(bad.status, 400);
    assert.match((await json(bad)).error.message, /limit/);
    const unknown = await get('/questions/dau');
    assert.equal(unknown.status, 404);
    assert.equal((await json(unknown)).error.name, 'NotFoundError');
  });

  it('answers 503 with a stable name when Pulse is down or refuses the token', async () => {
    const down = await start({ baseUrl: `http://127.0.0.1:${await freePort()}` });
    const unreachable = await down('/questions');
    assert.equal(unreachable.status, 503);
    assert.equal((await json(unreachable)).error.name, 'ServiceUnavailableError');
    const wrong = await start({ token: 'not-the-token-0123456789' });
    const refused = await wrong('/questions/top_plugins');
    assert.equal(refused.status, 503);
    const body = await json(refused);
    assert.equal(body.error.name, 'ServiceUnavailableError');
    assert.match(body.error.message, /credential/);
    await wrong('/questions');
    // Pulse logs the refusal once, and never what was sent.
    assert.equal(pulse.output.split('a wrong credential').length - 1, 1, pulse.output);
    assert.ok(!pulse.output.includes('not-the-token'), pulse.output);
  });

  it('erases only for pulse.people.erase holders, with the admin token configured, one person at a time', async () => {
    const keyed = 'ab'.repeat(32);
    const off = await start();
    const missing = await off('/erasures/verify', { body: { user_id: keyed } });
    assert.equal(missing.status, 404);
    assert.match((await json(missing)).error.message, /pulse.adminToken/);
    const denied = await start({ adminToken: ADMIN_TOKEN, result: AuthorizeResult.DENY });
    const refused = await denied('/erasures', { body: { user: 'user:default/jane' } });
    assert.equal(refused.status, 403);
    assert.match((await json(refused)).error.message, /pulse.people.erase/);
    const post = await start({ adminToken: ADMIN_TOKEN });
    assert.equal((await post('/erasures', { body: { user: 'user:default/jane' }, user: mockCredentials.none.header() })).status, 401);
    for (const body of [{}, { user: 'group:default/web' }, { user_id: 'xyz' }, { user: 'user:default/a', user_id: keyed }, [1]]) {
      const bad = await post('/erasures', { body });
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal((await json(bad)).error.name, 'InputError');
    }
    // Pulse answers a verification of someone never erased: nothing of theirs, no receipt.
    const answer = await post('/erasures/verify', { body: { user_id: keyed } });
    const verification = await json(answer);
    assert.equal(answer.status, 200, JSON.stringify(verification));
    assert.deepEqual(verification, { erasure_id: null, rows_left: { events: 0, dead_letters: 0 }, rollup_differences: {}, ok: false });
    assert.ok(!JSON.stringify(verification).includes(ADMIN_TOKEN));
  });
});
