#!/usr/bin/env bash
# shardbus-bench's subscribers on a thread each (`--subscriber-threads 0`) against two threads
# (the default on 2 cores), against shardbus and nats-server side by side in one run: paced
# fan-out to 100 subscribers at 500 and 1,000 msgs/s, fan-out 1:4 and pubsub 1:1 unpaced.
# For "how much of the broker's CPU per delivery was the tool's wake-ups?":
#
#   ROUNDS=3 perf/scripts/ab_subscriber_threads.sh
#
# Prints one table (median, min–max) per shape, broker and subscriber threads.
set -euo pipefail
cd "$(dirname "$0")/../.."
source perf/scripts/common.sh
ab_start
start_shardbus shardbus target/release/shardbus
start_nats nats
for round in $(seq ${ROUNDS:-3}); do
  for shape in "paced500|-n 5000 --rate 500 pubsub -S 100" "paced1000|-n 5000 --rate 1000 pubsub -S 100" "fanout|-n 3000000 pubsub -S 4" "pubsub|-n 10000000 pubsub"; do
    name=${shape%%|*}; args=${shape#*|}
    for b in shardbus nats; do
      for st in 0 2; do
        $bench --json -t "${target[$b]}" --server-pid "${pid_of[$b]}" --subscriber-threads $st $args 2>/dev/null |
          tagged shape="$name" broker="$b" "subscriber threads=$st" >>"$out"
      done
    done
  done
  echo round $round >&2
done
python3 perf/scripts/medians.py "$out" "shape,broker,subscriber threads" "deliveries/s" \
  "server CPU µs/delivery" "p50 µs" "p99 µs" "server CPU %" "tool CPU %" "lost"
