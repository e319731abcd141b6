// The test app's backend (new backend system, serving the built app) on a free port, and a
// switchable way between its Pulse plugin and Pulse's query port.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '../../backstage-plugin-analytics-module-pulse/test/stack.mjs';

export const APP = fileURLToPath(new URL('../', import.meta.url));

export class Backstage {
  output = '';
  exited = false;

  /** Starts the backend with the app's config plus `config` (an object, written as JSON, which
   * is YAML) and waits until it is ready. */
  async start({ port, config, dir, timeoutMs }) {
    this.port = port;
    this.origin = `http://localhost:${this.port}`;
    const file = join(dir, `app-config.${this.port}.json`);
    const base = { app: { baseUrl: this.origin }, backend: { baseUrl: this.origin, listen: { port: this.port } } };
    writeFileSync(file, JSON.stringify(merge(base, config)));
    this.child = spawn(process.execPath, ['backend/index.js', '--config', 'app-config.yaml', '--config', file], {
      cwd: APP,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'warn' },
    });
    for (const stream of [this.child.stdout, this.child.stderr]) stream.on('data', chunk => (this.output += chunk));
    this.child.on('exit', () => (this.exited = true));
    await waitFor('the Backstage backend', async () => (await fetch(`${this.origin}/.backstage/health/v1/readiness`)).ok, timeoutMs, this);
  }

  async stop() {
    if (!this.child || this.exited) return;
    const exited = new Promise(resolve => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(killer);
  }
}

function merge(a, b) {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = v && typeof v === 'object' && !Array.isArray(v) && a[k] ? merge(a[k], v) : v;
  return out;
}

/** Forwards to `target` (host:port); while `down`, drops every connection, as a dead Pulse would. */
export class Way {
  down = false;

  async start(target) {
    const [host, port] = target.split(':');
    this.server = createServer((req, res) => {
      if (this.down) return req.socket.destroy();
      const upstream = request({ host, port, path: req.url, method: req.method, headers: req.headers }, answer => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => req.socket.destroy());
      req.pipe(upstream);
    });
    this.port = await freePort();
    await new Promise(resolve => this.server.listen(this.port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.port}`;
  }

  stop() {
    this.server?.closeAllConnections();
    this.server?.close();
  }
}
