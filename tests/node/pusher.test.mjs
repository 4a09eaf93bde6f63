// Real-client tests of portico's Pusher hub: pusher-js, laravel-echo
// (broadcaster 'reverb'), the official `pusher` REST library and raw `ws`,
// against the real binary on ephemeral ports, over the plain and the TLS
// listener. Run with ./run.sh (builds the binary, installs npm deps).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Pusher from 'pusher-js';
import PusherServer from 'pusher';
import Echo from 'laravel-echo';
import { createHash, createHmac } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import net from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, startPortico, webhookSink, rawSocket, data, once, within, sleep } from './harness.mjs';

// wss/https tests verify certificates against portico's dev CA. Node reads
// NODE_EXTRA_CA_CERTS only at start, so unless a runner already made the CA
// (run.sh sets PORTICO_TEST_CERTS), make one now and run this file again
// with it trusted (plus whatever extra CAs were already configured).
if (!process.env.PORTICO_TEST_CERTS) {
  const certs = mkdtempSync(join(tmpdir(), 'portico-ca-'));
  execFileSync(BIN, ['certs-dev', '--dir', certs], { stdio: 'ignore' });
  const bundle = join(certs, 'trust.pem');
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  writeFileSync(bundle, (extra && existsSync(extra) ? `${readFileSync(extra, 'utf8')}\n` : '') + readFileSync(join(certs, 'portico-dev-ca.pem'), 'utf8'));
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: bundle, PORTICO_TEST_CERTS: certs },
  });
  rmSync(certs, { recursive: true, force: true });
  process.exit(r.status ?? 1);
}
if (process.env.PUSHER_LOG) Pusher.logToConsole = true;

const APP = { appId: 'app-id', key: 'app-key', secret: 'app-secret' };

function config(sinkPort) {
  return `
[server]
plain = "127.0.0.1:0"
https = "127.0.0.1:0"

[tls]
mode = "dev"
dir = "{{CERTS}}"

[upstream]
url = "http://127.0.0.1:9"

[pusher]
drain_spread = "500ms"

[[apps]]
id = "app-id"
key = "app-key"
secret = "app-secret"
client_events = true
subscription_count = true
watchlist = true
[[apps.webhooks]]
url = "http://127.0.0.1:${sinkPort}/pusher/webhooks"

[[apps]]
id = "app-2"
key = "key-2"
secret = "secret-2"
max_connections = 1

[[apps]]
id = "app-3"
key = "key-3"
secret = "secret-3"
allowed_origins = ["laravel.com"]
max_message_size = "200"

[[apps]]
id = "app-4"
key = "key-4"
secret = "secret-4"
user_authentication = true
user_authentication_timeout = "1s"

[[apps]]
id = "app-5"
key = "key-5"
secret = "secret-5"
enabled = false

[[apps]]
id = "app-7"
key = "key-7"
secret = "secret-7"
client_events = true
[apps.rate_limit]
max_events = 2
per = "10s"

[[apps]]
id = "app-8"
key = "key-8"
secret = "secret-8"
client_events = true
[apps.rate_limit]
max_events = 1
per = "10s"
terminate = true

[[apps]]
id = "app-9"
key = "key-9"
secret = "secret-9"
max_queue_messages = 100
max_queue_bytes = "2MiB"
max_event_size = "64KiB"

[[routes]]
path = "/reverb/"
to = "pusher"

[[routes]]
path = "/app/"
to = "pusher"

[[routes]]
path = "/apps/"
to = "pusher"

[[apps]]
id = "app-6"
key = "key-6"
secret = "secret-6"
activity_timeout = "1s"
pong_timeout = "1s"

[[apps]]
id = "app-10"
key = "key-10"
secret = "secret-10"
activity_timeout = "120s"
ping_interval = "1s"
pong_timeout = "1s"

[[apps]]
id = "app-11"
key = "key-11"
secret = "secret-11"
[apps.api_rate_limit]
max_requests = 2
per = "60s"
`;
}

let portico;
let sink;
let server;
const clients = [];

function rest(app = APP, tls = false) {
  return new PusherServer({
    ...app,
    host: '127.0.0.1',
    port: String(tls ? portico.https : portico.plain),
    useTLS: tls,
  });
}

