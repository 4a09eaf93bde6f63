// Real-client tests of portico's Supabase Realtime front: @supabase/realtime-js
// with vsn 1.0.0 and 2.0.0 against the real binary on ephemeral ports.
// Every wait is bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RealtimeClient } from '@supabase/realtime-js';
import { startPortico, within, sleep } from './harness.mjs';
import { SECRET, jwt } from './supabase_jwt.mjs';

const now = () => Math.floor(Date.now() / 1000);
const ANON = jwt({ role: 'anon', exp: now() + 3600 });

const CONFIG = `
[server]
plain = "127.0.0.1:0"
[tls]
mode = "off"
[log]
level = "warn"
[supabase]
jwt_secrets = ["${SECRET}"]
api_keys = { sb_publishable_node = "anon" }
[supabase.limits]
join_error_delay = "0s"
handshake_error_delay = "0s"
[[supabase.rules]]
topic = "user:{sub}"
roles = ["authenticated"]
broadcast = ["read", "write"]
presence = ["read", "write"]
`;

let portico;
let base;
const clients = [];
before(async () => {
  portico = await startPortico(CONFIG);
  base = `http://127.0.0.1:${portico.plain}`;
});
after(async () => {
  for (const c of clients) c.disconnect();
  await portico?.stop();
});

function client(vsn, opts = {}) {
  const c = new RealtimeClient(`ws://127.0.0.1:${portico.plain}/realtime/v1`, {
    transport: WebSocket,
    vsn,
    params: { apikey: opts.apikey ?? ANON },
    ...(opts.accessToken ? { accessToken: opts.accessToken } : {}),
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 25000,
  });
  clients.push(c);
  return c;
}

function subscribe(channel) {
  return within(8000, new Promise((res, rej) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') res(status);
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') rej(Object.assign(new Error(`${status}: ${err?.message ?? err}`), { status, err }));
    });
  }), `subscribe ${channel.topic}`);
}

function nextBroadcast(channel, event) {
  return new Promise((res) => channel.on('broadcast', { event }, (m) => res(m)));
}

for (const [sv, rv] of [['2.0.0', '1.0.0'], ['1.0.0', '2.0.0'], ['2.0.0', '2.0.0']]) {
  test(`broadcast ${sv} -> ${rv} with ack and self`, async () => {
    const topic = `room-${sv}-${rv}`;
    const a = client(sv).channel(topic, { config: { broadcast: { self: true, ack: true } } });
    const b = client(rv).channel(topic);
    const selfMsg = nextBroadcast(a, 'cursor');
    const got = nextBroadcast(b, 'cursor');
    await subscribe(a);
    await subscribe(b);
    const res = await within(5000, a.send({ type: 'broadcast', event: 'cursor', payload: { x: 1, s: 'é' } }), 'send');
    assert.equal(res, 'ok');
    const m = await within(5000, got, 'delivery');
    assert.deepEqual(m.payload, { x: 1, s: 'é' });
    assert.equal(m.event, 'cursor');
    const s = await within(5000, selfMsg, 'self delivery');
    assert.deepEqual(s.payload, { x: 1, s: 'é' });
  });
}

test('binary payload reaches v2 subscribers only', async () => {
  const topic = 'bin-room';
  const a = client('2.0.0').channel(topic, { config: { broadcast: { ack: true } } });
  const v2 = client('2.0.0').channel(topic);
  const v1 = client('1.0.0').channel(topic);
  const got2 = nextBroadcast(v2, 'blob');
  let v1Got = false;
  v1.on('broadcast', { event: 'blob' }, () => { v1Got = true; });
  await subscribe(a); await subscribe(v2); await subscribe(v1);
  const buf = new Uint8Array([1, 4, 255]).buffer;
  assert.equal(await within(5000, a.send({ type: 'broadcast', event: 'blob', payload: buf }), 'send'), 'ok');
  const m = await within(5000, got2, 'binary delivery');
  assert.deepEqual([...new Uint8Array(m.payload)], [1, 4, 255]);
  await sleep(300);
  assert.equal(v1Got, false);
});

test('presence join, sync and leave across vsns', async () => {
  const topic = 'presence-room';
  const a = client('2.0.0').channel(topic, { config: { presence: { key: 'alice' } } });
  const bc = client('1.0.0');
  const b = bc.channel(topic, { config: { presence: { key: 'bob' } } });
  const joined = new Promise((res) => a.on('presence', { event: 'join' }, ({ key }) => { if (key === 'bob') res(); }));
  const left = new Promise((res) => a.on('presence', { event: 'leave' }, ({ key }) => { if (key === 'bob') res(); }));
  await subscribe(a);
  await subscribe(b);
  assert.equal(await within(5000, a.track({ name: 'Alice' }), 'track a'), 'ok');
  assert.equal(await within(5000, b.track({ name: 'Bob' }), 'track b'), 'ok');
  await within(5000, joined, 'presence join');
  await within(5000, (async () => {
    for (;;) {
      const st = b.presenceState();
      if (st.alice && st.bob) return st;
      await sleep(50);
    }
  })(), 'presence sync');
  assert.equal(a.presenceState().bob[0].name, 'Bob');
  await within(5000, b.untrack(), 'untrack');
  await within(5000, left, 'presence leave');
});

test('private channels: allowed by the rules, denied otherwise', async () => {
  const u1 = jwt({ role: 'authenticated', sub: 'u1', exp: now() + 3600 });
  const c = client('2.0.0', { accessToken: async () => u1 });
  await c.setAuth();
  await subscribe(c.channel('user:u1', { config: { private: true } }));
  await assert.rejects(subscribe(c.channel('user:u2', { config: { private: true } })), (e) => {
    assert.equal(e.status, 'CHANNEL_ERROR');
    assert.match(String(e.message), /Unauthorized: You do not have permissions to read from this Channel topic: user:u2/);
    return true;
  });
});

