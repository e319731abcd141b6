// A real Pulse query port for the tests: `python -m sinks dashboard` over a fresh embedded
// ClickHouse (chDB), seeded through the admin token with rows whose answers are known.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../../..');
const PYTHON = process.env.PULSE_PYTHON ?? join(ROOT, '.venv/bin/python');
export const READ_TOKEN = 'backstage-read-token-0123456789';
export const ADMIN_TOKEN = 'backstage-test-admin-0123456789';

export function freePort() {
  return new Promise((res, rej) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => res(port));
    });
    server.on('error', rej);
  });
}

export class Pulse {
  async start() {
    this.data = mkdtempSync(join(tmpdir(), 'pulse-backend-test-'));
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const env = {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PULSE_'))),
      PULSE_CLICKHOUSE_URL: `chdb://${join(this.data, 'ch')}`,
      PULSE_QUERY_READ_TOKENS: `backstage=${READ_TOKEN}`,
      PULSE_QUERY_ADMIN_TOKEN: ADMIN_TOKEN,
      PULSE_QUERY_MAX_CONCURRENT: '1', // fewer slots than the plugin's requests at once
    };
    const migrated = spawnSync(PYTHON, ['-m', 'sinks', 'migrate'], { cwd: ROOT, env, encoding: 'utf8' });
    if (migrated.status !== 0) throw new Error(`migrate failed: ${migrated.stderr}`);
    this.output = '';
    this.child = spawn(PYTHON, ['-m', 'sinks', 'dashboard', '--port', String(this.port)], { cwd: ROOT, env });
    for (const s of [this.child.stdout, this.child.stderr]) s.on('data', chunk => (this.output += chunk));
    for (let i = 0; i < 600; i += 1) {
      if (await fetch(`${this.url}/ping`).then(r => r.ok, () => false)) return this;
      await new Promise(r => setTimeout(r, 100));
    }
    throw new Error(`Pulse did not start:\n${this.output}`);
  }

  /** Runs a statement as the admin (how the tests seed rows). */
  async admin(sql) {
    const response = await fetch(`${this.url}/`, { method: 'POST', body: sql, headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
  }

  async stop() {
    if (this.child) {
      const exited = new Promise(r => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    if (this.data) rmSync(this.data, { recursive: true, force: true });
  }
}
