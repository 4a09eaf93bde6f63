#!/usr/bin/env bash
# Builds portico, installs the Node clients, and runs the real-client tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -z "${PORTICO_BIN:-}" ]; then
  # A shared CARGO_TARGET_DIR may hold a newer build of another checkout
  # that cargo takes as fresh: touch our sources so this tree is built.
  find "$root/src" -name '*.rs' -exec touch {} +
  (cd "$root" && cargo build --quiet)
  # The target dir may be shared with other checkouts: take a private copy
  # of the binary right after building it.
  cp "${CARGO_TARGET_DIR:-$root/target}/debug/portico" "$work/portico"
  export PORTICO_BIN="$work/portico"
fi
cd "$here"
if [ ! -d node_modules ]; then npm install --no-audit --no-fund --silent; fi
# Trust a dev CA made up front, so wss/https tests verify certificates.
certs="$work/certs"
"$PORTICO_BIN" certs-dev --dir "$certs" >/dev/null
export NODE_EXTRA_CA_CERTS="$certs/portico-dev-ca.pem"
export PORTICO_TEST_CERTS="$certs"
exec node --test --test-concurrency=1 --test-timeout=120000 "$@" pusher.test.mjs