/** pusher-js client authorising with the REST library's signer (what Laravel's /broadcasting/auth does). */
function client({ tls = false, user = null, key = APP.key } = {}) {
  const signer = rest();
  const p = new Pusher(key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: portico.plain,
    wssPort: portico.https,
    forceTLS: tls,
    enabledTransports: ['ws', 'wss'],
    disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => {
        if (channelName.startsWith('private-forbidden')) {
          // A forged token: the server must refuse it.
          cb(null, { auth: `${APP.key}:${'0'.repeat(64)}` });
        } else if (channelName.startsWith('presence-')) {
          cb(null, signer.authorizeChannel(socketId, channelName, { user_id: user?.id ?? 'anon', user_info: { name: user?.name ?? 'anon' } }));
        } else {
          cb(null, signer.authorizeChannel(socketId, channelName));
        }
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, cb) => cb(null, signer.authenticateUser(socketId, user)),
    },
  });
  clients.push(p);
  return p;
}

async function connected(p) {
  if (p.connection.state !== 'connected') await once(p.connection, 'connected');
  return p;
}

async function subscribed(p, name) {
  const ch = p.subscribe(name);
  await once(ch, 'pusher:subscription_succeeded');
  return ch;
}

const ws = (key, query = 'protocol=7&client=js&version=8.4.0', headers = {}) =>
  rawSocket(`ws://127.0.0.1:${portico.plain}/app/${key}?${query}`, headers);

before(async () => {
  sink = await webhookSink();
  portico = await startPortico(config(sink.port));
  server = rest();
});

after(async () => {
  for (const c of clients) c.disconnect();
  await portico?.stop();
  await sink?.close();
});

describe('public channels and REST publish', () => {
  for (const tls of [false, true]) {
    it(`pusher-js receives a REST-published event (${tls ? 'wss' : 'ws'})`, async () => {
      const p = await connected(client({ tls }));
      const ch = await subscribed(p, 'news');
      const got = once(ch, 'hello');
      const res = await rest(APP, tls).trigger('news', 'hello', { a: 1 }, { info: 'subscription_count' });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.ok(body.channels.news.subscription_count >= 1);
      assert.deepEqual(await got, { a: 1 });
      p.disconnect();
    });
  }

  it('batch_events, socket_id exclusion and channel queries', async () => {
    const a = await connected(client());
    const b = await connected(client());
    const cha = await subscribed(a, 'batch-a');
    const chb = await subscribed(b, 'batch-a');
    let aGot = 0;
    cha.bind('ev', () => { aGot += 1; });
    const bGot = once(chb, 'ev');
    await server.trigger('batch-a', 'ev', 'x', { socket_id: a.connection.socket_id });
    assert.equal(await bGot, 'x');
    const batch = await server.triggerBatch([{ channel: 'batch-a', name: 'ev2', data: '1' }, { channel: 'other', name: 'ev2', data: '2' }]);
    assert.equal(batch.status, 200);
    await sleep(200);
    assert.equal(aGot, 0, 'excluded socket got nothing');
    const list = await (await server.get({ path: '/channels', params: {} })).json();
    assert.ok('batch-a' in list.channels);
    const info = await (await server.get({ path: '/channels/batch-a', params: { info: 'subscription_count' } })).json();
    assert.deepEqual(info, { occupied: true, subscription_count: 2 });
    a.disconnect();
    b.disconnect();
  });

  it('subscription_count is sent to subscribers', async () => {
    const a = await connected(client());
    const ch = a.subscribe('counted');
    const first = await once(ch, 'pusher:subscription_count');
    assert.equal(first.subscription_count, 1);
    const second = once(ch, 'pusher:subscription_count');
    const b = await connected(client());
    b.subscribe('counted');
    assert.equal((await second).subscription_count, 2);
    a.disconnect();
    b.disconnect();
  });

  it('cache channels replay the last event or send cache_miss', async () => {
    await server.trigger('cache-scores', 'score', { n: 7 });
    const p = await connected(client());
    const ch = p.subscribe('cache-scores');
    assert.deepEqual(await once(ch, 'score'), { n: 7 });
    const empty = p.subscribe('cache-empty');
    await once(empty, 'pusher:cache_miss');
    p.disconnect();
  });
});

