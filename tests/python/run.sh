#!/usr/bin/env bash
# Builds portico, installs the `pusher` Python library, runs the tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -z "${PORTICO_BIN:-}" ]; then
  find "$root/src" -name '*.rs' -exec touch {} +
  (cd "$root" && cargo build --quiet)
  cp "${CARGO_TARGET_DIR:-$root/target}/debug/portico" "$work/portico"
  export PORTICO_BIN="$work/portico"
fi
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet pusher
exec "$work/venv/bin/python" "$here/test_pusher_python.py" -v
