#!/usr/bin/env bash
# Two shardbus binaries and nats-server on synchronous request/reply, side by side in one run:
# all three brokers up at once, rounds alternating over them, one requester and one responder
# (16 B), unpaced and at a fixed rate. Each run's placement comes from WELCOME, so the table is
# per placement. For "did this change make a request cheaper?":
#
#   perf/scripts/ab_reqrep.sh OLD_BINARY NEW_BINARY [rounds]
#
# Prints one table (median, min–max per broker, placement and pace); RATE (default 1000) sets
# the paced rate. OLD_FLAGS and NEW_FLAGS are extra flags for each (one binary twice, two
# settings: `OLD_FLAGS= NEW_FLAGS="--set runtime.x=1" ab_reqrep.sh B B`).
set -euo pipefail
cd "$(dirname "$0")/../.."
source perf/scripts/common.sh
old=$1 new=$2 rounds=${3:-6} rate=${RATE:-1000}
cargo build --release -q --bin shardbus-bench
bench=target/release/shardbus-bench
ensure_nats_server
out=$(mktemp)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -f "$out"' EXIT

declare -A target pid_of
for which in old new; do
  bin=$new flags=${NEW_FLAGS:-}
  [ "$which" = old ] && bin=$old flags=${OLD_FLAGS:-}
  port=$(free_port)
  # shellcheck disable=SC2086 # extra flags are meant to split
  "$bin" --listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 --shards 2 $flags 2>/dev/null &
  pid_of[$which]=$! target[$which]="shardbus://127.0.0.1:$port"
  pids+=($!)
  wait_for_ports "$port"
done
port=$(free_port)
GOMAXPROCS=2 nats-server -a 127.0.0.1 -p "$port" 2>/dev/null &
pid_of[nats]=$! target[nats]="nats://127.0.0.1:$port"
pids+=($!)
wait_for_ports "$port"

for round in $(seq "$rounds"); do
  for which in old new nats; do
    for pace in unpaced paced; do
      args="-n 5000"
      [ "$pace" = paced ] && args="-n 2000 --rate $rate"
      # shellcheck disable=SC2086 # the arguments are meant to split
      $bench --json -t "${target[$which]}" $args --server-pid "${pid_of[$which]}" reqrep |
        python3 -c 'import json,sys; r=json.load(sys.stdin); r["broker"]=sys.argv[1]; r["pace"]=sys.argv[2]; print(json.dumps(r))' \
          "$which" "$pace" >>"$out"
    done
  done
  echo "round $round done" >&2
done

python3 - "$out" <<'EOF'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
groups = {}
for r in rows:
    place = (r.get("placement") or {}).get("kind", "—")
    groups.setdefault((r["pace"], r["broker"], place), []).append(r)
def span(xs, fmt="{:,.0f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"
print("| pace | broker | placement | runs | req/s | p50 µs | p99 µs | server CPU % | CPU µs/request |")
print("|---|---|---|---|---|---|---|---|---|")
for (pace, broker, place), rs in sorted(groups.items()):
    rate = [r["received_per_sec"] for r in rs]
    cpu = [r["server_cpu_percent"] for r in rs]
    per = [r["server_cpu_percent"] / 100 / r["received_per_sec"] * 1e6 for r in rs]
    print(f"| {pace} | {broker} | {place} | {len(rs)} | {span(rate)} | {span([r['latency']['p50_us'] for r in rs])} "
          f"| {span([r['latency']['p99_us'] for r in rs])} | {span(cpu)} | {span(per)} |")
EOF