describe('private and presence channels', () => {
  for (const tls of [false, true]) it(`authorised private channel, client events not echoed, webhooks signed (${tls ? 'wss' : 'ws'})`, async () => {
    const a = await connected(client({ tls }));
    const b = await connected(client({ tls }));
    const cha = await subscribed(a, 'private-orders');
    const chb = await subscribed(b, 'private-orders');
    let echoed = false;
    cha.bind('client-typing', () => { echoed = true; });
    const got = once(chb, 'client-typing');
    assert.ok(cha.trigger('client-typing', { who: 'a' }));
    assert.deepEqual(await got, { who: 'a' });
    await sleep(200);
    assert.equal(echoed, false);
    await sink.until((r) => r.some((x) => x.body.includes('"client_event"')) && r.some((x) => x.body.includes('"channel_occupied"')));
    for (const hook of sink.received) {
      const wh = server.webhook({ headers: hook.headers, rawBody: hook.body });
      assert.ok(wh.isValid(), 'webhook signature valid');
    }
    a.disconnect();
    b.disconnect();
  });

  it('a refused subscription fires pusher:subscription_error (pusher-js)', async () => {
    const p = await connected(client());
    const ch = p.subscribe('private-forbidden');
    const err = await once(ch, 'pusher:subscription_error');
    assert.equal(err.status, 401);
    assert.equal(err.type, 'AuthError');
    p.disconnect();
  });

  for (const tls of [false, true]) it(`presence members are de-duplicated across tabs (${tls ? 'wss' : 'ws'})`, async () => {
    const roomName = `presence-room-${tls ? 'tls' : 'plain'}`;
    const observer = await connected(client({ tls, user: { id: 'obs', name: 'O' } }));
    const room = await subscribed(observer, roomName);
    const added = [];
    const removed = [];
    room.bind('pusher:member_added', (m) => added.push(m.id));
    room.bind('pusher:member_removed', (m) => removed.push(m.id));
    const tab1 = await connected(client({ tls, user: { id: 'u1', name: 'Ann' } }));
    const tab2 = await connected(client({ tls, user: { id: 'u1', name: 'Ann' } }));
    const r1 = await subscribed(tab1, roomName);
    await subscribed(tab2, roomName);
    assert.equal(r1.members.count, 2);
    assert.equal(r1.members.get('obs').info.name, 'O');
    await sleep(200);
    assert.deepEqual(added, ['u1']);
    const users = await (await server.get({ path: `/channels/${roomName}/users`, params: {} })).json();
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['obs', 'u1']);
    tab1.disconnect();
    await sleep(300);
    assert.deepEqual(removed, [], 'one tab left, user still present');
    tab2.disconnect();
    await within(3000, (async () => { while (removed.length === 0) await sleep(50); })(), 'member_removed');
    assert.deepEqual(removed, ['u1']);
    observer.disconnect();
  });
});

describe('laravel-echo (broadcaster reverb)', () => {
  function echo(tls) {
    const signer = rest();
    return new Echo({
      broadcaster: 'reverb',
      key: APP.key,
      wsHost: '127.0.0.1',
      wsPort: portico.plain,
      wssPort: portico.https,
      forceTLS: tls,
      enabledTransports: ['ws', 'wss'],
      Pusher,
      disableStats: true,
      channelAuthorization: {
        customHandler: ({ socketId, channelName }, cb) => cb(null, channelName.includes('forbidden')
          ? { auth: `${APP.key}:${'0'.repeat(64)}` }
          : signer.authorizeChannel(socketId, channelName)),
      },
    });
  }

  for (const tls of [false, true]) it(`listen, whisper and .error() (${tls ? 'wss' : 'ws'})`, async () => {
    const e1 = echo(tls);
    const e2 = echo(tls);
    try {
      const shipped = new Promise((res) => e1.channel('orders').listen('OrderShipped', res));
      const sub = new Promise((res) => e1.channel('orders').subscribed(res));
      await within(5000, sub, 'echo subscribe');
      await server.trigger('orders', 'App\\Events\\OrderShipped', { id: 5 });
      assert.deepEqual(await within(5000, shipped, 'OrderShipped'), { id: 5 });

      const whisper = new Promise((res) => e2.private('chat').listenForWhisper('typing', res));
      await within(5000, new Promise((res) => e2.private('chat').subscribed(res)), 'e2 private');
      await within(5000, new Promise((res) => e1.private('chat').subscribed(res)), 'e1 private');
      e1.private('chat').whisper('typing', { name: 'Ann' });
      assert.deepEqual(await within(5000, whisper, 'whisper'), { name: 'Ann' });

      const error = new Promise((res) => e1.private('forbidden').error(res));
      const err = await within(5000, error, 'echo .error()');
      assert.equal(err.status, 401);
    } finally {
      e1.disconnect();
      e2.disconnect();
    }
  });
});

