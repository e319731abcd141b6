import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserResolver } from '../dist/identity.js';
import { KEEPALIVE_BUDGET, PENDING_PREFIX, Shipper } from '../dist/shipper.js';
import { event, FakeClock, FakeCollector, MemoryStorage, quietLog, recordingLog } from './helpers.mjs';

const meta = { frontendSystem: 'LEGACY', collector: 'test/1' };

function shipper(overrides = {}) {
  const clock = overrides.clock ?? new FakeClock();
  const collector = overrides.collector ?? new FakeCollector();
  const s = new Shipper({
    meta,
    maxBatchSize: 10,
    maxQueueSize: 100,
    flushIntervalMs: 5000,
    send: collector.send,
    user: new UserResolver('disabled', undefined, 'none'),
    clock,
    log: quietLog,
    tabId: 'tab-1',
    ...overrides,
  });
  return { s, clock, collector };
}

const ids = events => events.map(e => e.id);

describe('batching', () => {
  it('sends at once when a batch is full, in batches of at most maxBatchSize', async () => {
    const { s, clock, collector } = shipper();
    const sent = Array.from({ length: 23 }, (_, i) => event(i));
    sent.forEach(e => s.enqueue(e));
    await clock.advance(0);
    assert.deepEqual(collector.requests.map(r => JSON.parse(r.body).events.length), [10, 10, 3]);
    assert.deepEqual(ids(collector.events), ids(sent));
    assert.deepEqual(s.stats, { captured: 23, accepted: 23, rejected: 0, dropped: 0, retries: 0, declined: 0 });
    assert.equal(s.pending, 0);
  });

  it('sends a partial batch when the flush interval has passed since it began', async () => {
    const { s, clock, collector } = shipper();
    s.enqueue(event(1));
    await clock.advance(3000);
    s.enqueue(event(2));
    await clock.advance(1999);
    assert.equal(collector.requests.length, 0);
    await clock.advance(1);
    assert.deepEqual(collector.events.map(e => e.subject), ['link 1', 'link 2']);
  });

  it('puts the envelope around each batch and never sends keepalive outside page hide', async () => {
    const { s, clock, collector } = shipper();
    s.enqueue(event(1));
    await clock.advance(5000);
    const body = JSON.parse(collector.requests[0].body);
    assert.equal(body.frontendSystem, 'LEGACY');
    assert.equal(body.collector, 'test/1');
    assert.equal(collector.requests[0].keepalive, false);
  });
});

describe('retries', () => {
  it('honours Retry-After on 503 and 429, then delivers everything once', async () => {
    const { s, clock, collector } = shipper();
    collector.reply({ status: 503, retryAfterMs: 7000 }, { status: 429, retryAfterMs: 3000 });
    const sent = [event(1), event(2)];
    sent.forEach(e => s.enqueue(e));
    await clock.advance(5000);
    assert.equal(collector.requests.length, 1);
    s.enqueue(event(3)); // arriving during backoff does not jump the wait
    await clock.advance(6999);
    assert.equal(collector.requests.length, 1);
    await clock.advance(1);
    assert.equal(collector.requests.length, 2);
    await clock.advance(3000);
    assert.equal(collector.requests.length, 3);
    assert.deepEqual(JSON.parse(collector.requests[2].body).events.map(e => e.subject), ['link 1', 'link 2', 'link 3']);
    assert.equal(s.stats.accepted, 3);
    assert.equal(s.stats.retries, 2);
  });

  it('backs off exponentially on network errors and 5xx, capped at a minute', async () => {
    const { s, clock, collector } = shipper();
    const failures = Array.from({ length: 9 }, (_, i) => (i % 2 ? { status: 502 } : new TypeError('fetch failed')));
    collector.reply(...failures);
    s.enqueue(event(1));
    await clock.advance(5000);
    const times = [clock.now()];
    while (collector.requests.length < 10) {
      const before = collector.requests.length;
      const start = clock.now();
      while (collector.requests.length === before) await clock.advance(100);
      times.push(clock.now());
      assert.ok(clock.now() - start <= 60_000);
    }
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    // random() is 0.5 in the fake clock: each wait is 3/4 of 1 s, 2 s, 4 s, ... up to 60 s.
    assert.deepEqual(gaps, [800, 1500, 3000, 6000, 12000, 24000, 45000, 45000, 45000]);
    assert.equal(s.stats.accepted, 1);
  });

  it('halves batches after 413 and drops only a single event that is still too large', async () => {
    const { s, clock, collector } = shipper();
    collector.reply({ status: 413, error: 'too_many_events' });
    const sent = Array.from({ length: 10 }, (_, i) => event(i));
    sent.forEach(e => s.enqueue(e));
    await clock.advance(0);
    assert.deepEqual(collector.requests.map(r => JSON.parse(r.body).events.length), [10, 5, 5]);
    assert.deepEqual(ids(collector.events.slice(10)), ids(sent));

    collector.reply({ status: 413 }, { status: 413 }, { status: 413 }, { status: 413 });
    s.enqueue(event(99));
    await clock.advance(5000);
    assert.equal(s.stats.dropped, 1);
  });

  it('drops what the collector will never take (400, 401) and says so once per status', async () => {
    const { warnings, log } = recordingLog();
    const { s, clock, collector } = shipper({ log });
    collector.reply({ status: 401, error: 'unauthorized' }, { status: 401 }, { status: 400, error: 'invalid_events' });
    for (let round = 0; round < 3; round += 1) {
      s.enqueue(event(round));
      await clock.advance(5000);
    }
    assert.equal(collector.requests.length, 3);
    assert.equal(s.stats.dropped, 3);
    assert.equal(s.pending, 0);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /401 unauthorized/);
  });

  it('counts events the collector accepted apart from those it rejected', async () => {
    const { s, clock, collector } = shipper();
    collector.reply({ status: 202, rejected: [{ index: 1, reason: 'invalid_timestamp', detail: 'x' }] });
    [event(1), event(2), event(3)].forEach(e => s.enqueue(e));
    await clock.advance(5000);
    assert.equal(s.stats.accepted, 2);
    assert.equal(s.stats.rejected, 1);
  });
});

