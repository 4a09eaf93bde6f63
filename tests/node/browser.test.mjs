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
// browser (the php, NSS and launch helpers are in browser/chromium.mjs).
// Every wait is bounded.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PusherServer from 'pusher';
import { BIN, startPortico, within } from './harness.mjs';
import { launch, nssHome, startPhp } from './browser/chromium.mjs';

const APP = { appId: 'browser-app', key: 'browser-key', secret: 'browser-secret' };

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
    php = await startPhp(work, APP);
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
