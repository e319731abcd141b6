// The page's client: what it asks the backend plugin, and how each failure reaches the page.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PulseClient, PulseError } from '../dist/index.js';

function client(answer) {
  const asked = [];
  const fetchApi = {
    fetch: async (url, init) => {
      asked.push({ url, accept: init.headers.Accept });
      return answer(url);
    },
  };
  const discoveryApi = { getBaseUrl: async plugin => `http://backstage.test/api/${plugin}` };
  return { api: new PulseClient({ discoveryApi, fetchApi }), asked };
}

const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

describe('PulseClient', () => {
  it('asks the pulse backend plugin with the parameters given, leaving out empty ones', async () => {
    const { api, asked } = client(() => json(200, { question: 'top_plugins', rows: [] }));
    await api.answer('top_plugins', { since: '7d', instance: '', limit: 10 });
    const text = await (await api.csv('new vs returning', { since: '24h', group_by: 'hour' })).text();
    assert.deepEqual(asked, [
      { url: 'http://backstage.test/api/pulse/questions/top_plugins?since=7d&limit=10', accept: 'application/json' },
      { url: 'http://backstage.test/api/pulse/questions/new%20vs%20returning?since=24h&group_by=hour', accept: 'text/csv' },
    ]);
    assert.match(text, /top_plugins/);
  });

  it("turns Backstage's and Pulse's error bodies into typed errors carrying only the message", async () => {
    const cases = [
      [403, { error: { name: 'NotAllowedError', message: 'not allowed to read', stack: 'at x (y.js:1)' } }, 'not-allowed', 'not allowed to read'],
      [401, { error: { name: 'AuthenticationError', message: 'no token' } }, 'not-allowed', 'no token'],
      [400, { error: 'bad_parameter', message: 'limit is at most 10000' }, 'bad-request', 'limit is at most 10000'],
      [503, { error: { name: 'ServiceUnavailableError', message: 'Pulse is unreachable' } }, 'unavailable', 'Pulse is unreachable'],
      [500, { error: { name: 'Error', message: 'boom' } }, 'failed', 'boom'],
    ];
    for (const [status, body, kind, message] of cases) {
      const { api } = client(() => json(status, body));
      await assert.rejects(api.answer('top_plugins', { since: '7d' }), error => {
        assert.ok(error instanceof PulseError);
        assert.deepEqual([error.kind, error.message, error.status], [kind, message, status]);
        return true;
      });
    }
  });

  it('says the backend is unreachable when the request itself fails, and copes with a body that is not JSON', async () => {
    const { api } = client(() => {
      throw new TypeError('Failed to fetch');
    });
    await assert.rejects(api.catalogue(), { kind: 'unavailable', message: /cannot be reached.*Failed to fetch/ });
    const html = client(() => new Response('<html>gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    await assert.rejects(html.api.catalogue(), { kind: 'unavailable', message: '502 Bad Gateway' });
  });
});

describe('the group picker', () => {
  it("lists the range's groups, the signed-in user's own first, without '(no group)'", async () => {
    const { groupItems, ALL } = await import('../dist/groups.js');
    const answer = {
      rows: [
        { group_ref: 'group:default/web', title: 'Web', type: 'team' },
        { group_ref: '(no group)', title: '', type: '' },
        { group_ref: 'group:default/acme', title: 'ACME Corp', type: 'organization' },
        { group_ref: 'group:default/platform', title: 'Platform', type: 'team' },
      ],
    };
    const items = groupItems(answer, ['user:default/ada', 'group:default/Platform'], '');
    assert.deepEqual(items.map(i => i.value), [ALL, 'group:default/platform', 'group:default/acme', 'group:default/web']);
    assert.equal(items[1].label, 'Platform (team) · yours');
    const kept = groupItems({ rows: [] }, [], 'group:default/gone');
    assert.deepEqual(kept.map(i => i.value), [ALL, 'group:default/gone']); // a choice stays listed
  });
});
