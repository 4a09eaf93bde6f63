#!/usr/bin/env bash
# Builds portico (unless PORTICO_BIN is set), installs the Node clients, and
# runs the real-client tests: pusher-js, laravel-echo, the `pusher` library,
# realtime-js and headless Debian chromium (browser.test.mjs needs
# `apt-get install chromium libnss3-tools php-cli`). Arguments go to
# `node --test`; name test files to run only those.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=../support/portico-bin.sh
source "$root/tests/support/portico-bin.sh"
cd "$here"
if [ ! -d node_modules/playwright-core ]; then PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent; fi
files=()
for a in "$@"; do [[ "$a" == *.mjs ]] && files+=("$a"); done
[ ${#files[@]} -gt 0 ] || set -- "$@" ./*.test.mjs
exec node --test --test-concurrency=1 --test-timeout=120000 "$@"
