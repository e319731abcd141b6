// The embedded Pulse stack (`python -m deploy.local`) on free ports, for end-to-end tests.
// PULSE_PYTHON names the interpreter with Pulse installed (make test passes .venv's).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PYTHON = process.env.PULSE_PYTHON ?? join(ROOT, '.venv/bin/python');

export async function freePort() {
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

/** Polls `check` until it returns something truthy; fails early if the stack died. */
export async function waitFor(what, check, timeoutMs, stack) {
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

const ready = url => async () => (await fetch(url)).ok;

export class Stack {
  output = '';
  exited = false;

  /** Starts the stack and waits until collector, worker and sink are ready. */
  async start({ corsOrigins, timeoutMs }) {
    this.ports = { kafka: await freePort(), query: await freePort(), web: await freePort(), metrics: await freePort(), collector: await freePort() };
    this.data = mkdtempSync(join(tmpdir(), 'pulse-module-e2e-'));
    const p = this.ports;
    this.child = spawn(
      PYTHON,
      ['-m', 'deploy.local', '--data-dir', this.data, '--no-traffic', '--partitions', '2',
        '--kafka-port', p.kafka, '--query-port', p.query, '--streams-web-port', p.web,
        '--sink-metrics-port', p.metrics, '--collector-port', p.collector].map(String),
      { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PULSE_CORS_ORIGINS: corsOrigins } },
    );
    for (const stream of [this.child.stdout, this.child.stderr]) stream.on('data', chunk => (this.output += chunk));
    this.child.on('exit', () => (this.exited = true));
    await waitFor('the collector', ready(`http://127.0.0.1:${p.collector}/readyz`), timeoutMs, this);
    await waitFor('the streams worker', ready(`http://127.0.0.1:${p.web}/readyz`), timeoutMs, this);
    await waitFor('the sink', ready(`http://127.0.0.1:${p.metrics}/readyz`), timeoutMs, this);
    this.collector = `http://127.0.0.1:${p.collector}`;
    this.endpoint = `${this.collector}/v1/events`;
    this.token = readFileSync(join(this.data, 'collector-token'), 'utf8').trim();
    this.backendToken = readFileSync(join(this.data, 'backend-token'), 'utf8').trim();
    this.secret = readFileSync(join(this.data, 'user-id-secret'), 'utf8').trim();
    this.queryToken = readFileSync(join(this.data, 'query-token'), 'utf8').trim();
    this.adminToken = readFileSync(join(this.data, 'admin-token'), 'utf8').trim();
  }

  async stop() {
    if (this.child && !this.exited) {
      const exited = new Promise(resolve => this.child.once('exit', resolve));
      process.kill(-this.child.pid, 'SIGTERM');
      const killer = setTimeout(() => process.kill(-this.child.pid, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
    }
    if (this.data) rmSync(this.data, { recursive: true, force: true });
  }

  /** `python -m streams catalog sync ARGS` against this stack's Kafka, with its user id
   * secret; resolves to what it printed, rejects when it fails. */
  async catalogSync(args) {
    const env = { ...process.env, PULSE_KAFKA_BOOTSTRAP: `127.0.0.1:${this.ports.kafka}`, PULSE_USER_ID_SECRET: this.secret };
    const child = spawn(PYTHON, ['-m', 'streams', 'catalog', 'sync', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    for (const stream of [child.stdout, child.stderr]) stream.on('data', chunk => (output += chunk));
    const code = await new Promise(resolve => child.on('exit', resolve));
    if (code !== 0) throw new Error(`catalog sync exited ${code}:\n${output}`);
    return output;
  }

  /** A series of the streams worker's /metrics, or undefined. */
  async workerMetric(series) {
    const text = await (await fetch(`http://127.0.0.1:${this.ports.web}/metrics`)).text();
    const line = text.split('\n').find(l => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  }

  /** Rows of pulse.events matching a WHERE clause, through the sink's query server. */
  async rows(where) {
    const sql = `SELECT toString(event_id) AS id, toUnixTimestamp64Milli(event_time) AS time, instance_id, frontend_system,
        session_id, user_id, user_verified, groups, plugin_id, extension, route_ref, action, subject, value, attributes, entity_ref, search_types
      FROM pulse.events FINAL WHERE ${where} ORDER BY event_time, subject FORMAT JSONEachRow`;
    const response = await fetch(`http://127.0.0.1:${this.ports.query}/?query=${encodeURIComponent(sql)}`, {
      headers: { Authorization: `Bearer ${this.queryToken}` },
    });
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.text()).split('\n').filter(Boolean).map(line => JSON.parse(line));
  }
}