describe('user authentication, watchlist, server-to-user, terminate', () => {
  it('signin, watchlist online/offline, sendToUser, terminate_connections', async () => {
    const friend = await connected(client({ user: { id: 'u2' } }));
    friend.signin();
    await sleep(300);
    const me = await connected(client({ user: { id: 'u1', watchlist: ['u2', 'u3'] } }));
    const online = new Promise((res) => me.user.watchlist.bind('online', res));
    const offline = new Promise((res) => me.user.watchlist.bind('offline', res));
    me.signin();
    assert.deepEqual((await within(5000, online, 'watchlist online')).user_ids, ['u2']);
    await within(3000, (async () => { while (!me.user.serverToUserChannel?.subscribed) await sleep(50); })(), 'server-to-user subscribe');
    const direct = new Promise((res) => me.user.bind('note', res));
    await server.sendToUser('u1', 'note', { hi: 1 });
    assert.deepEqual(await within(5000, direct, 'sendToUser'), { hi: 1 });
    friend.disconnect();
    assert.deepEqual((await within(5000, offline, 'watchlist offline')).user_ids, ['u2']);
    const closed = once(me.connection, 'disconnected', 5000).catch(() => null);
    const res = await server.terminateUserConnections('u1');
    assert.equal(res.status, 200);
    await closed;
    assert.notEqual(me.connection.state, 'connected');
    me.disconnect();
  });
});

describe('error codes over raw WebSockets', () => {
  const closeCode = async (sock) => (await within(5000, sock.closed, 'close')).code;

  it('4001 unknown app key', async () => {
    const s = ws('nope');
    const err = await s.next((m) => m.event === 'pusher:error');
    assert.equal(err.data.code, 4001);
    assert.equal(await closeCode(s), 4001);
  });
  it('4003 disabled app', async () => assert.equal(await closeCode(ws('key-5')), 4003));
  it('4008 no protocol', async () => assert.equal(await closeCode(ws(APP.key, 'client=js')), 4008));
  it('4006 bad protocol format', async () => assert.equal(await closeCode(ws(APP.key, 'protocol=x')), 4006));
  it('4007 unsupported protocol', async () => assert.equal(await closeCode(ws(APP.key, 'protocol=3')), 4007));
  it('4009 origin not allowed, allowed origin connects', async () => {
    assert.equal(await closeCode(ws('key-3', undefined, { Origin: 'https://evil.test' })), 4009);
    const ok = ws('key-3', undefined, { Origin: 'https://laravel.com' });
    await ok.next((m) => m.event === 'pusher:connection_established');
    ok.close();
  });
  it('4004 over connection quota', async () => {
    const first = ws('key-2');
    await first.next((m) => m.event === 'pusher:connection_established');
    assert.equal(await closeCode(ws('key-2')), 4004);
    first.close();
  });
  it('1009 message too large', async () => {
    const s = ws('key-3', undefined, { Origin: 'https://laravel.com' });
    await s.next((m) => m.event === 'pusher:connection_established');
    s.send({ event: 'pusher:ping', data: 'x'.repeat(500) });
    assert.equal(await closeCode(s), 1009);
  });
  it('4009 sign-in timeout', async () => {
    const s = ws('key-4');
    await s.next((m) => m.event === 'pusher:connection_established');
    assert.equal(await closeCode(s), 4009);
  });
  it('pusher:ping after inactivity, 4201 without pong', async () => {
    const s = ws('key-6');
    const est = await s.next((m) => m.event === 'pusher:connection_established');
    assert.equal(data(est).activity_timeout, 1);
    await s.next((m) => m.event === 'pusher:ping', 3000);
    assert.equal(await closeCode(s), 4201);
  });
  it('a pong keeps the connection', async () => {
    const s = ws('key-6');
    await s.next((m) => m.event === 'pusher:connection_established');
    for (let i = 0; i < 2; i += 1) {
      await s.next((m) => m.event === 'pusher:ping', 3000);
      s.send({ event: 'pusher:pong', data: {} });
    }
    assert.equal(s.ws.readyState, 1);
    s.close();
  });
  it('ping_interval: server pings after client silence, apart from the announced activity_timeout', async () => {
    const s = ws('key-10');
    const est = await s.next((m) => m.event === 'pusher:connection_established');
    const t0 = Date.now();
    // Clients are told 120 s (they ping the server after that) ...
    assert.equal(data(est).activity_timeout, 120);
    // ... while the server pings after 1 s of client silence.
    await s.next((m) => m.event === 'pusher:ping', 3000);
    assert.ok(Date.now() - t0 >= 800, `pinged after ${Date.now() - t0} ms`);
    // Any client message is activity: a client ping is answered and resets the timer.
    s.send({ event: 'pusher:ping', data: {} });
    await s.next((m) => m.event === 'pusher:pong', 3000);
    await s.next((m) => m.event === 'pusher:ping', 3000);
    // No reply within pong_timeout: 4201.
    assert.equal(await closeCode(s), 4201);
  });
  it('errors that keep the socket open', async () => {
    const s = ws(APP.key);
    await s.next((m) => m.event === 'pusher:connection_established');
    s.send('not json');
    assert.equal((await s.next((m) => m.event === 'pusher:error')).data.code, 4200);
    s.send({ event: 'pusher:subscribe', data: { channel: 'public-x' } });
    await s.next((m) => m.event === 'pusher_internal:subscription_succeeded');
    s.send({ event: 'client-x', channel: 'public-x', data: {} });
    assert.equal((await s.next((m) => m.event === 'pusher:error')).data.code, null);
    s.send({ event: 'pusher:subscribe', data: { channel: 'bad name' } });
    const se = await s.next((m) => m.event === 'pusher:subscription_error');
    assert.equal(se.data.status, 400);
    s.send({ event: 'pusher:ping', data: {} });
    await s.next((m) => m.event === 'pusher:pong');
    assert.equal(s.ws.readyState, 1);
    s.close();
  });
});