test('postgres_changes is refused with a readable CHANNEL_ERROR', async () => {
  const ch = client('2.0.0').channel('db').on('postgres_changes', { event: '*', schema: 'public', table: 't' }, () => {});
  await assert.rejects(subscribe(ch), (e) => {
    assert.equal(e.status, 'CHANNEL_ERROR');
    assert.match(String(e.message), /PostgresChangesUnsupported/);
    return true;
  });
});

test('REST: httpSend (per-event) and the batch endpoint reach subscribers', async () => {
  const sub = client('1.0.0').channel('rest-room');
  const first = nextBroadcast(sub, 'one');
  await subscribe(sub);
  const sender = client('2.0.0').channel('rest-room');
  assert.deepEqual(await within(5000, sender.httpSend('one', { n: 1 }), 'httpSend'), { success: true });
  assert.deepEqual((await within(5000, first, 'httpSend delivery')).payload, { n: 1 });

  const second = nextBroadcast(sub, 'two');
  const r = await fetch(`${base}/realtime/v1/api/broadcast`, {
    method: 'POST',
    headers: { apikey: ANON, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ topic: 'rest-room', event: 'two', payload: { n: 2 } }] }),
  });
  assert.equal(r.status, 202);
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.deepEqual((await within(5000, second, 'batch delivery')).payload, { n: 2 });

  const bad = await fetch(`${base}/realtime/v1/api/broadcast`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(bad.status, 401);
  assert.deepEqual(await bad.json(), { message: 'Unauthorized' });
  const media = await fetch(`${base}/realtime/v1/api/broadcast/rest-room/events/x`, { method: 'POST', headers: { apikey: ANON, 'content-type': 'text/plain' }, body: 'hi' });
  assert.equal(media.status, 415);
});

test('token refresh keeps the channel; expiry sends system then closes', async () => {
  let tok = jwt({ role: 'anon', exp: now() + 3 });
  const c = client('2.0.0', { accessToken: async () => tok });
  await c.setAuth();
  const ch = c.channel('expiring');
  const system = new Promise((res) => ch.on('system', {}, (m) => res(m)));
  await subscribe(ch);
  const m = await within(8000, system, 'expiry system message');
  assert.match(m.message, /Token has expired/);
  await within(5000, (async () => { while (ch.state !== 'closed') await sleep(50); })(), 'channel closed');

  // A refreshed token before expiry keeps a second channel alive.
  tok = jwt({ role: 'anon', exp: now() + 3 });
  await c.setAuth();
  const ch2 = c.channel('refreshed');
  let sys2 = false;
  ch2.on('system', {}, () => { sys2 = true; });
  await subscribe(ch2);
  tok = jwt({ role: 'anon', exp: now() + 3600 });
  await c.setAuth();
  await sleep(4500);
  assert.equal(sys2, false);
});

test('handshake rejections are HTTP errors with a reason', async () => {
  const r = await fetch(`${base}/realtime/v1/websocket?apikey=sb_publishable_nope&vsn=2.0.0`, {
    headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
  }).catch((e) => e);
  // fetch refuses upgrade headers in some Node versions; fall back to ws.
  const status = await new Promise((res) => {
    const ws = new WebSocket(`ws://127.0.0.1:${portico.plain}/realtime/v1/websocket?apikey=sb_publishable_nope&vsn=2.0.0`);
    ws.on('unexpected-response', (_req, resp) => {
      let body = '';
      resp.on('data', (d) => { body += d; });
      resp.on('end', () => res({ code: resp.statusCode, body }));
    });
    ws.on('open', () => res({ code: 101 }));
    ws.on('error', () => {});
  });
  void r;
  assert.equal(status.code, 401);
  assert.match(JSON.parse(status.body).error, /Unknown API key/);
  const plain = await fetch(`${base}/realtime/v1/websocket?apikey=${ANON}`);
  assert.equal(plain.status, 426);
});

test('postgres_changes spliced to a second portico acting as the upstream', async () => {
  const upstream = await startPortico(CONFIG.replace('[supabase.limits]', 'postgres_changes = "accept"\n[supabase.limits]'));
  const edge = await startPortico(CONFIG.replace('[supabase.limits]', `upstream = "ws://127.0.0.1:${upstream.plain}/realtime/v1"\n[supabase.limits]`));
  const c = new RealtimeClient(`ws://127.0.0.1:${edge.plain}/realtime/v1`, { transport: WebSocket, params: { apikey: ANON } });
  try {
    const ch = c.channel('db').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'todos' }, () => {});
    const got = nextBroadcast(ch, 'from-upstream');
    const statuses = [];
    await within(8000, new Promise((res) => ch.subscribe((s) => { statuses.push(s); if (s === 'SUBSCRIBED') res(); })), 'spliced subscribe');
    const sender = new RealtimeClient(`ws://127.0.0.1:${upstream.plain}/realtime/v1`, { transport: WebSocket, params: { apikey: ANON } });
    assert.deepEqual(await within(5000, sender.channel('db').httpSend('from-upstream', { ok: 1 }), 'httpSend upstream'), { success: true });
    assert.deepEqual((await within(5000, got, 'relayed delivery')).payload, { ok: 1 });
    await upstream.stop();
    await within(8000, (async () => { while (!statuses.includes('CHANNEL_ERROR')) await sleep(50); })(), 'phx_error after the upstream stops');
  } finally {
    c.disconnect();
    await edge.stop();
    await upstream.stop().catch(() => {});
  }
});
