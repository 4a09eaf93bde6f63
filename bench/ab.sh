#!/usr/bin/env bash
# A/B of two portico builds against Sockudo in one session: for each round,
# each server is started fresh and runs the same hub case, in the order
# portico-base, portico, sockudo, so the three share the machine's load of
# that moment. Usage:
#
#   BASE_BIN=/path/to/old/portico PORTICO_BIN=/path/to/new/portico \
#   BENCH_BIN=/path/to/portico-bench bench/ab.sh CASE
#
# CASE is fanout-10k (default), fanout-10k-300k (the same at 30 publishes/s,
# for when a build keeps up with 200k deliveries/s), fanout-1k or idle-10k. Environment:
# DURATION (default 10), REPEAT (rounds, default 3; tables keep the median),
# SOCKUDO_BIN, OUT (results file). Both portico binaries must differ
# (checked with sha256sum), or the A/B would compare a build with itself.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT

CASE="${1:-fanout-10k}"
DURATION="${DURATION:-10}"
REPEAT="${REPEAT:-3}"
STAMP="$(date -u +%Y-%m-%d-%H%M)"
OUT="${OUT:-$BENCH_DIR/results/$STAMP-ab-$CASE.md}"
: "${BASE_BIN:?BASE_BIN: the portico binary to compare against}"
: "${PORTICO_BIN:?PORTICO_BIN: the new portico binary}"
: "${BENCH_BIN:?BENCH_BIN: portico-bench}"
if [ "$(sha256sum <"$BASE_BIN")" = "$(sha256sum <"$PORTICO_BIN")" ]; then
  echo "BASE_BIN and PORTICO_BIN are the same binary" >&2
  exit 1
fi
mkdir -p "$WORK"
: >"$RAW"
install_peers hub
# Copies, so a rebuild cannot swap a binary mid-run.
cp "$BASE_BIN" "$WORK/portico-base"
cp "$PORTICO_BIN" "$WORK/portico-new"
cp "$BENCH_BIN" "$WORK/portico-bench"
BENCH_BIN="$WORK/portico-bench"
ulimit -n "$(ulimit -Hn)"

case $CASE in
  fanout-10k) OPS=deliveries_received; ARGS=(fanout --subscribers 10000 --rate 20 --duration "$DURATION") ;;
  fanout-10k-300k) OPS=deliveries_received; ARGS=(fanout --subscribers 10000 --rate 30 --duration "$DURATION") ;;
  fanout-1k) OPS=deliveries_received; ARGS=(fanout --subscribers 1000 --rate 100 --duration "$DURATION") ;;
  idle-10k) OPS=connections_ok; ARGS=(connections -n 10000 --hold 2 --server-pid @PID@) ;;
  *) echo "unknown case $CASE" >&2; exit 2 ;;
esac

for round in $(seq 1 "$REPEAT"); do
  for srv in portico-base portico sockudo; do
    log "$CASE round $round: $srv"
    case $srv in
      portico-base) start portico-base 16001 "$WORK/portico-base" run --config "$(render portico-hub.toml)"; PORT=16001 ;;
      portico) start portico 16001 "$WORK/portico-new" run --config "$(render portico-hub.toml)"; PORT=16001 ;;
      sockudo) RUST_LOG=warn SOCKUDO_LOG_PROD=warn start sockudo 16002 "$SOCKUDO" --config "$(render sockudo.toml)"; PORT=16002 ;;
    esac
    args=("${ARGS[@]//@PID@/$SERVER_PID}")
    record hub "$CASE" "$srv" "$(with_cpu "$SERVER_PID" "$OPS" bench_json --port "$PORT" "${args[@]}")"
    tail -1 "$RAW" >&2
    stop "$SERVER_PID"
    sleep 1
  done
done

cp "$RAW" "${OUT%.md}.jsonl"
python3 "$BENCH_DIR/table.py" "$RAW" >"$OUT"
log "results: $OUT"
cat "$OUT"
