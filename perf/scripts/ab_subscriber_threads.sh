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
cargo build --release -q --bin shardbus --bin shardbus-bench
ensure_nats_server
out=$(mktemp)
port=$(free_port)
target/release/shardbus --listen 127.0.0.1:$port --http-listen 127.0.0.1:0 --shards 2 2>/dev/null &
sb=$!
nport=$(free_port)
GOMAXPROCS=2 nats-server -a 127.0.0.1 -p $nport 2>/dev/null &
nats=$!
trap 'kill $sb $nats; rm -f "$out"' EXIT
wait_for_ports $port $nport
for round in $(seq ${ROUNDS:-3}); do
  for shape in "paced500|-n 5000 --rate 500 pubsub -S 100" "paced1000|-n 5000 --rate 1000 pubsub -S 100" "fanout|-n 3000000 pubsub -S 4" "pubsub|-n 10000000 pubsub"; do
    name=${shape%%|*}; args=${shape#*|}
    for b in sb nats; do
      if [ $b = sb ]; then t=shardbus://127.0.0.1:$port; p=$sb; else t=nats://127.0.0.1:$nport; p=$nats; fi
      for st in 0 2; do
        target/release/shardbus-bench --json -t $t --server-pid $p --subscriber-threads $st $args 2>/dev/null |
          python3 -c 'import json,sys; r=json.load(sys.stdin); r["broker"]=sys.argv[1]; r["st"]=sys.argv[2]; r["shape"]=sys.argv[3]; print(json.dumps(r))' $b $st $name >>"$out"
      done
    done
  done
  echo round $round >&2
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows=[json.loads(l) for l in open(sys.argv[1])]
keys=sorted({(r["shape"],r["broker"],r["st"]) for r in rows})
def span(xs,f="{:,.2f}"): return f"{f.format(statistics.median(xs))} ({f.format(min(xs))}–{f.format(max(xs))})"
print("| shape | broker | subscriber threads | runs | deliveries/s | server CPU µs/delivery | p50 µs | p99 µs | server CPU % | tool CPU % | lost |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for k in keys:
    rs=[r for r in rows if (r["shape"],r["broker"],r["st"])==k]
    per=[r["server_cpu_percent"]/100/r["received_per_sec"]*1e6 for r in rs]
    print(f"| {k[0]} | {k[1]} | {'one each' if k[2]=='0' else k[2]} | {len(rs)} | {span([r['received_per_sec'] for r in rs],'{:,.0f}')} | {span(per)} | {span([r['latency']['p50_us'] for r in rs],'{:,.0f}')} | {span([r['latency']['p99_us'] for r in rs],'{:,.0f}')} | {span([r['server_cpu_percent'] for r in rs],'{:,.0f}')} | {span([r['tool_cpu_percent'] for r in rs],'{:,.0f}')} | {sum(r['missing'] for r in rs)} |")
PY
