#!/usr/bin/env bash
# Runs the same workloads against portico and its peers back to back on
# loopback and writes a markdown table of both figures and their ratio to
# bench/results/. Usage:
#
#   bench/compare.sh [hub|edge|all]      (default all)
#
# Environment: DURATION (seconds per run, default 10), REPEAT (runs of each
# case, default 1; the table keeps the median), PORTICO_BIN/BENCH_BIN (skip
# the build), SOCKUDO_BIN, BENCH_TOOLS (where sockudo is installed),
# BENCH_WORK (scratch dir), ONLY (regex: run only the hub cases it matches), MAX_CONNS (the "largest count" attempt,
# default 19900), OUT (results file), PORTICO_BASE_BIN (an earlier portico
# build measured as one more peer, "portico-base": before/after in one run),
# EDGE_SERVERS (default "portico nginx caddy"), HUB_SERVERS (default
# "portico sockudo"; "portico" with PORTICO_BASE_BIN is a before/after
# without building Sockudo).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT

WHAT="${1:-all}"
DURATION="${DURATION:-10}"
REPEAT="${REPEAT:-1}"
MAX_CONNS="${MAX_CONNS:-19900}"
STAMP="$(date -u +%Y-%m-%d-%H%M)"
OUT="${OUT:-$BENCH_DIR/results/$STAMP-$WHAT.md}"
mkdir -p "$WORK"
: >"$RAW"

install_peers "$([ "$WHAT" = edge ] || [[ " ${HUB_SERVERS:-sockudo} " != *" sockudo "* ]] && echo edge || echo hub)"
build_portico
ulimit -n "$(ulimit -Hn)"

BASE=()
[ -n "${PORTICO_BASE_BIN:-}" ] && BASE=(portico-base)

start_hub() { # start_hub portico|portico-base|sockudo
  case $1 in
    portico) start portico-hub 16001 "$PORTICO_BIN" run --config "$(render portico-hub.toml)"; HUB_PORT=16001 ;;
    portico-base) start portico-base 16001 "$PORTICO_BASE_BIN" run --config "$(render portico-hub.toml)"; HUB_PORT=16001 ;;
    sockudo) RUST_LOG=warn SOCKUDO_LOG_PROD=warn start sockudo 16002 "$SOCKUDO" --config "$(render sockudo.toml)"; HUB_PORT=16002 ;;
  esac
}

# hub_case NAME BENCH-ARGS...: each server fresh, portico then sockudo.
hub_case() {
  local name=$1
  shift
  [[ "$name" =~ ${ONLY:-.} ]] || return 0
  for _ in $(seq 1 "$REPEAT"); do
    # shellcheck disable=SC2086
    for srv in ${HUB_SERVERS:-portico sockudo} "${BASE[@]}"; do
      log "hub $name: $srv"
      start_hub "$srv"
      local args=("$@")
      args=("${args[@]//@PID@/$SERVER_PID}")
      record hub "$name" "$srv" "$(with_cpu "$SERVER_PID" "$OPS" bench_json --port "$HUB_PORT" "${args[@]}")"
      tail -1 "$RAW" >&2
      stop "$SERVER_PID"
      sleep 1
    done
  done
}

run_hub() {
  OPS=deliveries_received
  hub_case fanout-1k fanout --subscribers 1000 --rate 100 --duration "$DURATION"
  hub_case fanout-10k fanout --subscribers 10000 --rate 20 --duration "$DURATION"
  # Three times the offered load: each server's ceiling, not the offer's.
  hub_case fanout-10k-600k fanout --subscribers 10000 --rate 60 --duration "$DURATION"
  hub_case fanout-10k-100ch fanout --subscribers 10000 --channels 100 --rate 200 --duration "$DURATION"
  OPS=connections_ok
  hub_case idle-10k connections -n 10000 --hold 2 --server-pid @PID@
  hub_case "idle-max" connections -n "$MAX_CONNS" --procs 2 --hold 2 --server-pid @PID@
  OPS=cycles
  hub_case churn churn --workers 50 --hold-ms 10 --duration "$DURATION"
  hub_case churn-presence churn --workers 20 --presence --watchers 100 --duration "$DURATION"
}

run_edge() {
  make_certs
  "$BENCH_BIN" echo-server --listen 127.0.0.1:18009 >"$WORK/echo.out" 2>&1 &
  PIDS+=($!)
  start upstream 18000 nginx -c "$(render upstream-nginx.conf)" -e "$WORK/upstream-error.log"
  log "upstream direct"
  record edge http-plain upstream-direct "$(wrk_json http://127.0.0.1:18000/)"
  for _ in $(seq 1 "$REPEAT"); do
    # shellcheck disable=SC2086
    for srv in ${EDGE_SERVERS:-portico nginx caddy} "${BASE[@]}"; do
      case $srv in
        portico) start portico-edge 18003 "$PORTICO_BIN" run --config "$(render portico-edge.toml)"; P=18003; S=18403 ;;
        portico-base) start portico-base 18003 "$PORTICO_BASE_BIN" run --config "$(render portico-edge.toml)"; P=18003; S=18403 ;;
        nginx) start nginx 18001 nginx -c "$(render nginx-proxy.conf)" -e "$WORK/nginx-error.log"; P=18001; S=18401 ;;
        caddy) start caddy 18002 caddy run --adapter caddyfile --config "$(render Caddyfile)"; P=18002; S=18402 ;;
      esac
      log "edge: $srv"
      record edge http-plain "$srv" "$(with_cpu "$SERVER_PID" requests wrk_json "http://127.0.0.1:$P/")"
      record edge http-tls "$srv" "$(with_cpu "$SERVER_PID" requests wrk_json "https://127.0.0.1:$S/")"
      record edge http-post "$srv" "$(with_cpu "$SERVER_PID" requests wrk_json "http://127.0.0.1:$P/" -s "$BENCH_DIR/conf/post.lua")"
      record edge tls-handshakes "$srv" "$(with_cpu "$SERVER_PID" completed bench_json handshakes --port "$S" --tls --duration "$DURATION")"
      record edge ws-echo "$srv" "$(with_cpu "$SERVER_PID" round_trips bench_json ws-echo --port "$P" --duration "$DURATION")"
      tail -5 "$RAW" >&2
      stop "$SERVER_PID"
      sleep 1
    done
  done
}

case $WHAT in
  hub) run_hub ;;
  edge) run_edge ;;
  all) run_edge; run_hub ;;
  *) echo "usage: $0 [hub|edge|all]" >&2; exit 2 ;;
esac

cp "$RAW" "${OUT%.md}.jsonl"
python3 "$BENCH_DIR/table.py" "$RAW" >"$OUT"
log "results: $OUT"
cat "$OUT"
