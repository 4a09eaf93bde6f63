// The Pusher ↔ Supabase mapping ([supabase] pusher_app): a Laravel-style
// Pusher REST publish reaches realtime-js subscribers, and a realtime-js
// broadcast reaches pusher-js subscribers. Every wait is bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import Pusher from 'pusher-js';
import PusherServer from 'pusher';
import { RealtimeClient } from '@supabase/realtime-js';
import { startPortico, within } from './harness.mjs';
import { SECRET, jwt } from './supabase_jwt.mjs';
const APP = { appId: 'app-id', key: 'app-key', secret: 'app-secret' };
const CONFIG = `
[server]
plain = "127.0.0.1:0"
[tls]
mode = "off"
[log]
level = "warn"
[[apps]]
id = "app-id"
key = "app-key"
secret = "app-secret"
[supabase]
jwt_secrets = ["${SECRET}"]
pusher_app = "app-id"
[supabase.limits]
join_error_delay = "0s"
handshake_error_delay = "0s"
`;

let portico;
const closers = [];
before(async () => { portico = await startPortico(CONFIG); });
after(async () => {
  for (const c of closers) c();
  await portico?.stop();
});

function realtime() {
  const anon = jwt({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3600 });
  const c = new RealtimeClient(`ws://127.0.0.1:${portico.plain}/realtime/v1`, { transport: WebSocket, params: { apikey: anon } });
  closers.push(() => c.disconnect());
  return c;
}

function pusherClient() {
  const p = new Pusher(APP.key, {
    cluster: 'mt1', wsHost: '127.0.0.1', wsPort: portico.plain, forceTLS: false,
    enabledTransports: ['ws'], disableStats: true,
  });
  closers.push(() => p.disconnect());
  return p;
}

const subscribed = (ch) => within(8000, new Promise((res, rej) => ch.subscribe((s, e) => {
  if (s === 'SUBSCRIBED') res(); else if (s === 'CHANNEL_ERROR' || s === 'TIMED_OUT') rej(new Error(`${s} ${e?.message}`));
})), 'subscribe');

test('Pusher REST event reaches a realtime-js subscriber', async () => {
  const ch = realtime().channel('orders');
  const got = new Promise((res) => ch.on('broadcast', { event: 'OrderCreated' }, res));
  await subscribed(ch);
  const server = new PusherServer({ ...APP, host: '127.0.0.1', port: String(portico.plain), useTLS: false });
  const r = await server.trigger('orders', 'OrderCreated', { id: 1, total: 9.5 });
  assert.equal(r.status, 200);
  const m = await within(5000, got, 'bridged delivery');
  assert.deepEqual(m.payload, { id: 1, total: 9.5 });
});

test('realtime-js broadcast reaches a pusher-js subscriber', async () => {
  const p = pusherClient();
  const pch = p.subscribe('shipments');
  await within(8000, new Promise((res) => pch.bind('pusher:subscription_succeeded', res)), 'pusher subscribe');
  const got = new Promise((res) => pch.bind('Shipped', res));
  const ch = realtime().channel('shipments', { config: { broadcast: { ack: true } } });
  await subscribed(ch);
  assert.equal(await within(5000, ch.send({ type: 'broadcast', event: 'Shipped', payload: { id: 2 } }), 'send'), 'ok');
  assert.deepEqual(await within(5000, got, 'bridged delivery'), { id: 2 });
});
