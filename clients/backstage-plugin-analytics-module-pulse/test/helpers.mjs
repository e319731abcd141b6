// Fakes for the module's environment: a clock whose timers run when the test advances it,
// storage, a document and window that can be hidden, and a collector that answers as told.

export class FakeClock {
  constructor(start = 1_700_000_000_000) {
    this.time = start;
    this.timers = new Map();
    this.nextId = 1;
  }
  now = () => this.time;
  setTimeout = (callback, ms) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, ms), callback });
    return id;
  };
  clearTimeout = id => {
    this.timers.delete(id);
  };
  random = () => 0.5;
  /** Moves time forward, running due timers in order and letting their promises settle. */
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].callback();
    }
    this.time = end;
    await settle();
  }
}

export async function settle() {
  for (let i = 0; i < 20; i += 1) await new Promise(resolve => setImmediate(resolve));
}

export class MemoryStorage {
  constructor() {
    this.map = new Map();
  }
  get length() {
    return this.map.size;
  }
  key(index) {
    return [...this.map.keys()][index] ?? null;
  }
  getItem(key) {
    return this.map.has(key) ? this.map.get(key) : null;
  }
  setItem(key, value) {
    this.map.set(key, String(value));
  }
  removeItem(key) {
    this.map.delete(key);
  }
}

export class FakeTarget {
  constructor() {
    this.listeners = new Map();
    this.visibilityState = 'visible';
  }
  addEventListener(type, listener) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  removeEventListener(type, listener) {
    this.listeners.set(type, (this.listeners.get(type) ?? []).filter(l => l !== listener));
  }
  dispatch(type) {
    for (const listener of this.listeners.get(type) ?? []) listener();
  }
}

/** A collector stand-in: records requests, answers with the queued replies (default 202). */
export class FakeCollector {
  constructor() {
    this.requests = [];
    this.replies = [];
  }
  reply(...replies) {
    this.replies.push(...replies);
  }
  get events() {
    return this.requests.flatMap(r => JSON.parse(r.body).events);
  }
  send = async request => {
    this.requests.push(request);
    const reply = this.replies.shift() ?? { status: 202 };
    if (reply instanceof Error) throw reply;
    return { rejected: [], ...reply };
  };
  /** The same, as `fetch` (for PulseAnalytics, which builds its own transport). */
  fetch = async (url, init) => {
    this.requests.push({ url, ...init });
    const reply = this.replies.shift() ?? { status: 202 };
    if (reply instanceof Error) throw reply;
    const headers = new Headers(reply.retryAfterMs ? { 'Retry-After': String(reply.retryAfterMs / 1000) } : {});
    return new Response(JSON.stringify(reply.body ?? { accepted: 0, rejected: [] }), { status: reply.status, headers });
  };
}

export const quietLog = { debug() {}, warn() {} };

export function recordingLog() {
  const warnings = [];
  return { warnings, log: { debug() {}, warn: (...args) => warnings.push(args.join(' ')) } };
}

let counter = 0;
export function uuid() {
  counter += 1;
  return `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`;
}

export function event(n, extra = {}) {
  return {
    id: uuid(),
    timestamp: 1_700_000_000_000 + n,
    sessionId: 's1',
    action: 'click',
    subject: `link ${n}`,
    context: { pluginId: 'catalog', extension: 'App', routeRef: 'unknown' },
    ...extra,
  };
}
