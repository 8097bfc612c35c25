#!/usr/bin/env bash
# History rooms with their history in memory against history in Redis Streams, side by side in
# one run: what a publication's trip to Redis (the APPEND script, pipelined by the bridge
# thread) costs a history room's deliveries and latency.
#
#   perf/history_compare.sh [rounds]     (default 3 rounds; RESULTS=0 to skip writing perf/RESULTS.md)
#
# Two brokers at a time would split the two cores; instead each round starts one broker with
# `history.backend = "memory"`, runs the load, stops it, then the same with `"redis"` (a
# redis-server beside it, no persistence). Load: `shardbus-bench room` (Rust), 100 and 1,000
# members of a room with 1,000 publications of history, 64 messages in flight, 64-byte payloads.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/scripts/common.sh

rounds=${1:-3}
cores=$(nproc)
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
cargo build --release -q --bin shardbus --bin shardbus-bench

config=$(mktemp --suffix .toml)
printf '[[rooms]]\npattern = "hist.>"\nhistory_size = 1000\nrecover = true\n' >"$config"
redis_port=$(free_port)
redis_dir=$(mktemp -d)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" >/dev/null &
redis_pid=$!
sb_pid=
cleanup() {
  kill "$redis_pid" $sb_pid 2>/dev/null || true
  wait "$redis_pid" $sb_pid 2>/dev/null || true
  rm -rf "$config" "$redis_dir"
}
trap cleanup EXIT
wait_for_ports "$redis_port"

# One broker with history in `$1`, one load; prints room_bench.js's fields.
run() {
  local backend=$1 members=$2 room=$3 http
  http=$(free_port)
  target/release/shardbus --config "$config" --listen "127.0.0.1:$(free_port)" --http-listen "127.0.0.1:$http" \
    --shards "$cores" --set "history.backend=$backend" --set "redis.url=redis://127.0.0.1:$redis_port/" \
    2>/tmp/history-compare-shardbus.log &
  sb_pid=$!
  wait_for_ports "$http"
  rust_room "$sb_pid" --target "ws://127.0.0.1:$http" -n 2000 -s 64 room -m "$members" -w 64 --room "$room"
  kill "$sb_pid"
  wait "$sb_pid" 2>/dev/null || true
  sb_pid=
}

results=$(mktemp)
for ((round = 1; round <= rounds; round++)); do
  for members in 100 1000; do
    name="history room, $members members, window 64"
    echo "round $round: $name" >&2
    # room_table.py's columns: "shardbus" is the Redis backend here, "socketio" the memory one.
    printf '%s\tshardbus\t%s\n' "$name" "$(run redis "$members" "hist.r$round.$members")" >>"$results"
    printf '%s\tsocketio\t%s\n' "$name" "$(run memory "$members" "hist.m$round.$members")" >>"$results"
  done
done
table=$(python3 perf/scripts/room_table.py "$results" | sed '1s/| shardbus (median, min–max) | Socket.IO (median, min–max) | shardbus \/ Socket.IO |/| history in Redis (median, min–max) | history in memory (median, min–max) | Redis \/ memory |/')
echo "$table"
if [ "${RESULTS:-1}" != 0 ]; then
  results_section "history rooms: history in Redis Streams vs in memory (perf/history_compare.sh)" "$table" \
    "Command: \`perf/history_compare.sh $rounds\` ($rounds rounds, the two backends alternating). $(machine)." \
    "shardbus $(git rev-parse --short HEAD) (--shards $cores), one broker at a time; redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') beside it, no persistence. Load: \`shardbus-bench room\` (Rust) on the same cores, 2,000 publications of 64 bytes per run. Server CPU is the broker's only (Redis's is not counted)."
fi
rm -f "$results"
