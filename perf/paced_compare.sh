#!/usr/bin/env bash
# Paced delivery, server CPU per delivery: shardbus at write delays 0, 1 ms and 5 ms against
# Socket.IO 4 (WebSocket, a room of 100 members, 1,000 msgs/s, perf/socketio/room_bench.js) and
# against nats-server (TCP, 100 subscribers, 1,000 msgs/s, shardbus-bench), all brokers running
# at once on loopback, rounds alternating.
#
#   perf/paced_compare.sh [rounds]   (default 3; RATE=<msgs/s>, default 1000; prints the table,
#                                    perf/RESULTS.md is by hand)
set -euo pipefail
cd "$(dirname "$0")/.."
source perf/scripts/common.sh
ROUNDS=${1:-3}
RATE=${RATE:-1000}
[ -d perf/socketio/node_modules ] || (cd perf/socketio && npm install --no-audit --no-fund --silent)
ensure_nats_server
cargo build --release -q --bin shardbus --bin shardbus-bench
cfg=$(mktemp --suffix .toml); printf '[[rooms]]\npattern = "bench.>"\n' > $cfg
declare -A http port pid
for d in 0 1000 5000; do
  port[$d]=$(free_port); http[$d]=$(free_port)
  target/release/shardbus --config $cfg --listen 127.0.0.1:${port[$d]} --http-listen 127.0.0.1:${http[$d]} --shards 2 --set runtime.write_delay_us=$d 2>/dev/null &
  pid[$d]=$!
done
sio_port=$(free_port); (cd perf/socketio && exec node server.js "$sio_port") >/dev/null 2>&1 & sio_pid=$!
nats_port=$(free_port); GOMAXPROCS=2 nats-server -a 127.0.0.1 -p $nats_port >/dev/null 2>&1 & nats_pid=$!
trap 'kill ${pid[0]} ${pid[1000]} ${pid[5000]} $sio_pid $nats_pid 2>/dev/null; rm -f $cfg' EXIT
wait_for_ports ${http[0]} ${http[1000]} ${http[5000]} $sio_port $nats_port
out=$(mktemp)
for r in $(seq $ROUNDS); do
  for d in 0 1000 5000; do
    echo "ws delay$d $(cd perf/socketio && node room_bench.js --target shardbus --url ws://127.0.0.1:${http[$d]}/ws --server-pid ${pid[$d]} --room bench.room --members 100 --msgs 5000 --rate $RATE --procs 2)" >> $out
  done
  echo "ws socketio $(cd perf/socketio && node room_bench.js --target socketio --url http://127.0.0.1:$sio_port --server-pid $sio_pid --room bench.room --members 100 --msgs 5000 --rate $RATE --procs 2)" >> $out
  for d in 0 1000 5000; do
    echo "tcp delay$d $(target/release/shardbus-bench --json -t shardbus://127.0.0.1:${port[$d]} -n 5000 --rate $RATE --server-pid ${pid[$d]} pubsub -S 100 2>/dev/null)" >> $out
  done
  echo "tcp nats $(target/release/shardbus-bench --json -t nats://127.0.0.1:$nats_port -n 5000 --rate $RATE --server-pid $nats_pid pubsub -S 100 2>/dev/null)" >> $out
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kind, label, blob = line.split(' ', 2)
    try: d = json.loads(blob)
    except Exception: continue
    if kind == 'ws':
        v = (d['server_cpu_us_per_delivery'], d['deliveries_per_s'], d['p50_us'], d['p99_us'], d.get('lost', 0))
    else:
        v = (d['server_cpu_percent'] * 1e4 / d['received_per_sec'], d['received_per_sec'], d['latency']['p50_us'], d['latency']['p99_us'], d['missing'])
    rows.setdefault((kind, label), []).append(v)
print('| edge | broker | runs | server CPU µs/delivery | deliveries/s | p50 µs | p99 µs | lost |')
print('|---|---|---|---|---|---|---|---|')
for (kind, label), vs in rows.items():
    cols = list(zip(*vs))
    f = lambda c: '%.2f (%.2f–%.2f)' % (statistics.median(c), min(c), max(c))
    g = lambda c: '%.0f (%.0f–%.0f)' % (statistics.median(c), min(c), max(c))
    print(f'| {kind} | {label} | {len(vs)} | {f(cols[0])} | {g(cols[1])} | {g(cols[2])} | {g(cols[3])} | {int(sum(cols[4]))} |')
PY
