#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: a figure
# that does not move with machine noise, for before/after comparisons of the
# proxy path. Usage:
#
#   bench/callgrind.sh [PORTICO_BINARY ...]    (default: a release build)
#
# For each binary: the nginx upstream of compare.sh on 18000, portico under
# callgrind with one worker thread (TOKIO_WORKER_THREADS=1) and the edge
# config, a wrk warm-up, counters zeroed, a fixed `wrk -t1 -c8` run
# (DURATION seconds, default 5), counters dumped; prints the instructions
# counted divided by the requests wrk completed. PATH_UNDER_TEST (default
# "/") picks the request path.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT

DURATION="${DURATION:-5}"
mkdir -p "$WORK"
install_peers edge
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
if [ $# -eq 0 ]; then
  build_portico
  set -- "$PORTICO_BIN"
fi
make_certs
start upstream 18000 nginx -c "$(render upstream-nginx.conf)" -e "$WORK/upstream-error.log"
url="http://127.0.0.1:18003${PATH_UNDER_TEST:-/}"
for bin in "$@"; do
  rm -f "$WORK"/cg.out*
  TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
    "$bin" run --config "$(render portico-edge.toml)" >"$WORK/callgrind.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  # Starting under valgrind is slow: up to 60 s.
  for _ in $(seq 1 600); do
    (exec 3<>/dev/tcp/127.0.0.1/18003) 2>/dev/null && break
    sleep 0.1
  done
  wrk -t1 -c8 -d3s "$url" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  out="$(wrk -t1 -c8 -d"${DURATION}s" "$url")"
  callgrind_control -d "$pid" >/dev/null
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  instr=0
  for f in "$WORK"/cg.out.*; do
    n="$(awk '/^totals:/ {t = $2} /^summary:/ {s = $2} END {print (t ? t : s) + 0}' "$f")"
    instr=$((instr + n))
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  python3 -c "import sys; i, r = int(sys.argv[2]), int(sys.argv[3]); print(f'{sys.argv[1]}: {i:,} instructions / {r:,} requests = {i / r:,.0f} per request')" \
    "$bin" "$instr" "$requests"
done
