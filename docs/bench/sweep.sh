#!/usr/bin/env bash
# Runs the load generator over the benchmark grid and writes one JSON file per run into
# docs/bench/results/ (then run docs/bench/chart.py to draw the charts).
#
#   docs/bench/sweep.sh              # full grid, 10 s per run (about 3 minutes)
#   DURATION=5 docs/bench/sweep.sh   # shorter runs
#
# Every run starts its own server on 127.0.0.1 with a temporary database and kills it at the
# end; the generator runs on the same machine (see docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${DURATION:-10}"
LABEL="${LABEL:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
OUT=docs/bench/results
mkdir -p "$OUT"

cargo build --release --bin parley --example loadgen
LOADGEN=target/release/examples/loadgen

failed=0
run() {
  local name="$1"; shift
  echo "== $name: $*"
  if ! "$LOADGEN" "$@" --duration "$DURATION" --label "$LABEL" --json "$OUT/$name.json"; then
    echo "!! $name FAILED"
    failed=1
  fi
  sleep 2 # let TIME_WAIT sockets and the page cache calm down between runs
}

for polls in 1000 5000 10000 18000; do
  run "polls-$polls" --polls "$polls" --rate 1000
done
for senders in 1 4 16 64; do
  run "senders-$senders" --polls 1000 --senders "$senders"
done

echo "results in $OUT/"
exit "$failed"