describe('more channel rules', () => {
  it('client-event rate limit: 4301 error, or close with terminate', async () => {
    const signer = rest({ appId: 'app-7', key: 'key-7', secret: 'secret-7' });
    const s = ws('key-7');
    const est = data(await s.next((m) => m.event === 'pusher:connection_established'));
    s.send({ event: 'pusher:subscribe', data: { channel: 'private-r', ...signer.authorizeChannel(est.socket_id, 'private-r') } });
    await s.next((m) => m.event === 'pusher_internal:subscription_succeeded');
    for (let i = 0; i < 3; i += 1) s.send({ event: 'client-x', channel: 'private-r', data: { i } });
    assert.equal((await s.next((m) => m.event === 'pusher:error')).data.code, 4301);
    assert.equal(s.ws.readyState, 1);
    s.close();

    const signer8 = rest({ appId: 'app-8', key: 'key-8', secret: 'secret-8' });
    const t = ws('key-8');
    const est8 = data(await t.next((m) => m.event === 'pusher:connection_established'));
    t.send({ event: 'pusher:subscribe', data: { channel: 'private-r', ...signer8.authorizeChannel(est8.socket_id, 'private-r') } });
    await t.next((m) => m.event === 'pusher_internal:subscription_succeeded');
    for (let i = 0; i < 2; i += 1) t.send({ event: 'client-x', channel: 'private-r', data: { i } });
    assert.equal((await within(5000, t.closed, 'close')).code, 4301);
  });

  it('encrypted channels are relayed and refuse client events', async () => {
    const masterKey = Buffer.alloc(32, 7).toString('base64');
    const enc = new PusherServer({ ...APP, host: '127.0.0.1', port: String(portico.plain), useTLS: false, encryptionMasterKeyBase64: masterKey });
    const p = new Pusher(APP.key, {
      cluster: 'mt1', wsHost: '127.0.0.1', wsPort: portico.plain, forceTLS: false, enabledTransports: ['ws'],
      channelAuthorization: { customHandler: ({ socketId, channelName }, cb) => cb(null, enc.authorizeChannel(socketId, channelName)) },
    });
    clients.push(p);
    await connected(p);
    const ch = await subscribed(p, 'private-encrypted-vault');
    const got = once(ch, 'secret');
    await enc.trigger('private-encrypted-vault', 'secret', { pin: 1234 });
    assert.deepEqual(await got, { pin: 1234 });
    const s = ws(APP.key);
    const est = data(await s.next((m) => m.event === 'pusher:connection_established'));
    s.send({ event: 'pusher:subscribe', data: { channel: 'private-encrypted-vault', auth: enc.authorizeChannel(est.socket_id, 'private-encrypted-vault').auth } });
    await s.next((m) => m.event === 'pusher_internal:subscription_succeeded');
    s.send({ event: 'client-x', channel: 'private-encrypted-vault', data: {} });
    await s.next((m) => m.event === 'pusher:error');
    s.close();
    p.disconnect();
  });

  it('member webhooks and presence info over REST', async () => {
    const a = await connected(client({ user: { id: 'hook-user', name: 'H' } }));
    await subscribed(a, 'presence-hooks');
    await sink.until((r) => r.some((x) => x.body.includes('"member_added"') && x.body.includes('hook-user')));
    a.disconnect();
    await sink.until((r) => r.some((x) => x.body.includes('"member_removed"') && x.body.includes('hook-user')));
    await sink.until((r) => r.some((x) => x.body.includes('"channel_vacated"') && x.body.includes('presence-hooks')));
  });

  it('a route prefix (/reverb/) keeps WebSockets and REST signatures working', async () => {
    const p = new Pusher(APP.key, { cluster: 'mt1', wsHost: '127.0.0.1', wsPort: portico.plain, wsPath: '/reverb', forceTLS: false, enabledTransports: ['ws'] });
    clients.push(p);
    await connected(p);
    const ch = await subscribed(p, 'prefixed');
    const got = once(ch, 'ev');
    // Sign the way pusher-php-server does: the path without the prefix.
    const body = JSON.stringify({ name: 'ev', data: '"hi"', channel: 'prefixed' });
    const params = { auth_key: APP.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0', body_md5: createHash('md5').update(body).digest('hex') };
    const q = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
    const sig = createHmac('sha256', APP.secret).update(`POST\n/apps/${APP.appId}/events\n${q}`).digest('hex');
    const r = await fetch(`http://127.0.0.1:${portico.plain}/reverb/apps/${APP.appId}/events?${q}&auth_signature=${sig}`, {
      method: 'POST', body, headers: { 'content-type': 'application/json' },
    });
    assert.equal(r.status, 200, await r.text());
    assert.equal(await got, 'hi');
    p.disconnect();
  });
});

describe('backpressure', () => {
  it('a socket that stops reading is evicted; the others get everything', async () => {
    const app9 = { appId: 'app-9', key: 'key-9', secret: 'secret-9' };
    const api = rest(app9);
    const fast = ws('key-9');
    await fast.next((m) => m.event === 'pusher:connection_established');
    fast.send({ event: 'pusher:subscribe', data: { channel: 'firehose' } });
    await fast.next((m) => m.event === 'pusher_internal:subscription_succeeded');

    // The slow client: a raw TCP socket that upgrades, subscribes, then never reads.
    const slow = net.connect(portico.plain, '127.0.0.1');
    await new Promise((r) => slow.once('connect', r));
    slow.write('GET /app/key-9?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
      + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await within(5000, new Promise((r) => slow.once('data', r)), 'slow handshake');
    const payload = Buffer.from(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'firehose' } }));
    const mask = Buffer.from([1, 2, 3, 4]);
    slow.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4])]));
    await sleep(200);
    slow.pause();
    const subs = async () => (await (await api.get({ path: '/channels/firehose', params: { info: 'subscription_count' } })).json()).subscription_count ?? 0;
    assert.equal(await subs(), 2);

    const chunk = 'x'.repeat(60000);
    let fastGot = 0;
    const total = 80 * 10;
    for (let i = 0; i < 80; i += 1) {
      const batch = Array.from({ length: 10 }, (_, j) => ({ channel: 'firehose', name: 'blob', data: `${i * 10 + j}:${chunk}` }));
      await api.triggerBatch(batch);
      // Pace the publisher by the reading client: it keeps up, the other
      // one does not read at all.
      await within(5000, (async () => {
        for (;;) {
          while (fast.messages.length) { if (fast.messages.shift().event === 'blob') fastGot += 1; }
          if (fastGot >= (i + 1) * 10) return;
          await sleep(5);
        }
      })(), `fast client batch ${i}`);
    }
    await within(10000, (async () => { while ((await subs()) !== 1) await sleep(100); })(), 'slow consumer evicted');
    await within(10000, (async () => {
      for (;;) {
        while (fast.messages.length) { if (fast.messages.shift().event === 'blob') fastGot += 1; }
        if (fastGot >= total) return;
        await sleep(50);
      }
    })(), `fast client got ${fastGot}/${total}`);
    assert.equal(fastGot, total);
    assert.equal(fast.ws.readyState, 1);
    slow.destroy();
    fast.close();
  });
});

