#!/usr/bin/env bash
# One broker under the loads that once stalled a shard, for as long as asked: request/reply
# unpaced and paced, a saturating publisher (a session that never suspends), each followed by
# an idle gap of 1.5-3 s (where a shard parks and its timers must still run). For "can a
# change to the executor's park lose a wake or a timer?":
#
#   perf/scripts/soak.sh BINARY [minutes]
#
# Fails (exit 1) when the broker exits or a paced run falls below 90% of its rate; prints one
# line per run and a summary.
set -euo pipefail
cd "$(dirname "$0")/../.."
source perf/scripts/common.sh
bin=$1 minutes=${2:-30} rate=${RATE:-1000}
cargo build --release -q --bin shardbus-bench
bench=target/release/shardbus-bench
out=$(mktemp)
port=$(free_port)
"$bin" --listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 --shards 2 2>"$out.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out" "$out.log"' EXIT
wait_for_ports "$port"
target="shardbus://127.0.0.1:$port"

deadline=$(($(date +%s) + minutes * 60))
runs=0 slow=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  for load in reqrep paced pubsub; do
    case $load in
      reqrep) args=(-n 20000 reqrep) ;;
      paced) args=(-n 3000 --rate "$rate" reqrep) ;;
      pubsub) args=(-n 5000000 pubsub) ;;
    esac
    report=""
    if ! report=$(timeout 120 "$bench" --json -t "$target" "${args[@]}"); then
      echo "run $runs ($load): the load tool failed" >&2
      slow=$((slow + 1))
    fi
    runs=$((runs + 1))
    # The report's last line: its rate, p99 and placement.
    read -r got line < <(python3 -c '
import json, sys
r = json.loads(sys.argv[1].splitlines()[-1])
rate, p99 = r["received_per_sec"], r["latency"]["p99_us"]
kind = (r.get("placement") or {}).get("kind", "")
print(int(rate), f"{sys.argv[2]} {rate:,.0f}/s p99 {p99:,.0f} us {kind}")' \
      "$report" "$load" 2>/dev/null || echo "0 $load (no report)")
    echo "$(date +%T) run $runs: $line"
    if [ "$load" = paced ] && [ "$got" -lt $((rate * 9 / 10)) ]; then
      echo "run $runs: paced at $got/s, below 90% of $rate/s" >&2
      slow=$((slow + 1))
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "the broker exited after $runs runs:" >&2
      tail -5 "$out.log" >&2
      exit 1
    fi
    sleep "$(python3 -c 'import random; print(random.uniform(1.5, 3))')"
  done
done
echo "soak: $runs runs in $minutes min, $slow slow or failed, the broker alive (pid $pid)"
[ "$slow" -eq 0 ]
