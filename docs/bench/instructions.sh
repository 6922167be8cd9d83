#!/usr/bin/env bash
# Counts the instructions the server executes per message, under valgrind (cachegrind,
# no cache simulation). CPU time on a shared VM moves ±10% between runs; this count moves
# about ±3% (how many polls read and how many jobs share a commit depend on timing), so a
# change of a few percent needs a few runs of each binary.
#
#   docs/bench/instructions.sh                        # the release binary of this checkout
#   docs/bench/instructions.sh /tmp/parley-old /tmp/parley-new
#
# For each binary: two runs of the same load (200 parked polls, RATE messages/s from an
# agent) that differ only in the number of messages (SMALL, then LARGE); the difference of
# their totals divided by the difference in messages is the cost of one message: a send,
# its commit, the poll's answer and the re-poll, without the start-up and the setup both
# runs share. (`rep stos`/`rep movs` count once per byte here: large memsets and copies
# weigh more than their time.) Needs valgrind (apt) and the load generator
# (`cargo build --release --example loadgen`). Listens on and talks to 127.0.0.1 only;
# every run has a time limit; each server is stopped when its run ends.
set -euo pipefail
cd "$(dirname "$0")/../.."

RATE="${RATE:-100}"
SMALL="${SMALL:-500}"
LARGE="${LARGE:-1500}"
LOADGEN="${LOADGEN:-target/release/examples/loadgen}"
EMAIL=bench@example.com
PASSWORD=loadgen-benchmark-password

command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install -y valgrind" >&2; exit 1; }
[ -x "$LOADGEN" ] || { echo "$LOADGEN not found: cargo build --release --example loadgen" >&2; exit 1; }

# Total instructions of one server run that delivers $2 messages.
count() {
    local binary="$1" messages="$2" dir port server
    dir="$(mktemp -d)"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    PARLEY_ADMIN_EMAIL="$EMAIL" PARLEY_ADMIN_PASSWORD="$PASSWORD" RUST_LOG=warn \
        PARLEY_RATE_LIMITS=false PARLEY_MAX_CONNECTIONS_PER_IP=0 \
        timeout 600 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$dir/out" \
        "$binary" --addr "127.0.0.1:$port" --db "$dir/bench.db" --poll-timeout 25 \
        >"$dir/server.log" 2>&1 &
    server=$!
    # Under valgrind the start (the admin's password hash above all) takes many seconds.
    for _ in $(seq 240); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.5
    done
    if ! timeout 300 "$LOADGEN" --url "http://127.0.0.1:$port" --admin-email "$EMAIL" \
        --admin-password "$PASSWORD" --polls 200 --rate "$RATE" \
        --duration $((messages / RATE)) --grace 3 --timeout 280 >"$dir/loadgen.txt" 2>&1; then
        kill -INT "$server" 2>/dev/null || true
        wait "$server" || true
        echo "load generator failed:" >&2
        tail -20 "$dir/loadgen.txt" >&2
        rm -rf "$dir"
        return 1
    fi
    kill -INT "$server"
    wait "$server" || true
    awk '/^summary:/ {print $2}' "$dir/out"
    rm -rf "$dir"
}

if [ "$#" -eq 0 ]; then
    set -- target/release/parley
fi
echo "| binary | instructions per message |"
echo "| --- | --- |"
for binary in "$@"; do
    small="$(count "$binary" "$SMALL")"
    large="$(count "$binary" "$LARGE")"
    echo "| $binary | $(( (large - small) / (LARGE - SMALL) )) |"
done