describe('REST errors', () => {
  const status = async (p) => {
    try { const r = await p; return r.status; } catch (e) { return e.status; }
  };
  it('401 bad secret, 404 unknown app, 413 too large, 400 too many channels', async () => {
    assert.equal(await status(rest({ ...APP, secret: 'wrong' }).trigger('a', 'e', 'x')), 401);
    assert.equal(await status(rest({ ...APP, appId: 'nope' }).trigger('a', 'e', 'x')), 404);
    assert.equal(await status(server.trigger('a', 'e', 'x'.repeat(20000))), 413);
    const many = Array.from({ length: 101 }, (_, i) => `c${i}`);
    const r = await fetch(`http://127.0.0.1:${portico.plain}/apps/app-id/events`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 401, 'unsigned');
    assert.equal((await r.json()).error.length > 0, true);
    assert.equal(await status(server.trigger(many.slice(0, 100), 'e', 'x')), 200);
    // The library refuses >100 channels itself, so sign a raw request.
    const body = JSON.stringify({ name: 'e', data: 'x', channels: many });
    const signed = await status(server.post({ path: '/events', body: JSON.parse(body) }));
    assert.equal(signed, 400);
  });
  it('429 over an app\'s api_rate_limit, JSON error and Retry-After; other apps unaffected', async () => {
    const app11 = { appId: 'app-11', key: 'key-11', secret: 'secret-11' };
    const limited = rest(app11);
    for (let i = 0; i < 2; i += 1) assert.equal(await status(limited.trigger('a', 'e', 'x')), 200);
    let err;
    try { await limited.trigger('a', 'e', 'x'); } catch (e) { err = e; }
    assert.equal(err?.status, 429);
    assert.match(JSON.parse(err.body).error, /Too many requests/);
    // A correctly signed raw GET shows Retry-After.
    const path = '/apps/app-11/channels';
    const q = `auth_key=key-11&auth_timestamp=${Math.floor(Date.now() / 1000)}&auth_version=1.0`;
    const sig = createHmac('sha256', app11.secret).update(`GET\n${path}\n${q}`).digest('hex');
    const r = await fetch(`http://127.0.0.1:${portico.plain}${path}?${q}&auth_signature=${sig}`);
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('content-type'), 'application/json');
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.match((await r.json()).error, /Too many requests/);
    // Forged calls are refused (401) without spending anything; other apps are not limited.
    assert.equal(await status(rest({ ...app11, secret: 'wrong' }).trigger('a', 'e', 'x')), 401);
    assert.equal(await status(server.trigger('a', 'e', 'x')), 200);
  });
});

describe('shutdown', () => {
  it('closes sockets with 4200 spread over the drain window', async () => {
    const own = await startPortico(`[server]\nplain = "127.0.0.1:0"\n[tls]\ndir = "{{CERTS}}"\n[upstream]\nurl = "http://127.0.0.1:9"\n[pusher]\ndrain_spread = "1s"\n[[apps]]\nid = "1"\nkey = "k"\nsecret = "s"\n`);
    const socks = [];
    for (let i = 0; i < 5; i += 1) {
      const s = rawSocket(`ws://127.0.0.1:${own.plain}/app/k?protocol=7`);
      await s.next((m) => m.event === 'pusher:connection_established');
      socks.push(s);
    }
    own.child.kill('SIGTERM');
    const codes = await within(10000, Promise.all(socks.map((s) => s.closed)), 'drain closes');
    assert.deepEqual(codes.map((c) => c.code), [4200, 4200, 4200, 4200, 4200]);
    await own.stop();
  });
});
