#!/usr/bin/env bash
# Rooms side by side: shardbus against Socket.IO 4, same machine, same load tool, same run.
#
#   perf/room_compare.sh [rounds]     (default 3 rounds; RESULTS=0 to skip writing perf/RESULTS.md)
#
# Installs the Node packages (perf/socketio/package.json: socket.io, socket.io-client, ws) when
# missing, builds the release broker and shardbus-bench, starts shardbus (its shards on every core, rooms `bench.>`
# and `hist.>` with 1,000 publications of history) and a Socket.IO 4 server (websocket
# transport only), and runs two load tools against each in alternation, each the same for both
# brokers: `shardbus-bench room` (Rust, members multiplexed with poll(2); binary frames for
# shardbus, Engine.IO v4 for Socket.IO), light enough that the broker is what is measured, and
# perf/socketio/room_bench.js (Node: socket.io-client for Socket.IO, the WebSocket JSON mapping
# for shardbus), the client a Socket.IO user would run. Prints per scenario the median and spread of each and the ratios of the medians,
# and appends the table to perf/RESULTS.md with the command, nproc, CPU model and date.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/scripts/common.sh

rounds=${1:-3}
cores=$(nproc)
if [ ! -d perf/socketio/node_modules ]; then
  (cd perf/socketio && npm install --no-audit --no-fund --silent)
fi
cargo build --release -q --bin shardbus --bin shardbus-bench

config=$(mktemp --suffix .toml)
cat >"$config" <<'EOF'
[[rooms]]
pattern = "bench.>"
[[rooms]]
pattern = "hist.>"
history_size = 1000
recover = true
EOF
sb_port=$(free_port)
sb_http=$(free_port)
sio_port=$(free_port)
target/release/shardbus --config "$config" --listen "127.0.0.1:$sb_port" --http-listen "127.0.0.1:$sb_http" \
  --shards "$cores" --spin-before-park-us 0 2>/tmp/room-compare-shardbus.log &
sb_pid=$!
(cd perf/socketio && exec node server.js "$sio_port") >/tmp/room-compare-socketio.log 2>&1 &
sio_pid=$!
cleanup() {
  kill "$sb_pid" "$sio_pid" 2>/dev/null || true
  wait "$sb_pid" "$sio_pid" 2>/dev/null || true
  rm -f "$config"
}
trap cleanup EXIT
wait_for_ports "$sb_http" "$sio_port"

bench() { (cd perf/socketio && node room_bench.js "$@"); }
sb=(--target shardbus --url "ws://127.0.0.1:$sb_http/ws" --server-pid "$sb_pid")
sio=(--target socketio --url "http://127.0.0.1:$sio_port" --server-pid "$sio_pid")

# name | load arguments (both brokers)
scenarios=(
  "1,000 members, saturated|--members 1000 --msgs 300 --window 64 --procs 2"
  "100 members, paced 500 msgs/s|--members 100 --msgs 2000 --rate 500 --procs 2"
)
results=$(mktemp)
for ((round = 1; round <= rounds; round++)); do
  for entry in "${scenarios[@]}"; do
    name=${entry%%|*}
    read -r -a load <<<"${entry#*|}"
    echo "round $round: $name" >&2
    printf '%s\tshardbus\t%s\n' "$name" "$(bench "${sb[@]}" --room bench.room "${load[@]}")" >>"$results"
    printf '%s\tsocketio\t%s\n' "$name" "$(bench "${sio[@]}" --room bench.room "${load[@]}")" >>"$results"
  done
  name="shardbus-bench room: 1,000 members, window 64"
  printf '%s\tshardbus\t%s\n' "$name" "$(rust_room "$sb_pid" --target "ws://127.0.0.1:$sb_http" -n 2000 -s 64 room -m 1000 -w 64)" >>"$results"
  printf '%s\tsocketio\t%s\n' "$name" "$(rust_room "$sio_pid" --target "socketio://127.0.0.1:$sio_port" -n 300 -s 64 room -m 1000 -w 64)" >>"$results"
  name="shardbus-bench room: 1,000 members, window 64, history room"
  printf '%s\tshardbus\t%s\n' "$name" "$(rust_room "$sb_pid" --target "ws://127.0.0.1:$sb_http" -n 2000 -s 64 room -m 1000 -w 64 --room hist.rust)" >>"$results"
  name="1,000 members, saturated, history room"
  printf '%s\tshardbus\t%s\n' "$name" "$(bench "${sb[@]}" --room hist.room --members 1000 --msgs 300 --window 64 --procs 2)" >>"$results"
  name="recover 1,000 missed publications"
  printf '%s\tshardbus\t%s\n' "$name" "$(bench "${sb[@]}" --room "hist.recover$round" --recover 1000)" >>"$results"
done

table=$(python3 perf/scripts/room_table.py "$results")
echo "$table"
if [ "${RESULTS:-1}" != 0 ]; then
  results_section "rooms: shardbus vs Socket.IO 4, side by side (perf/room_compare.sh)" "$table" \
    "Command: \`perf/room_compare.sh $rounds\` ($rounds rounds, alternating). $(machine)." \
    "shardbus $(git rev-parse --short HEAD) (--shards $cores, spin 0); Socket.IO $(cd perf/socketio && node -p 'require("socket.io/package.json").version') on Node $(node --version), one process, websocket transport only. Load on the same cores: \`shardbus-bench room\` (Rust, one reader thread) and perf/socketio/room_bench.js (Node, 2 processes), 64-byte payloads."
fi
rm -f "$results"
