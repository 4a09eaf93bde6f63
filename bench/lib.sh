# Helpers for compare.sh: installing peers, starting and stopping servers on
# loopback, and recording each run as one JSON line.
# shellcheck shell=bash

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="${BENCH_TOOLS:-$HOME/.cache/portico-bench}"
WORK="${BENCH_WORK:-$(mktemp -d /tmp/portico-bench.XXXXXX)}"
RAW="${RAW:-$WORK/raw.jsonl}"
PIDS=()

log() { printf '\n== %s\n' "$*" >&2; }

# Installs whatever is missing: nginx, caddy, wrk (Debian), sockudo (cargo).
install_peers() {
  local missing=()
  command -v nginx >/dev/null || missing+=(nginx)
  command -v caddy >/dev/null || missing+=(caddy)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v openssl >/dev/null || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  SOCKUDO="${SOCKUDO_BIN:-$TOOLS/sockudo/bin/sockudo}"
  if [ "${1:-}" = hub ] && [ ! -x "$SOCKUDO" ]; then
    # Sockudo's metrics exporter builds protobufs at compile time.
    command -v protoc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
    log "building sockudo (cargo install sockudo --locked; this takes a while)"
    CARGO_TARGET_DIR="$TOOLS/sockudo-target" cargo install sockudo --locked --root "$TOOLS/sockudo" >&2
  fi
}

# Builds portico and portico-bench (release) and copies them to $WORK, so a
# shared target dir rebuilt by another checkout cannot swap them mid-run.
build_portico() {
  if [ -n "${PORTICO_BIN:-}" ] && [ -n "${BENCH_BIN:-}" ]; then return; fi
  log "building portico (release)"
  (cd "$ROOT" && find src -name '*.rs' -exec touch {} + && cargo build --release --bins --quiet)
  local target="${CARGO_TARGET_DIR:-$ROOT/target}/release"
  cp "$target/portico" "$WORK/portico"
  cp "$target/portico-bench" "$WORK/portico-bench"
  PORTICO_BIN="$WORK/portico"
  BENCH_BIN="$WORK/portico-bench"
}

# ECDSA P-256 certificate shared by every TLS listener.
make_certs() {
  CERTS="$WORK/certs"
  mkdir -p "$CERTS"
  [ -f "$CERTS/cert.pem" ] && return
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$CERTS/key.pem" -out "$CERTS/cert.pem" 2>/dev/null
}

# Fills @WORK@, @CERTS@, @BODY@ in a config template.
render() {
  local body
  body="$(printf 'x%.0s' $(seq 1 200))"
  sed -e "s#@WORK@#$WORK#g" -e "s#@CERTS@#${CERTS:-}#g" -e "s#@BODY@#$body#g" "$BENCH_DIR/conf/$1" > "$WORK/$1"
  echo "$WORK/$1"
}

wait_port() {
  local port=$1
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $port did not open" >&2
  return 1
}

# start NAME PORT CMD...: runs CMD in the background, waits for PORT, and
# sets SERVER_PID.
start() {
  local name=$1 port=$2
  shift 2
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already taken: stop whatever listens there first" >&2
    return 1
  fi
  "$@" >"$WORK/$name.out" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_port "$port"
  sleep 0.5
}

stop() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

# record SUITE WORKLOAD SERVER JSON: appends one line to $RAW.
record() {
  python3 - "$1" "$2" "$3" "$4" >>"$RAW" <<'PY'
import json, sys
suite, workload, server, figures = sys.argv[1:5]
d = json.loads(figures) if figures.strip() else {"error": "no output"}
d.update(suite=suite, case=workload, server=server)
print(json.dumps(d))
PY
}

# cpu_ticks PID: user+system clock ticks of PID and its child processes
# (nginx workers), from /proc.
cpu_ticks() {
  local total=0 p f
  for p in "$1" $(pgrep -P "$1" || true); do
    f=($(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null || echo))
    [ ${#f[@]} -gt 13 ] && total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

# rss_kib PID: resident memory of PID and its child processes (nginx
# workers), in KiB.
rss_kib() {
  local total=0 p r
  for p in "$1" $(pgrep -P "$1" || true); do
    r="$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)"
    total=$((total + ${r:-0}))
  done
  echo "$total"
}

# with_cpu PID OPS_KEY CMD...: runs CMD (which prints one JSON object) and
# adds the server's CPU seconds over the run and CPU µs per operation
# (OPS_KEY names the JSON field counting operations). CPU per operation is
# the figure least moved by other load on the machine.
with_cpu() {
  local pid=$1 key=$2 t0 t1 out
  shift 2
  t0="$(cpu_ticks "$pid")"
  out="$("$@")"
  t1="$(cpu_ticks "$pid")"
  python3 - "$out" "$t0" "$t1" "$key" "$(getconf CLK_TCK)" <<'PY'
import json, sys
out, t0, t1, key, hz = sys.argv[1:6]
d = json.loads(out) if out.strip() else {"error": "no output"}
cpu = (int(t1) - int(t0)) / int(hz)
d["server_cpu_s"] = round(cpu, 2)
ops = d.get(key)
if isinstance(ops, (int, float)) and ops > 0:
    d["server_cpu_us_per_op"] = round(cpu * 1e6 / ops, 2)
print(json.dumps(d))
PY
}

# bench_json ARGS...: runs portico-bench and prints its JSON line.
bench_json() {
  "$BENCH_BIN" --json "$@" 2>>"$WORK/bench.err" | sed -n 's/^JSON //p' | tail -1
}

# wrk_json URL: wrk -t2 -c64 --latency, summarised as JSON.
wrk_json() { # wrk_json URL [WRK-ARGS...]
  local out
  out="$(wrk -t2 -c"${WRK_CONNS:-64}" -d"${DURATION:-10}s" --latency "${@:2}" "$1" 2>&1)"
  python3 - "$out" <<'PY'
import json, re, sys
out = sys.argv[1]
def dur(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    if not m: return None
    v, u = float(m.group(1)), m.group(2)
    return round(v / 1000 if u == "us" else v * 1000 if u == "s" else v, 3)
rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
p = {q: dur(v) for q, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
total = re.search(r"(\d+) requests in", out)
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
sock = re.search(r"Socket errors: (.*)", out)
print(json.dumps({"requests_per_s": float(rps.group(1)) if rps else None,
                  "requests": int(total.group(1)) if total else None,
                  "p50_ms": p.get("50"), "p99_ms": p.get("99"),
                  "non_2xx": int(errs.group(1)) if errs else 0,
                  "socket_errors": sock.group(1) if sock else ""}))
PY
}
