#!/usr/bin/env bash
# Runs the same load against Parley and its two peers (shared/peers: nginx + nchan, Socket.IO)
# one server at a time, and prints one markdown table (see docs/bench/PEERS.md).
#
#   docs/bench/compare.sh                          # 10,000 polls: 1,000 msg/s for 10 s, then 64 senders for 10 s
#   POLLS=2000 DURATION=5 docs/bench/compare.sh    # smaller and shorter
#   EXTRA=--browser-headers docs/bench/compare.sh  # every poll with a browser's ~700 bytes of headers
#   SERVERS="parley nchan" docs/bench/compare.sh   # a subset
#   ROUNDS=3 docs/bench/compare.sh                 # every server three times, alternating
#
# On a shared machine the same server moves ±10–20% in CPU and ×2 in p99 between runs, so
# with ROUNDS > 1 the servers take turns (round 1: each server, round 2: each again…) and a
# second table gives each round's Parley / Socket.IO ratios and their median.
#
# Each run gets a fresh server: the load generator starts Parley itself; this script starts a
# peer before its run and stops it after. Everything listens on and talks to 127.0.0.1 only;
# every step has a time limit; every server started here is stopped on exit, also on failure
# or Ctrl-C. Needs: nginx-light + libnginx-mod-nchan (apt), node + npm (the Socket.IO peer is
# installed once into $SIO_DIR). Exits non-zero when a run failed (lost or duplicated
# messages, errors) or a server could not be started.
set -euo pipefail
cd "$(dirname "$0")/../.."

POLLS="${POLLS:-10000}"
RATE="${RATE:-1000}"
DURATION="${DURATION:-10}"
SENDERS="${SENDERS:-64}"
SENDER_POLLS="${SENDER_POLLS:-$POLLS}"
GRACE="${GRACE:-10}"
EXTRA="${EXTRA:-}"
SERVERS="${SERVERS:-parley nchan socketio}"
ROUNDS="${ROUNDS:-1}"
PEERS="$(realpath "${PEERS:-../shared/peers}")"
SIO_DIR="${SIO_DIR:-/tmp/parley-compare-sio}"
RUN_TIMEOUT="${RUN_TIMEOUT:-240}"     # seconds, one load generator run
BUILD_TIMEOUT="${BUILD_TIMEOUT:-1800}" # seconds, the release build
OUT="${OUT:-$(mktemp -d /tmp/parley-compare.XXXXXX)}"
NCHAN_PORT=8091   # fixed by $PEERS/nchan/nginx.conf
SIO_PORT=8090
mkdir -p "$OUT"

# 10,000 parked polls need 10,000+ descriptors on both ends; the servers inherit this limit.
ulimit -Hn 65536 2>/dev/null || true
ulimit -Sn 65536 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
if [ "$(ulimit -Sn)" -lt $((POLLS + 1000)) ]; then
  echo "compare: open-files limit $(ulimit -Sn) is too low for $POLLS polls" >&2
  exit 2
fi

started=()
stop_pid() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  for pid in "${started[@]}"; do stop_pid "$pid"; done
  started=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 100); do
    port_open "$1" && return 0
    sleep 0.1
  done
  echo "compare: nothing listens on 127.0.0.1:$1 after 10 s" >&2
  return 1
}

# Starts the peer $1; sets PEER_PID (the process whose CPU and memory are read) and SERVER_PID
# (the one to stop).
start_peer() {
  case "$1" in
  nchan)
    if [ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
      echo "compare: nchan missing: apt-get install -y nginx-light libnginx-mod-nchan" >&2
      return 1
    fi
    if port_open "$NCHAN_PORT"; then echo "compare: 127.0.0.1:$NCHAN_PORT is taken" >&2; return 1; fi
    mkdir -p /tmp/nchan-peer/body
    nginx -c "$PEERS/nchan/nginx.conf" </dev/null >"$OUT/nchan.log" 2>&1 &
    SERVER_PID=$!
    started+=("$SERVER_PID")
    wait_port "$NCHAN_PORT"
    PEER_PID="$(pgrep -P "$SERVER_PID" | head -n1)" # the worker: nchan's work is done there
    [ -n "$PEER_PID" ] || { echo "compare: no nginx worker" >&2; return 1; }
    ;;
  socketio)
    if [ ! -d "$SIO_DIR/node_modules/better-sqlite3/build" ]; then
      echo "== installing the Socket.IO peer into $SIO_DIR"
      rm -rf "$SIO_DIR" && mkdir -p "$SIO_DIR"
      cp -r "$PEERS/socketio/." "$SIO_DIR/" && chmod -R u+w "$SIO_DIR"
      (cd "$SIO_DIR" && npm_config_nodedir=/usr timeout 900 nice -n 10 npm install --no-audit --no-fund)
    fi
    if port_open "$SIO_PORT"; then echo "compare: 127.0.0.1:$SIO_PORT is taken" >&2; return 1; fi
    rm -f "$OUT"/sio.db*
    (cd "$SIO_DIR" && DB="$OUT/sio.db" PORT="$SIO_PORT" exec node server.js) </dev/null >"$OUT/socketio.log" 2>&1 &
    SERVER_PID=$!
    PEER_PID=$SERVER_PID
    started+=("$SERVER_PID")
    wait_port "$SIO_PORT"
    ;;
  esac
}

stop_peer() {
  stop_pid "$SERVER_PID"
  local keep=()
  for pid in "${started[@]}"; do [ "$pid" = "$SERVER_PID" ] || keep+=("$pid"); done
  started=("${keep[@]}")
}

