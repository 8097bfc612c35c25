#!/usr/bin/env bash
# Across nodes side by side: two shardbus nodes over one Redis against two Socket.IO 4 nodes
# with @socket.io/redis-adapter over the same Redis, same machine, same load tool, same run.
#
#   perf/cluster_compare.sh [rounds]     (default 3 rounds; RESULTS=0 to skip writing perf/RESULTS.md)
#
# The members of one room connect to the second node and the publisher to the first, so every
# delivery crossed Redis. A last scenario uses a room whose history shardbus keeps in Redis
# (kept, then delivered in the room's one order on the second node). Each shardbus node runs one shard (the two nodes have the machine's
# two cores between them, as the two single-threaded Socket.IO processes do); the load tool is
# perf/socketio/room_bench.js (Node, 2 processes: socket.io-client for Socket.IO, the WebSocket
# JSON mapping for shardbus). Server CPU is both nodes' and Redis's. Prints per scenario the
# median and spread of each and the ratios, and appends the table to perf/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/scripts/common.sh

rounds=${1:-3}
cores=$(nproc)
(cd perf/socketio && [ -d node_modules/@socket.io/redis-adapter ] || npm install --no-audit --no-fund --silent)
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
cargo build --release -q --bin shardbus --bin shardbus-bench

config=$(mktemp --suffix .toml)
printf '[[rooms]]\npattern = "bench.>"\n\n[[rooms]]\npattern = "hist.>"\nhistory_size = 1000\n' >"$config"
redis_port=$(free_port)
redis_dir=$(mktemp -d)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" >/dev/null &
redis_pid=$!
pids=("$redis_pid")
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  rm -rf "$config" "$redis_dir"
}
trap cleanup EXIT
wait_for_ports "$redis_port"
redis_url="redis://127.0.0.1:$redis_port/"

sb_http=() sb_pids=() sio_ports=() sio_pids=()
for node in 1 2; do
  port=$(free_port) http=$(free_port)
  target/release/shardbus --config "$config" --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$http" \
    --shards 1 --spin-before-park-us 0 --set "cluster.redis_url=$redis_url" \
    --set "cluster.node_id=bench$node" --set history.backend=redis --set "redis.url=$redis_url" \
    2>"/tmp/cluster-compare-shardbus$node.log" &
  sb_pids+=($!) sb_http+=("$http")
  port=$(free_port)
  (cd perf/socketio && exec node server.js "$port" "$redis_url") >"/tmp/cluster-compare-socketio$node.log" 2>&1 &
  sio_pids+=($!) sio_ports+=("$port")
done
pids+=("${sb_pids[@]}" "${sio_pids[@]}")
wait_for_ports "${sb_http[@]}" "${sio_ports[@]}"
# The members join on node 2 and the publisher's first message must find their interest on
# node 1: wait until node 1 sees node 2.
for _ in $(seq 100); do
  curl -s "127.0.0.1:${sb_http[0]}/api/v1/cluster" | grep -q bench2 && break
  sleep 0.1
done

bench() { (cd perf/socketio && node room_bench.js "$@"); }
join_pids() { local IFS=,; echo "$*"; }
sb_all=$(join_pids "${sb_pids[@]}" "$redis_pid")
sio_all=$(join_pids "${sio_pids[@]}" "$redis_pid")
sb=(--target shardbus --url "ws://127.0.0.1:${sb_http[1]}/ws" --publish-url "ws://127.0.0.1:${sb_http[0]}/ws"
    --server-pid "$sb_all")
sio=(--target socketio --url "http://127.0.0.1:${sio_ports[1]}" --publish-url "http://127.0.0.1:${sio_ports[0]}"
     --server-pid "$sio_all")

# name | load arguments (both brokers)
scenarios=(
  "across nodes: 1,000 members, saturated|--members 1000 --msgs 300 --window 64 --procs 2"
  "across nodes: 100 members, paced 500 msgs/s|--members 100 --msgs 2000 --rate 500 --procs 2"
)
results=$(mktemp)
for ((round = 1; round <= rounds; round++)); do
  for entry in "${scenarios[@]}"; do
    name=${entry%%|*}
    read -r -a load <<<"${entry#*|}"
    echo "round $round: $name" >&2
    printf '%s\tshardbus\t%s\n' "$name" "$(bench "${sb[@]}" --room "bench.room$round" "${load[@]}")" >>"$results"
    printf '%s\tsocketio\t%s\n' "$name" "$(bench "${sio[@]}" --room "bench.room$round" "${load[@]}")" >>"$results"
  done
  # The Rust load tool (lighter than Node: the brokers, not the tool, are what is measured),
  # on a plain room and on a room whose history shardbus keeps in Redis (kept, then delivered
  # on node 2 in the room's one order; Socket.IO has no history: its row is a plain room's).
  for room in bench hist; do
    case $room in
      bench) name="across nodes, shardbus-bench room: 1,000 members, window 64" ;;
      hist) name="across nodes, shardbus-bench room: history room in Redis (Socket.IO: plain), 1,000 members, window 64" ;;
    esac
    echo "round $round: $name" >&2
    printf '%s\tshardbus\t%s\n' "$name" "$(rust_room "$sb_all" --target "ws://127.0.0.1:${sb_http[1]}" \
      -n 2000 -s 64 room -m 1000 -w 64 --room "$room.rust$round" --publish-to "ws://127.0.0.1:${sb_http[0]}")" >>"$results"
    printf '%s\tsocketio\t%s\n' "$name" "$(rust_room "$sio_all" --target "socketio://127.0.0.1:${sio_ports[1]}" \
      -n 300 -s 64 room -m 1000 -w 64 --room "$room.rust$round" --publish-to "socketio://127.0.0.1:${sio_ports[0]}")" >>"$results"
  done
done
table=$(python3 perf/scripts/room_table.py "$results")
echo "$table"
if [ "${RESULTS:-1}" != 0 ]; then
  results_section "across nodes: shardbus over Redis vs Socket.IO 4 with its Redis adapter (perf/cluster_compare.sh)" "$table" \
    "Command: \`perf/cluster_compare.sh $rounds\` ($rounds rounds, alternating). $(machine)." \
    "shardbus $(git rev-parse --short HEAD): two nodes of one shard each (spin 0) over redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'); Socket.IO $(cd perf/socketio && node -p 'require("socket.io/package.json").version') with @socket.io/redis-adapter $(cd perf/socketio && node -p 'require("@socket.io/redis-adapter/package.json").version') on Node $(node --version), two processes, websocket transport. Members on node 2, the publisher on node 1: every delivery crossed Redis. Load on the same cores: perf/socketio/room_bench.js (Node, 2 processes) and \`shardbus-bench room --publish-to\` (Rust, one reader thread), 64-byte payloads. Server CPU: both nodes and Redis."
fi
rm -f "$results"
