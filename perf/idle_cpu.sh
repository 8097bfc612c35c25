#!/usr/bin/env bash
# An idle broker's CPU: shardbus and nats-server side by side, each holding 10,000 subscribed
# connections that send nothing, measured over a quiet window after they are all connected.
#
#   perf/idle_cpu.sh [connections] [seconds]   (default 10000 and 30; RESULTS=0 to skip
#                                               writing perf/RESULTS.md)
#
# Each broker is started on loopback with the machine's core count, `shardbus-bench conns`
# opens and subscribes the connections and holds them; once it says it is holding, the
# broker's CPU (user + system, /proc) is read at the start and end of the window. Both
# brokers' keepalive pings run as configured by default (shardbus: `limits.ping_interval_ms`, 30 s;
# NATS: `ping_interval` 2 min), so the window sees what an idle broker really does.
set -euo pipefail
cd "$(dirname "$0")/.."
source perf/scripts/common.sh

conns=${1:-10000}
window=${2:-30}
cores=$(nproc)
ensure_nats_server
cargo build --release -q --bin shardbus --bin shardbus-bench
bench=target/release/shardbus-bench

# Prints the broker's CPU over the window as a percentage of one core.
measure() {
  local target=$1 pid=$2 log holder before after
  log=$(mktemp)
  $bench --target "$target" conns -c "$conns" --hold-secs $((window + 120)) >/dev/null 2>"$log" &
  holder=$!
  for _ in $(seq 1200); do
    grep -q holding "$log" && break
    kill -0 "$holder" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.2
  done
  # Let the connection burst's work settle before the window opens.
  sleep 5
  before=$(cpu "$pid")
  sleep "$window"
  after=$(cpu "$pid")
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  rm -f "$log"
  python3 -c 'import sys; print("%.2f" % ((float(sys.argv[2]) - float(sys.argv[1])) * 100 / float(sys.argv[3])))' "$before" "$after" "$window"
}

sb_port=$(free_port)
target/release/shardbus --listen "127.0.0.1:$sb_port" --http-listen 127.0.0.1:0 --shards "$cores" 2>/dev/null &
sb_pid=$!
nats_port=$(free_port)
GOMAXPROCS=$cores nats-server -a 127.0.0.1 -p "$nats_port" >/dev/null 2>&1 &
nats_pid=$!
trap 'kill $sb_pid $nats_pid 2>/dev/null || true' EXIT
wait_for_ports "$sb_port" "$nats_port"

sb=$(measure "shardbus://127.0.0.1:$sb_port" "$sb_pid")
nats=$(measure "nats://127.0.0.1:$nats_port" "$nats_pid")
table="| broker | connections held | CPU over ${window} s, % of one core |
|---|---|---|
| shardbus ($cores shards) | $conns | $sb |
| nats-server $(nats-server --version | awk '{print $2}') (GOMAXPROCS=$cores) | $conns | $nats |"
echo "$table"
if [ "${RESULTS:-1}" != 0 ]; then
  results_section "an idle broker holding $conns connections (perf/idle_cpu.sh)" "$table" \
    "Command: \`perf/idle_cpu.sh $conns $window\`. $(machine)." \
    "Each broker holds $conns subscribed connections from \`shardbus-bench conns\` that send nothing; CPU (user + system, /proc) over a ${window} s window that opens 5 s after the last connection subscribed."
fi
