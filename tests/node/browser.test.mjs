// Headless Chromium end to end: a page served by `php -S` (the "Laravel
// app") through portico over https with the dev CA, loading laravel-echo and
// pusher-js browser builds from npm, with a PHP /broadcasting/auth endpoint.
// Page 1 receives an event published through the REST API (the `pusher` npm
// library), and two pages exchange a whisper on a private channel.
//
// The dev CA is trusted the way a person trusts it on Linux: it is added to
// an NSS database (certutil, libnss3-tools) in a fresh $HOME/.pki/nssdb that
// only this Chromium sees; no certificate error is ignored. A control run
// with an empty NSS database must fail with ERR_CERT_AUTHORITY_INVALID.
//
// Debian's chromium is driven by playwright-core, which never downloads a
// browser. Every wait is bounded.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import PusherServer from 'pusher';
import { BIN, startPortico, within } from './harness.mjs';

const CHROMIUM = process.env.PORTICO_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // --user-data-dir: playwright passes the fresh directory given to launchPersistentContext.
];
const APP = { appId: 'browser-app', key: 'browser-key', secret: 'browser-secret' };
const here = import.meta.dirname;

for (const [what, path] of [['chromium (apt-get install chromium)', CHROMIUM], ['certutil (apt-get install libnss3-tools)', '/usr/bin/certutil']]) {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${what}; ./scripts/test installs it`);
}

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** `php -S` on 127.0.0.1 with the test page, the auth endpoint and the npm browser builds. */
async function startPhp(work) {
  const docroot = join(work, 'docroot');
  mkdirSync(join(docroot, 'vendor'), { recursive: true });
  copyFileSync(join(here, 'browser/index.php'), join(docroot, 'index.php'));
  copyFileSync(join(here, 'node_modules/pusher-js/dist/web/pusher.min.js'), join(docroot, 'vendor/pusher.min.js'));
  copyFileSync(join(here, 'node_modules/laravel-echo/dist/echo.iife.js'), join(docroot, 'vendor/echo.iife.js'));
  const port = await freePort();
  const child = spawn('php', ['-S', `127.0.0.1:${port}`, '-t', docroot, join(here, 'browser/router.php')], {
    env: { ...process.env, PUSHER_APP_KEY: APP.key, PUSHER_APP_SECRET: APP.secret },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((r) => child.on('exit', r));
  // Bounded wait for the port to accept connections.
  await within(10000, (async () => {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`php -S exited:\n${log}`);
      const ok = await new Promise((r) => {
        const c = net.connect(port, '127.0.0.1', () => { c.destroy(); r(true); });
        c.on('error', () => r(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  })(), 'php -S startup');
  return {
    port,
    log: () => log,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await within(5000, exited, 'php exit').catch(() => child.kill('SIGKILL'));
    },
  };
}

/** A fresh $HOME whose NSS database trusts `caPem` (or nothing) as a TLS root. */
function nssHome(work, name, caPem) {
  const home = join(work, name);
  const db = join(home, '.pki/nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password'], { stdio: 'pipe' });
  if (caPem) execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'portico-dev-ca', '-i', caPem], { stdio: 'pipe' });
  return home;
}

/** Debian's chromium in a fresh user-data-dir with HOME pointing at `home`. */
async function launch(work, home) {
  return within(30000, chromium.launchPersistentContext(mkdtempSync(join(work, 'profile-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    env: { ...process.env, HOME: home },
    timeout: 30000,
  }), 'chromium launch');
}

describe('headless Chromium: laravel-echo + pusher-js through portico over https (php -S upstream)', () => {
  let work;
  let php;
  let portico;
  let ca;
  let context;
  let origin;
  const pages = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portico-browser-'));
    const certs = join(work, 'certs');
    execFileSync(BIN, ['certs-dev', '--dir', certs], { stdio: 'ignore' });
    ca = join(certs, 'portico-dev-ca.pem');
    php = await startPhp(work);
    portico = await startPortico(`
[server]
plain = "127.0.0.1:0"
https = "127.0.0.1:0"

[tls]
mode = "dev"
dir = "{{CERTS}}"

[upstream]
url = "http://127.0.0.1:${php.port}"

[[apps]]
id = "${APP.appId}"
key = "${APP.key}"
secret = "${APP.secret}"
client_events = true
`, { certsDir: certs });
    origin = `https://127.0.0.1:${portico.https}`;
    context = await launch(work, nssHome(work, 'home-trusting', ca));
  });

  after(async () => {
    await context?.close().catch(() => {});
    await portico?.stop();
    await php?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Opens the page and waits until Echo is subscribed to both channels. */
  async function open() {
    const page = pages.length === 0 ? (context.pages()[0] ?? await context.newPage()) : await context.newPage();
    pages.push(page);
    const logs = [];
    const sockets = [];
    page.on('websocket', (w) => sockets.push(w.url()));
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    const resp = await page.goto(`${origin}/`, { timeout: 15000 });
    assert.equal(resp.status(), 200);
    const sec = await resp.securityDetails();
    assert.match(sec?.issuer ?? '', /portico/i, `served by the dev CA: ${JSON.stringify(sec)}`);
    await page.waitForFunction(() => window.t?.ready.news && window.t?.ready.chat, null, { timeout: 15000 })
      .catch(async (e) => {
        const t = await page.evaluate(() => JSON.stringify(window.t)).catch(() => '?');
        throw new Error(`${e.message}\npage state: ${t}\nconsole: ${logs.join('\n')}\nphp: ${php.log()}\nportico: ${portico.output()}`);
      });
    // One Pusher socket, over wss through portico's TLS listener.
    assert.equal(sockets.length, 1, `sockets: ${sockets}`);
    assert.ok(sockets[0].startsWith(`wss://127.0.0.1:${portico.https}/app/${APP.key}?protocol=7`), sockets[0]);
    assert.equal(await page.evaluate(() => window.echo.connector.pusher.connection.isUsingTLS()), true);
    return page;
  }

  it('page 1 receives an event published through the REST API', async () => {
    const page = await open();
    const states = await page.evaluate(() => window.t.states);
    assert.ok(states.includes('connected'), `states: ${states}`);
    // The pusher REST library over https, verifying portico's certificate against the dev CA.
    const rest = new PusherServer({
      ...APP,
      host: '127.0.0.1',
      port: String(portico.https),
      useTLS: true,
      agent: new https.Agent({ ca: readFileSync(ca) }),
    });
    const res = await within(10000, rest.trigger('news', 'App\\Events\\OrderShipped', { id: 42, via: 'rest' }), 'REST trigger');
    assert.equal(res.status, 200);
    await page.waitForFunction(() => window.t.events.length > 0, null, { timeout: 10000 });
    assert.deepEqual(await page.evaluate(() => window.t.events), [{ id: 42, via: 'rest' }]);
  });

  it('two pages exchange a whisper on a private channel (auth signed by PHP)', async () => {
    const p1 = pages[0] ?? await open();
    const p2 = await open();
    await p2.evaluate(() => window.whisper({ from: 'page 2' }));
    await p1.waitForFunction(() => window.t.whispers.length > 0, null, { timeout: 10000 });
    assert.deepEqual(await p1.evaluate(() => window.t.whispers), [{ from: 'page 2' }]);
    await p1.evaluate(() => window.whisper({ from: 'page 1' }));
    await p2.waitForFunction(() => window.t.whispers.length > 0, null, { timeout: 10000 });
    assert.deepEqual(await p2.evaluate(() => window.t.whispers), [{ from: 'page 1' }]);
    // Never echoed to the sender.
    assert.deepEqual(await p1.evaluate(() => window.t.whispers), [{ from: 'page 2' }]);
    for (const p of [p1, p2]) assert.deepEqual(await p.evaluate(() => window.t.errors), []);
    // Both private subscriptions were signed by the PHP app behind portico.
    const auths = php.log().match(/broadcasting\/auth signed private-chat for \d+\.\d+/g) ?? [];
    assert.ok(auths.length >= 2, `php log:\n${php.log()}`);
  });

  it('control: without the dev CA in the NSS database the page is refused', async () => {
    const untrusting = await launch(work, nssHome(work, 'home-empty', null));
    try {
      const page = untrusting.pages()[0] ?? await untrusting.newPage();
      await assert.rejects(page.goto(`${origin}/`, { timeout: 15000 }), /ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await untrusting.close().catch(() => {});
    }
  });
});
