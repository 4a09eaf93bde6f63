#!/usr/bin/env bash
# Runs the same workloads against portico and its peers back to back on
# loopback and writes a markdown table of both figures and their ratio to
# bench/results/. Usage:
#
#   bench/compare.sh [hub|edge|php|all]      (default all)
#
# php: one php-fpm pool (bench/conf/php-fpm.conf) behind portico (FastCGI),
# nginx (Laravel's official server block) and Caddy (php_fastcgi): a PHP
# hello world, a small and a 1 MiB static file, and RSS while 50 clients
# download a 1 GiB file.
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

install_peers "$([ "$WHAT" = edge ] || [ "$WHAT" = php ] || [[ " ${HUB_SERVERS:-sockudo} " != *" sockudo "* ]] && echo edge || echo hub)"
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

# The app every php-suite server serves: Laravel's shape (public/ with the
# front controller and static assets).
make_php_app() {
  local pub="$WORK/app/public"
  chmod a+rx "$WORK" # nginx's workers run as www-data
  mkdir -p "$pub/build/assets"
  printf '<?php\nheader("Content-Type: text/plain");\necho "hello from php\\n";\n' >"$pub/index.php"
  head -c 2048 /dev/zero | tr '\0' 'a' >"$pub/build/assets/app.css"
  head -c 1048576 /dev/urandom >"$pub/big.bin"
  truncate -s 1G "$pub/huge.bin" # sparse: the page cache, not the disk
}

# download_rss PID URL: 50 clients download URL at 20 MB/s each for
# DURATION seconds while the server's RSS (with its children) is sampled.
download_rss() {
  local pid=$1 url=$2 rss0 max=0 r bytes=0 pids=() i
  rss0="$(rss_kib "$pid")"
  for i in $(seq 1 50); do
    curl -s -o /dev/null --limit-rate 20M --max-time "${DURATION:-10}" -w '%{size_download}\n' "$url" >"$WORK/dl.$i" 2>/dev/null &
    pids+=($!)
  done
  for _ in $(seq 1 $((${DURATION:-10} * 4))); do
    r="$(rss_kib "$pid")"; [ "$r" -gt "$max" ] && max=$r
    sleep 0.25
  done
  wait "${pids[@]}" 2>/dev/null || true
  for i in $(seq 1 50); do bytes=$((bytes + $(cat "$WORK/dl.$i" 2>/dev/null || echo 0))); done
  printf '{"rss_start_mib": %s, "rss_max_mib": %s, "rss_growth_mib": %s, "served_mib": %s}\n' \
    "$((rss0 / 1024))" "$((max / 1024))" "$(((max - rss0) / 1024))" "$((bytes / 1048576))"
}

run_php() {
  make_php_app
  local fpm
  fpm="$(command -v php-fpm8.2 || command -v php-fpm || ls /usr/sbin/php-fpm* | tail -1)"
  "$fpm" -n -F -R -y "$(render php-fpm.conf)" >"$WORK/php-fpm.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do [ -S "$WORK/php.sock" ] && break; sleep 0.1; done
  for _ in $(seq 1 "$REPEAT"); do
    # shellcheck disable=SC2086
    for srv in ${PHP_SERVERS:-portico nginx caddy} "${BASE[@]}"; do
      case $srv in
        portico) start portico-php 18103 "$PORTICO_BIN" run --config "$(render portico-php.toml)"; P=18103 ;;
        portico-base) start portico-base 18103 "$PORTICO_BASE_BIN" run --config "$(render portico-php.toml)"; P=18103 ;;
        nginx) start nginx-php 18101 nginx -c "$(render nginx-php.conf)" -e "$WORK/nginx-php-error.log"; P=18101 ;;
        caddy) start caddy-php 18102 caddy run --adapter caddyfile --config "$(render Caddyfile-php)"; P=18102 ;;
      esac
      log "php: $srv"
      record php http-php-hello "$srv" "$(with_cpu "$SERVER_PID" requests wrk_json "http://127.0.0.1:$P/hello")"
      record php http-static-2k "$srv" "$(with_cpu "$SERVER_PID" requests wrk_json "http://127.0.0.1:$P/build/assets/app.css")"
      record php http-static-1m "$srv" "$(with_cpu "$SERVER_PID" requests wrk_json "http://127.0.0.1:$P/big.bin")"
      record php download-1g-50 "$srv" "$(download_rss "$SERVER_PID" "http://127.0.0.1:$P/huge.bin")"
      tail -4 "$RAW" >&2
      stop "$SERVER_PID"
      sleep 1
    done
  done
}

case $WHAT in
  hub) run_hub ;;
  edge) run_edge ;;
  php) run_php ;;
  all) run_edge; run_hub; run_php ;;
  *) echo "usage: $0 [hub|edge|php|all]" >&2; exit 2 ;;
esac

cp "$RAW" "${OUT%.md}.jsonl"
python3 "$BENCH_DIR/table.py" "$RAW" >"$OUT"
log "results: $OUT"
cat "$OUT"
