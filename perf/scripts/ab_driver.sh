#!/usr/bin/env bash
# shardbus-bench's two drivers of request/reply against shardbus and nats-server, side by side
# in one run: both brokers up at once, rounds alternating over broker and driver. For "how much
# of what we measured was the load tool?":
#
#   perf/scripts/ab_driver.sh [rounds] [reqrep arguments...]   (default: 5, -c 8 -r 4)
#
# Prints one table: requests per second, latency, the server's and the tool's CPU (each as a
# share of one core) and the server's CPU per request, median (min–max) per broker and driver.
set -euo pipefail
cd "$(dirname "$0")/../.."
source perf/scripts/common.sh
rounds=${1:-5}
shift || true
load=("$@")
[ ${#load[@]} -eq 0 ] && load=(-c 8 -r 4)
ab_start
start_shardbus shardbus target/release/shardbus
start_nats nats

for round in $(seq "$rounds"); do
  for broker in shardbus nats; do
    for driver in threads poll; do
      $bench --json -t "${target[$broker]}" -n "${N:-5000}" --server-pid "${pid_of[$broker]}" \
        reqrep "${load[@]}" --driver "$driver" |
        tagged broker="$broker" driver="$driver" >>"$out"
    done
  done
  echo "round $round done" >&2
done

python3 perf/scripts/medians.py "$out" broker,driver "req/s" "p50 µs" "p99 µs" \
  "server CPU %" "tool CPU %" "server CPU µs/request"
