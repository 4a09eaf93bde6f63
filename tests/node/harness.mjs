// Test harness: starts the real portico binary on ephemeral ports with a
// generated config, a webhook sink, and small raw-WebSocket helpers.
// Every wait is bounded in time.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import http from 'node:http';
import WebSocket from 'ws';

export const BIN = process.env.PORTICO_BIN
  ?? resolve(process.env.CARGO_TARGET_DIR ?? resolve(import.meta.dirname, '../../target'), 'debug/portico');

/** Resolves with `value` or rejects after `ms`. */
export function within(ms, promise, what = 'operation') {
  let t;
  const timeout = new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts portico with `config` (TOML text, `{{CERTS}}` replaced by a temp dir). */
export async function startPortico(config, { certsDir } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'portico-node-'));
  const certs = certsDir ?? process.env.PORTICO_TEST_CERTS ?? join(dir, "certs");
  const path = join(dir, 'portico.toml');
  writeFileSync(path, config.replaceAll('{{CERTS}}', certs));
  const child = spawn(BIN, ['run', '--config', path], {
    cwd: dir,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ready = new Promise((res, rej) => {
    const onData = (d) => {
      out += d.toString();
      const plain = out.match(/plain\s+http:\/\/localhost:(\d+)/);
      const https = out.match(/https\s+https:\/\/localhost:(\d+)/);
      const wantHttps = /\nhttps\s*=/.test(config);
      if (plain && (!wantHttps || https)) res({ plain: Number(plain[1]), https: https ? Number(https[1]) : null });
    };
    child.stderr.on('data', onData);
    child.stdout.on('data', onData);
    child.on('exit', (code) => rej(new Error(`portico exited with ${code}:\n${out}`)));
  });
  const ports = await within(15000, ready, 'portico startup');
  const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return {
    ...ports,
    certs,
    child,
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await within(20000, exited, 'portico exit').catch(() => child.kill('SIGKILL'));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An HTTP server on 127.0.0.1:0 recording webhook POSTs. */
export async function webhookSink() {
  const received = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200).end('ok');
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    received,
    /** Waits until `pred(received)` holds. */
    async until(pred, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!pred(received)) {
        if (Date.now() > deadline) throw new Error(`webhook not received; got ${JSON.stringify(received.map((r) => r.body))}`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 100); });
      }
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

/** A raw WebSocket that records every message and the close code. */
export function rawSocket(url, headers = {}) {
  const ws = new WebSocket(url, { headers });
  const messages = [];
  const waiters = [];
  ws.on('message', (d) => {
    messages.push(JSON.parse(d.toString()));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
  ws.on('error', () => {});
  return {
    ws,
    messages,
    closed,
    send: (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)),
    /** Waits for a message matching `pred` (bounded). */
    async next(pred, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = messages.find(pred);
        if (m) { messages.splice(messages.indexOf(m), 1); return m; }
        if (Date.now() > deadline) throw new Error(`no matching message; got ${JSON.stringify(messages)}`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 100); });
      }
    },
    close: () => ws.close(),
  };
}

/** Parses `data` the way pusher-js does. */
export function data(msg) {
  if (typeof msg.data !== 'string') return msg.data;
  try { return JSON.parse(msg.data); } catch { return msg.data; }
}

/** Waits for one event on a pusher-js/Echo-style binder. */
export function once(target, event, ms = 5000) {
  return within(ms, new Promise((res) => target.bind(event, res)), `event ${event}`);
}