describe('bounds', () => {
  it('keeps at most maxQueueSize events, dropping the oldest while the collector is down', async () => {
    const { s, clock, collector } = shipper({ maxQueueSize: 25 });
    collector.reply(...Array.from({ length: 50 }, () => new TypeError('offline')));
    const sent = Array.from({ length: 40 }, (_, i) => event(i));
    sent.forEach(e => s.enqueue(e));
    assert.equal(s.pending, 25);
    assert.equal(s.stats.dropped, 15);
    collector.replies = [];
    await clock.advance(120_000);
    assert.deepEqual(ids(collector.events.filter((e, i, all) => all.findIndex(x => x.id === e.id) === i)), ids(sent.slice(15)));
  });
});

describe('identity', () => {
  it('holds events until a required identity is known, and never sends them without it', async () => {
    let calls = 0;
    const identity = {
      getBackstageIdentity: async () => {
        calls += 1;
        if (calls === 1) throw new Error('not signed in yet');
        return { userEntityRef: 'user:default/ada' };
      },
    };
    const { s, clock, collector } = shipper({ user: new UserResolver('required', identity, 'none') });
    s.enqueue(event(1));
    await clock.advance(5000);
    assert.equal(collector.requests.length, 0);
    await clock.advance(1000);
    assert.equal(collector.events[0].user, 'user:default/ada');
  });
});

describe('page hide', () => {
  it('sends held events with keepalive within the budget and persists the rest', async () => {
    const persist = new MemoryStorage();
    const { s, collector } = shipper({ persist, maxQueueSize: 1000, maxBatchSize: 100 });
    collector.reply(...Array.from({ length: 50 }, () => ({ status: 202 })));
    const big = 'x'.repeat(2000);
    const sent = Array.from({ length: 60 }, (_, i) => event(i, { subject: big }));
    sent.forEach(e => s.enqueue(e));
    s.hide();
    const keepalive = collector.requests.filter(r => r.keepalive);
    assert.ok(keepalive.length >= 1);
    const bytes = keepalive.reduce((n, r) => n + Buffer.byteLength(r.body), 0);
    assert.ok(bytes <= KEEPALIVE_BUDGET, `${bytes} bytes in keepalive requests`);
    const persisted = JSON.parse(persist.getItem(`${PENDING_PREFIX}tab-1`));
    assert.deepEqual([...ids(collector.events), ...ids(persisted)], ids(sent));

    // The next page load (another tab id) sends what this one left.
    const next = shipper({ persist, tabId: 'tab-2' });
    next.s.restorePersisted();
    assert.equal(persist.length, 0);
    await next.clock.advance(5000);
    assert.deepEqual(ids(next.collector.events), ids(persisted));
  });

  it('un-persists when the page is shown again, since the queue still holds those events', () => {
    const persist = new MemoryStorage();
    const { s } = shipper({ persist });
    Array.from({ length: 40 }, (_, i) => s.enqueue(event(i, { subject: 'y'.repeat(4000) })));
    s.hide();
    assert.equal(persist.length, 1);
    s.shown();
    assert.equal(persist.length, 0);
    assert.ok(s.pending > 0);
  });

  it('persists everything when a required identity is not known yet', () => {
    const persist = new MemoryStorage();
    const { s, collector } = shipper({ persist, user: new UserResolver('required', undefined, 'none') });
    s.enqueue(event(1));
    s.hide();
    assert.equal(collector.requests.length, 0);
    assert.equal(JSON.parse(persist.getItem(`${PENDING_PREFIX}tab-1`)).length, 1);
  });
});
