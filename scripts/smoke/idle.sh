#!/bin/bash
# A release broker left idle (15 minutes by default, IDLE_SECS to change), then asked for its
# health, given a subscriber on every shard and a publish, and stopped with SIGTERM: it must
# still accept, route, and exit 0 within its grace period. (glommio's waker count once broke
# an idle broker's accept after 11 minutes.) Build first: cargo build --release --bin shardbus
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/shardbus-idle}; mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(free_port); H=$(free_port)
target/release/shardbus --listen 127.0.0.1:$P --http-listen 127.0.0.1:$H > "$OUT/broker.log" 2>&1 &
PID=$!
echo "started pid $PID at $(date -u +%T), idle for ${IDLE_SECS:-915} s"
sleep "${IDLE_SECS:-915}"
echo "after idle: $(date -u +%T)"
curl -s -m 5 "http://127.0.0.1:$H/healthz"; echo
python3 scripts/smoke/pubsub_probe.py "$P"
echo "waker panics in the log: $(grep -c 'Waker invariant' "$OUT/broker.log")"
T0=$(date +%s.%N); kill -TERM $PID; wait $PID; RC=$?; T1=$(date +%s.%N)
echo "exit code $RC after $(echo "$T1 - $T0" | bc) s"
