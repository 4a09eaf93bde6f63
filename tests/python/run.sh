#!/usr/bin/env bash
# Builds portico (unless PORTICO_BIN is set), installs the Python clients
# (the `pusher` REST library and Supabase's `realtime`) in a venv, and runs
# the tests. Arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=../support/portico-bin.sh
source "$root/tests/support/portico-bin.sh"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet -r "$here/requirements.txt"
exec "$work/venv/bin/python" -m pytest -q "$here" "$@"
