#!/usr/bin/env bash
# Two shardbus binaries on the plain publish path, side by side in one run: alternating
# rounds, a fresh broker each, the same load tool. For "did this change slow publishing?":
#
#   perf/scripts/ab_publish.sh OLD_BINARY NEW_BINARY [rounds]
#
# Build the old one from a worktree with its own target directory, e.g.
#   git worktree add /tmp/old REV && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target \
#     cargo build --release --bin shardbus)
set -euo pipefail
cd "$(dirname "$0")/../.."
old=$1 new=$2 rounds=${3:-3}
source perf/scripts/common.sh
cargo build --release -q --bin shardbus-bench
bench=target/release/shardbus-bench
for round in $(seq "$rounds"); do
  for which in old new; do
    bin=$new; [ "$which" = old ] && bin=$old
    port=$(free_port)
    "$bin" --listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 --shards 2 2>/dev/null &
    pid=$!
    wait_for_ports "$port"
    for args in "-n 2000000 pubsub" "-n 500000 pubsub -S 4" "-n 1000000 queue -w 4"; do
      # shellcheck disable=SC2086 # the arguments are meant to split
      rate=$($bench --json --target "shardbus://127.0.0.1:$port" $args |
        python3 -c 'import json,sys; print(int(json.load(sys.stdin)["received_per_sec"]))')
      echo "$round $which $args $rate"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
