#!/usr/bin/env bash
# The IoT sample's capacity: how many devices at 10 readings a second one aggregator instance
# keeps up with on this machine, and who used the CPU.
#
#   perf/iot_capacity.sh [devices...]   (default 1000 2000 5000 10000 20000; RESULTS=0 to skip
#                                        writing perf/RESULTS.md; STEP_S=10 seconds per step)
#
# For each fleet size: a fresh broker from samples/iot/iot.toml (every device's subject a room
# retaining its last reading), one `shardbus-iot aggregator` and `shardbus-iot sim` with that
# many devices at 10 readings/s (jitter 0.2, no dropouts, 4 connections) for STEP_S seconds.
# Halfway the aggregator's `iot.query.stats` says how far behind the devices its last reading
# was; at the end, how many it took in. It keeps up when it took in every reading sent and was
# under a second behind; whether the devices reached their rate is its own column (the three
# processes share the machine's cores). CPU: each process's user + system time over the step,
# as a share of one core.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/scripts/common.sh

fleets=("$@")
[ ${#fleets[@]} -gt 0 ] || fleets=(1000 2000 5000 10000 20000)
step=${STEP_S:-10}
cargo build --release -q --bin shardbus --bin shardbus-iot --bin shardbus-cli

stats() {
  target/release/shardbus-cli --server "127.0.0.1:$port" --token operator-token --json req iot.query.stats \
    | python3 -c 'import json,sys; p=json.load(sys.stdin)["payload"]; print(p["received"], p["behind_ms"])'
}

rows=()
running=()
trap 'kill "${running[@]}" 2>/dev/null || true' EXIT
for devices in "${fleets[@]}"; do
  port=$(free_port)
  http=$(free_port)
  target/release/shardbus --config samples/iot/iot.toml --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$http" \
    --set 'http.static_dir=""' 2>/tmp/iot-capacity-broker.log &
  broker=$!
  wait_for_ports "$port"
  target/release/shardbus-iot --server "127.0.0.1:$port" --token service-token aggregator &
  aggregator=$!
  running=("$broker" "$aggregator")
  for _ in $(seq 100); do stats >/dev/null 2>&1 && break; sleep 0.1; done
  cpu_before=("$(cpu $broker)" "$(cpu $aggregator)")
  start=$(date +%s.%N)
  target/release/shardbus-iot --server "127.0.0.1:$port" --token device-token sim --devices "$devices" --sites 10 \
    --rate 10 --jitter 0.2 --dropout 0 --connections 4 --duration-ms $((step * 1000)) 2>/tmp/iot-capacity-sim.log &
  sim=$!
  sleep $((step / 2))
  read -r _ behind < <(stats)
  sim_cpu=$(cpu $sim)
  wait $sim
  elapsed=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)")
  sent=$(sed -n 's/.*: \([0-9]*\) readings sent/\1/p' /tmp/iot-capacity-sim.log)
  sleep 1
  read -r received _ < <(stats)
  cpu_after=("$(cpu $broker)" "$(cpu $aggregator)")
  row=$(python3 -c '
import sys
devices, step, elapsed, sent, received, behind = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
broker = (float(sys.argv[8]) - float(sys.argv[7])) / elapsed * 100
aggregator = (float(sys.argv[10]) - float(sys.argv[9])) / elapsed * 100
sim = float(sys.argv[11]) / (step / 2) * 100
rate = sent / step
keeps = "yes" if received >= sent and behind < 1000 else "no"
reached = rate / (devices * 10) * 100
print(f"| {devices:,} | {devices * 10:,} | {rate:,.0f} ({reached:.0f}%) | {received:,} of {sent:,} | {behind} | {keeps} | {broker:.0f}% | {aggregator:.0f}% | ~{sim:.0f}% |")
' "$devices" "$step" "$elapsed" "$sent" "$received" "$behind" "${cpu_before[0]}" "${cpu_after[0]}" "${cpu_before[1]}" "${cpu_after[1]}" "$sim_cpu")
  echo "$row"
  rows+=("$row")
  kill "$aggregator" "$broker" 2>/dev/null || true
  wait "$aggregator" "$broker" 2>/dev/null || true
done

table=$(printf '%s\n' "| devices | readings/s asked | sent/s (of asked) | aggregator took in | behind at half-time, ms | aggregator keeps up | broker CPU | aggregator CPU | sim CPU |" \
  "|---:|---:|---:|---:|---:|:---:|---:|---:|---:|" "${rows[@]}")
echo "$table"
if [ "${RESULTS:-1}" != 0 ]; then
  results_section "IoT sample: devices at 10 readings/s one aggregator keeps up with (perf/iot_capacity.sh)" "$table" \
    "Command: \`perf/iot_capacity.sh ${fleets[*]}\` (STEP_S=$step). $(machine)." \
    "shardbus $(git rev-parse --short HEAD), default shards (one per core), samples/iot/iot.toml; the broker, the aggregator and the sim share the machine's cores. CPU as a share of one core (100% = one core busy); the sim's over the first half of the step."
fi
