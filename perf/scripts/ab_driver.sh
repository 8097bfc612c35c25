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
cargo build --release -q --bin shardbus --bin shardbus-bench
bench=target/release/shardbus-bench
ensure_nats_server
out=$(mktemp)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -f "$out"' EXIT

declare -A target pid_of
port=$(free_port)
target/release/shardbus --listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 --shards 2 2>/dev/null &
pid_of[shardbus]=$! target[shardbus]="shardbus://127.0.0.1:$port"
pids+=($!)
wait_for_ports "$port"
port=$(free_port)
GOMAXPROCS=2 nats-server -a 127.0.0.1 -p "$port" 2>/dev/null &
pid_of[nats]=$! target[nats]="nats://127.0.0.1:$port"
pids+=($!)
wait_for_ports "$port"

for round in $(seq "$rounds"); do
  for broker in shardbus nats; do
    for driver in threads poll; do
      $bench --json -t "${target[$broker]}" -n "${N:-5000}" --server-pid "${pid_of[$broker]}" \
        reqrep "${load[@]}" --driver "$driver" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); r["broker"]=sys.argv[1]; r["driver"]=sys.argv[2]; print(json.dumps(r))' \
          "$broker" "$driver" >>"$out"
    done
  done
  echo "round $round done" >&2
done

python3 - "$out" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
groups = {}
for r in rows:
    groups.setdefault((r["broker"], r["driver"]), []).append(r)
def span(xs, fmt="{:,.0f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"
print("| broker | driver | runs | req/s | p50 µs | p99 µs | server CPU % | tool CPU % | server CPU µs/request |")
print("|---|---|---|---|---|---|---|---|---|")
for (broker, driver), rs in sorted(groups.items()):
    per = [r["server_cpu_percent"] / 100 / r["received_per_sec"] * 1e6 for r in rs]
    print(f"| {broker} | {driver} | {len(rs)} | {span([r['received_per_sec'] for r in rs])} "
          f"| {span([r['latency']['p50_us'] for r in rs])} | {span([r['latency']['p99_us'] for r in rs])} "
          f"| {span([r['server_cpu_percent'] for r in rs])} | {span([r['tool_cpu_percent'] for r in rs])} | {span(per, '{:,.1f}')} |")
PY
