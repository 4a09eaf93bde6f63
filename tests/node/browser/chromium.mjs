// What the headless-Chromium tests share: `php -S` as the "Laravel app"
// (the docroot page, the npm browser builds and router.php's
// /broadcasting/auth), a fresh NSS database that trusts portico's dev CA the
// way a person trusts it on Linux, and Debian's chromium driven by
// playwright-core (which never downloads a browser). Every wait is bounded.
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { within } from '../harness.mjs';

export const CHROMIUM = process.env.PORTICO_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // --user-data-dir: playwright passes the fresh directory given to launchPersistentContext.
];
const here = import.meta.dirname;

for (const [what, path] of [['chromium (apt-get install chromium)', CHROMIUM], ['certutil (apt-get install libnss3-tools)', '/usr/bin/certutil']]) {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${what}; ./scripts/test installs it`);
}

export async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** `php -S` on 127.0.0.1 with the test page, the auth endpoint (signing for `app`) and the npm browser builds. */
export async function startPhp(work, app) {
  const docroot = join(work, 'docroot');
  mkdirSync(join(docroot, 'vendor'), { recursive: true });
  copyFileSync(join(here, 'index.php'), join(docroot, 'index.php'));
  copyFileSync(join(here, '../node_modules/pusher-js/dist/web/pusher.min.js'), join(docroot, 'vendor/pusher.min.js'));
  copyFileSync(join(here, '../node_modules/laravel-echo/dist/echo.iife.js'), join(docroot, 'vendor/echo.iife.js'));
  const port = await freePort();
  const child = spawn('php', ['-S', `127.0.0.1:${port}`, '-t', docroot, join(here, 'router.php')], {
    env: { ...process.env, PUSHER_APP_KEY: app.key, PUSHER_APP_SECRET: app.secret },
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
export function nssHome(work, name, caPem) {
  const home = join(work, name);
  const db = join(home, '.pki/nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password'], { stdio: 'pipe' });
  if (caPem) execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'portico-dev-ca', '-i', caPem], { stdio: 'pipe' });
  return home;
}

/** Debian's chromium in a fresh user-data-dir with HOME pointing at `home`. */
export async function launch(work, home) {
  return within(30000, chromium.launchPersistentContext(mkdtempSync(join(work, 'profile-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    env: { ...process.env, HOME: home },
    timeout: 30000,
  }), 'chromium launch');
}
