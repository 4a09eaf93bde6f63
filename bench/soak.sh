#!/usr/bin/env bash
# Soak: DURATION seconds (default 600) of connection churn, fan-out,
# presence churn and hostile input against one portico at once, sampling
# its RSS every second. Prints RSS at start (after WARMUP seconds), peak
# and end, whether it stayed within ±5 % of the start, and what the load
# generators counted: every message to every reading subscriber (lost = 0),
# churn failures, and the hostile inputs answered. A benchmark, not a test.
#
#   bench/soak.sh                 10 minutes
#   DURATION=60 bench/soak.sh     a short run
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-600}"
WARMUP="${WARMUP:-30}"
PORT="${PORT:-16101}"
WORK="$(mktemp -d /tmp/portico-soak.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

if [ -z "${PORTICO_BIN:-}" ] || [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --bins --quiet
  target="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release"
  cp "$target/portico" "$target/portico-bench" "$WORK/"
  PORTICO_BIN="$WORK/portico"
  BENCH_BIN="$WORK/portico-bench"
fi
ulimit -n "$(ulimit -Hn)"

cat >"$WORK/soak.toml" <<TOML
[server]
plain = "127.0.0.1:$PORT"
max_connections = 19000
max_connections_per_ip = 19000
[tls]
mode = "off"
[log]
access = false
level = "warn"
[upstream]
url = "http://127.0.0.1:9"
[[apps]]
id = "bench"
key = "bench-key"
secret = "bench-secret"
presence_max_members = 10000
TOML
"$PORTICO_BIN" run --config "$WORK/soak.toml" >"$WORK/portico.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
(
  for _ in $(seq 1 $((DURATION + 60))); do
    kill -0 "$SERVER" 2>/dev/null || break
    echo "$(date +%s) $(rss_kib "$SERVER")"
    sleep 1
  done
) >"$WORK/rss.txt" &
PIDS+=($!)

B=("$BENCH_BIN" --port "$PORT" --json)
"${B[@]}" fanout --subscribers 2000 --channels 20 --rate 100 --duration "$DURATION" >"$WORK/fanout.json" 2>"$WORK/fanout.err" &
F=$!
"${B[@]}" churn --workers 20 --hold-ms 50 --duration "$DURATION" >"$WORK/churn.json" 2>"$WORK/churn.err" &
C=$!
"${B[@]}" churn --presence --workers 10 --watchers 50 --duration "$DURATION" >"$WORK/presence.json" 2>"$WORK/presence.err" &
P=$!
python3 - "$PORT" "$DURATION" >"$WORK/hostile.json" <<'PY' &
# Hostile inputs in a loop: malformed HTTP heads and bodies, bad WebSocket
# handshakes and frames. Counts how each was answered.
import json, os, socket, sys, time
port, duration = int(sys.argv[1]), int(sys.argv[2])
HTTP = [
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /app/bench-key HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc\r\n\r\n",
    b"GET /app/bench-key HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    b"\x16\x03\x01\xff\xff" + os.urandom(64),
]
UPGRADE = (b"GET /app/bench-key?protocol=7 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
def frame(op, payload):
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = bytes([0x80 | op])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + body
WS = [frame(1, b"\xff\xfe"), frame(8, (999).to_bytes(2, "big")), frame(1, b"{not json")]
counts = {}
def hit(name, data, upgrade=False):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            if upgrade:
                s.sendall(UPGRADE)
                s.recv(4096)
            s.sendall(data)
            got = s.recv(64)
            key = got[:12].decode("latin1", "replace") if got else "closed"
    except OSError as e:
        key = type(e).__name__
    counts.setdefault(name, {}).setdefault(key, 0)
    counts[name][key] += 1
end = time.time() + duration
while time.time() < end:
    for i, d in enumerate(HTTP):
        hit(f"http{i}", d)
    for i, d in enumerate(WS):
        hit(f"ws{i}", d, upgrade=True)
    time.sleep(0.1)
print(json.dumps(counts))
PY
H=$!
wait "$F" "$C" "$P" "$H" || true
sleep 2
alive=$(kill -0 "$SERVER" 2>/dev/null && echo yes || echo no)

python3 - "$WORK" "$WARMUP" "$alive" <<'PY'
import json, sys
work, warmup, alive = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = [tuple(map(int, l.split())) for l in open(f"{work}/rss.txt") if l.strip()]
t0 = rows[0][0]
after = [r for r in rows if r[0] - t0 >= warmup] or rows
start, end, peak = after[0][1], after[-1][1], max(r[1] for r in after)
drift = (end - start) / start * 100 if start else 0
def load(name):
    try:
        line = open(f"{work}/{name}.json").read().strip().splitlines()[-1]
        return json.loads(line.removeprefix("JSON "))
    except Exception as e:
        return {"error": str(e)}
f, c, p, h = load("fanout"), load("churn"), load("presence"), load("hostile")
print(f"portico alive at the end: {alive}")
print(f"RSS after {warmup}s warm-up: start {start/1024:.1f} MiB, peak {peak/1024:.1f} MiB, end {end/1024:.1f} MiB, drift {drift:+.1f} % ({'flat' if abs(drift) <= 5 else 'NOT flat'})")
pick = lambda d, ks: {k: d[k] for k in ks if k in d} or d
print("fan-out:", pick(f, ("publishes_ok", "publishes_failed", "deliveries_expected", "deliveries_received", "lost", "errors")))
print("churn:", pick(c, ("cycles", "cycles_failed", "errors")))
print("presence churn:", pick(p, ("cycles", "cycles_failed", "member_added_received", "member_removed_received", "member_events_expected", "errors")))
print("hostile inputs (first bytes of each answer):", json.dumps(h))
print(f"raw files: {work}")
PY
