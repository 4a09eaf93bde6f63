// The diagnostics page (`/.portico/`) in headless Chromium: the real portico
// binary over https with its dev CA (trusted through a fresh NSS database),
// `php -S` as the Laravel app whose /broadcasting/auth signs with the app
// secret (browser/router.php), and the Supabase front on with an anon key.
// Every check on the page must turn green; a second run with a wrong key must
// show the WebSocket check red with its fix. Each run leaves a screenshot in
// tests/node/out/ (gitignored) and prints its path. Every wait is bounded.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, startPortico } from './harness.mjs';
import { launch, nssHome, startPhp } from './browser/chromium.mjs';

const APP = { appId: 'diag-app', key: 'diag-key', secret: 'diag-secret' };
const OUT = join(import.meta.dirname, 'out');
const CHECKS = ['tls', 'websocket', 'subscribe', 'publish', 'private', 'supabase'];

describe('the diagnostics page in headless Chromium (portico binary, php -S app)', () => {
  let work;
  let php;
  let portico;
  let context;
  let origin;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portico-diag-'));
    mkdirSync(OUT, { recursive: true });
    const certs = join(work, 'certs');
    execFileSync(BIN, ['certs-dev', '--dir', certs], { stdio: 'ignore' });
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

[supabase]
api_keys = { sb_publishable_diag = "anon" }
`, { certsDir: certs });
    origin = `https://127.0.0.1:${portico.https}`;
    context = await launch(work, nssHome(work, 'home', join(certs, 'portico-dev-ca.pem')));
  });

  after(async () => {
    await context?.close().catch(() => {});
    await portico?.stop();
    await php?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Opens the page at `query`, waits (bounded) for every check to finish, screenshots it. */
  async function run(query, shot) {
    const page = await context.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    const resp = await page.goto(`${origin}/.portico/${query}`, { timeout: 15000 });
    assert.equal(resp.status(), 200);
    await page.waitForFunction(() => window.diag?.done, null, { timeout: 30000 }).catch(async (e) => {
      const state = await page.evaluate(() => JSON.stringify(window.diag)).catch(() => '?');
      throw new Error(`${e.message}\npage state: ${state}\nconsole: ${logs.join('\n')}\nportico: ${portico.output()}`);
    });
    const path = join(OUT, shot);
    await page.screenshot({ path, fullPage: true });
    console.log(`screenshot: ${path}`);
    const results = await page.evaluate(() => window.diag.results);
    await page.close();
    return { results, logs };
  }

  it('every check turns green', async () => {
    const { results, logs } = await run('', 'diagnostics.png');
    for (const id of CHECKS) {
      assert.equal(results[id]?.state, 'ok', `${id}: ${JSON.stringify(results[id])}\nconsole: ${logs.join('\n')}\nphp: ${php.log()}`);
    }
    assert.match(results.tls.reason, /portico/i, 'names the dev CA as the issuer');
    assert.match(results.websocket.reason, new RegExp(APP.key));
    // The private channel was signed by the PHP app behind portico.
    assert.match(php.log(), /broadcasting\/auth signed private-portico-diagnostics-\w+ for \d+\.\d+/);
  });

  it('a wrong key shows the WebSocket check red with its fix', async () => {
    const { results } = await run('?key=not-a-real-key', 'diagnostics-wrong-key.png');
    const ws = results.websocket;
    assert.equal(ws.state, 'bad', JSON.stringify(ws));
    assert.match(ws.reason, /4001/);
    assert.match(ws.fix, /the browser's key does not match any app: check VITE_REVERB_APP_KEY/);
    for (const id of ['subscribe', 'publish', 'private']) assert.equal(results[id].state, 'skipped', id);
    // The other checks do not depend on the key.
    assert.equal(results.tls.state, 'ok');
    assert.equal(results.supabase.state, 'ok');
  });
});
