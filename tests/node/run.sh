#!/usr/bin/env bash
# Builds portico, installs the Node clients, and runs the real-client tests
# (pusher.test.mjs, and browser.test.mjs: headless Debian chromium, which
# needs `apt-get install chromium libnss3-tools` and php-cli).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -z "${PORTICO_BIN:-}" ]; then
  # A shared CARGO_TARGET_DIR may hold a build of another checkout of the
  # same crate: touch our sources, build, copy, and check the copy is ours
  # (it must know this branch's [[apps]] keys), retrying a few times.
  probe="$work/probe.toml"
  printf '[server]\nplain = "127.0.0.1:0"\n[[apps]]\nid = "1"\nkey = "k"\nsecret = "s"\nclient_events = true\n' > "$probe"
  for attempt in 1 2 3; do
    find "$root/src" -name '*.rs' -exec touch {} +
    (cd "$root" && cargo build --quiet)
    cp "${CARGO_TARGET_DIR:-$root/target}/debug/portico" "$work/portico"
    if "$work/portico" check --config "$probe" >/dev/null 2>&1; then break; fi
    echo "built binary is not this checkout's (attempt $attempt), rebuilding" >&2
  done
  export PORTICO_BIN="$work/portico"
fi
cd "$here"
if [ ! -d node_modules/playwright-core ]; then PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent; fi
# Trust a dev CA made up front, so wss/https tests verify certificates.
certs="$work/certs"
"$PORTICO_BIN" certs-dev --dir "$certs" >/dev/null
export NODE_EXTRA_CA_CERTS="$certs/portico-dev-ca.pem"
export PORTICO_TEST_CERTS="$certs"
exec node --test --test-concurrency=1 --test-timeout=120000 "$@" pusher.test.mjs browser.test.mjs
