#!/usr/bin/env bash
# The IoT sample in one command: `samples/iot/run.sh [DEVICES]` builds everything, starts the
# broker with samples/iot/iot.toml, two aggregator instances, the alerts (samples/iot/rules.toml,
# pushed to the user `operator`) and DEVICES simulated devices (200 by default, 1 reading a
# second each; site4.d004's sensor fails after 20 s for 15 s), until Ctrl-C stops them all.
# The live page: http://127.0.0.1:7480/iot/ with the token `operator-token`.
set -euo pipefail
cd "$(dirname "$0")/../.."
devices="${1:-200}"
cargo build --release --quiet --bin shardbus --bin shardbus-iot
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
target/release/shardbus --config samples/iot/iot.toml > /tmp/shardbus-iot.log 2>&1 &
pids+=($!)
answers() { (exec 3<>/dev/tcp/127.0.0.1/7400) 2>/dev/null; }
for _ in $(seq 100); do answers && break; sleep 0.1; done
answers || { echo "the broker did not start: /tmp/shardbus-iot.log" >&2; exit 1; }
iot=(target/release/shardbus-iot --server 127.0.0.1:7400)
"${iot[@]}" --token service-token aggregator & pids+=($!)
"${iot[@]}" --token service-token aggregator & pids+=($!)
"${iot[@]}" --token service-token alerts --rules samples/iot/rules.toml & pids+=($!)
"${iot[@]}" --token device-token sim --devices "$devices" --sites 4 --rate 1 \
  --faulty site4.d004 --fault-after-ms 20000 --fault-for-ms 15000 & pids+=($!)
echo "running (broker log /tmp/shardbus-iot.log); the page: http://127.0.0.1:7480/iot/ (token operator-token); Ctrl-C stops" >&2
wait