echo "== building (nice 10)"
timeout "$BUILD_TIMEOUT" nice -n 10 cargo build --release --bin parley --example loadgen
LOADGEN=target/release/examples/loadgen

failed=0
files=()
run() { # server, name (unique per round), then the load generator's load arguments
  local server="$1" name="$2"; shift 2
  local target=()
  if [ "$server" != parley ]; then
    if ! start_peer "$server"; then
      echo "!! $server could not be started"
      failed=1
      return
    fi
    target=(--peer "$server" --peer-pid "$PEER_PID")
  fi
  echo "== $server $name: $*"
  # shellcheck disable=SC2086 # EXTRA is a list of options
  if timeout --kill-after=10 "$RUN_TIMEOUT" "$LOADGEN" "${target[@]}" "$@" --duration "$DURATION" \
    --grace "$GRACE" --timeout $((RUN_TIMEOUT - 15)) --label "compare" $EXTRA \
    --json "$OUT/$server-$name.json" >"$OUT/$server-$name.txt" 2>&1; then
    files+=("$OUT/$server-$name.json")
  else
    echo "!! $server $name FAILED (see $OUT/$server-$name.txt)"
    tail -n 5 "$OUT/$server-$name.txt"
    [ -f "$OUT/$server-$name.json" ] && files+=("$OUT/$server-$name.json")
    failed=1
  fi
  if [ "$server" != parley ]; then stop_peer; fi
  sleep 2 # let TIME_WAIT sockets and the page cache calm down between runs
}

for round in $(seq "$ROUNDS"); do
  suffix=""
  [ "$ROUNDS" -gt 1 ] && suffix="-$round"
  for server in $SERVERS; do
    run "$server" "rate$suffix" --polls "$POLLS" --rate "$RATE"
    run "$server" "senders$suffix" --polls "$SENDER_POLLS" --senders "$SENDERS"
  done
done

echo
python3 - "${files[@]}" <<'EOF' | tee "$OUT/compare.md"
import json, re, statistics, sys

def f(v, fmt="{:,.0f}"):
    return "n/a" if v is None else fmt.format(v)

runs = {}  # (server, "rate" | "senders", round) -> the run's JSON

print("| server | load | polls | delivery p50 / p90 / p99 / max (ms) | lost / dup | acked sends/s "
      "| server CPU per delivered msg | per acked send | RSS per poll: first park / warm / cold | result |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for path in sys.argv[1:]:
    r = json.load(open(path))
    name = re.match(r".*/[a-z]+-(rate|senders)(?:-(\d+))?\.json$", path)
    if name:
        runs[(r["target"], name[1], int(name[2] or 1))] = r
    c, s, res = r["config"], r["server"], r["results"]
    d = res["delivery_latency"] or {}
    load = (f"{c['senders']} senders" if r["mode"] == "throughput" else f"{c['rate']:,.0f} msg/s") \
        + f", {c['duration_s']:g} s" + (", browser headers" if c.get("browser_headers") else "")
    lat = " / ".join(f(d.get(k), "{:.2f}") for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
    rss = " / ".join(f(s.get(k) and s[k] / 1000, "{:.1f} KB") for k in
                     ("rss_per_poll_bytes", "rss_per_poll_warm_bytes", "rss_per_poll_cold_bytes"))
    print(f"| {r['target']} | {load} | {c['polls']:,} | {lat} | {res['lost']} / {res['duplicated']} "
          f"| {f(res['acked_per_s'])} | {f(s['cpu_us_per_delivered'], '{:.0f} µs')} "
          f"| {f(s['cpu_us_per_acked'], '{:.0f} µs')} | {rss} | {'PASS' if res['pass'] else 'FAIL'} |")

# Each round's ratios to the Socket.IO peer (issue #12's targets are such ratios).
def ratio(kind, rnd, pick):
    a, b = runs.get(("parley", kind, rnd)), runs.get(("socketio", kind, rnd))
    try:
        return pick(a) / pick(b)
    except (TypeError, KeyError, ZeroDivisionError):  # a run without pollers delivers nothing
        return None

measures = [
    ("CPU per delivered msg, rate", "rate", lambda r: r["server"]["cpu_us_per_delivered"]),
    ("delivery p99, rate", "rate", lambda r: (r["results"]["delivery_latency"] or {})["p99_ms"]),
    ("acked sends/s, senders", "senders", lambda r: r["results"]["acked_per_s"]),
    ("CPU per acked send, senders", "senders", lambda r: r["server"]["cpu_us_per_acked"]),
    ("RSS per poll cold, rate", "rate", lambda r: r["server"]["rss_per_poll_cold_bytes"]),
]
rounds = sorted({k[2] for k in runs})
if len(rounds) > 1 and any(k[0] == "socketio" for k in runs):
    print()
    print("| Parley / Socket.IO | " + " | ".join(f"round {n}" for n in rounds) + " | median |")
    print("| --- |" + " ---: |" * (len(rounds) + 1))
    for label, kind, pick in measures:
        values = [ratio(kind, n, pick) for n in rounds]
        known = [v for v in values if v is not None]
        median = statistics.median(known) if known else None
        print(f"| {label} | " + " | ".join(f(v, "{:.2f}×") for v in values)
              + f" | {f(median, '{:.2f}×')} |")
EOF
echo
echo "runs, logs and JSON in $OUT/ (table: $OUT/compare.md)"
exit "$failed"
