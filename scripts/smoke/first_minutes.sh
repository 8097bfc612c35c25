#!/bin/bash
# What a new user does in the first minutes, on the release binaries of this tree: a restart
# right after a drain, the CLI against config/secure.example.toml, a kick that sticks, and a
# SIGHUP that adds a token while a subscriber keeps receiving. Build first:
#   cargo build --release --bin shardbus --bin shardbus-cli
# Scratch files go to $OUT (default /tmp/shardbus-smoke).
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/shardbus-smoke}; mkdir -p "$OUT"
B=target/release/shardbus; CLI=target/release/shardbus-cli
say() { echo; echo "\$ $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; }

echo "== 1. restart on the same port right after a drain with a client attached"
P=$(free_port)
$B --listen 127.0.0.1:$P --http-listen 127.0.0.1:0 --shards 2 2>$OUT/b1.log & PID=$!; wait_port $P
$CLI --server 127.0.0.1:$P sub 'demo.>' >$OUT/sub1.out 2>$OUT/sub1.err & SUB=$!
sleep 0.5
say "kill -TERM $PID; shardbus --listen 127.0.0.1:$P ... (at once)"
T0=$(date +%s.%N); kill -TERM $PID; wait $PID; RC=$?; T1=$(date +%s.%N)
echo "first broker exit code $RC after $(echo "$T1 - $T0" | bc) s (grace period 5 s: the CLI left on DRAIN)"
$B --listen 127.0.0.1:$P --http-listen 127.0.0.1:0 --shards 2 2>$OUT/b2.log & PID2=$!; wait_port $P
grep -E "listening|Address" $OUT/b2.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200
sleep 2.5
$CLI --server 127.0.0.1:$P pub demo.after restarted 2>/dev/null
sleep 1.2
echo "the CLI subscriber said:"; cat $OUT/sub1.err
echo "and printed:"; cat $OUT/sub1.out
kill $SUB 2>/dev/null; kill -TERM $PID2; wait $PID2 2>/dev/null

echo; echo "== 2. the CLI against config/secure.example.toml"
P=$(free_port); H=$(free_port)
$B --config config/secure.example.toml --listen 127.0.0.1:$P --http-listen 127.0.0.1:$H --shards 2 2>$OUT/b3.log & PID=$!; wait_port $P
say "shardbus-cli --server 127.0.0.1:$P status   (no credentials)"
$CLI --server 127.0.0.1:$P status; echo "exit $?"
say "shardbus-cli --server 127.0.0.1:$P --token change-me-operator-token status --json | head -c 160"
$CLI --server 127.0.0.1:$P --token change-me-operator-token status --json | head -c 160; echo
say "SHARDBUS_USER=alice SHARDBUS_PASSWORD=change-me shardbus-cli --server 127.0.0.1:$P pub orders.new hi"
SHARDBUS_USER=alice SHARDBUS_PASSWORD=change-me $CLI --server 127.0.0.1:$P pub orders.new hi; echo "exit $?"

echo; echo "== 3. a kicked CLI subscriber stays out"
$CLI --server 127.0.0.1:$P --token change-me-operator-token sub 'orders.>' 2>$OUT/sub3.err & SUB=$!
sleep 0.7
ID=$(curl -s -H 'Authorization: Bearer change-me-operator-token' "http://127.0.0.1:$H/api/v1/connections" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"][0]["id"])')
say "curl -XDELETE -H 'Authorization: Bearer …' http://127.0.0.1:$H/api/v1/connections/$ID"
curl -s -XDELETE -H 'Authorization: Bearer change-me-operator-token' "http://127.0.0.1:$H/api/v1/connections/$ID"; echo
wait $SUB; echo "CLI subscriber exit code $?; its stderr:"; cat $OUT/sub3.err
sleep 1
say "curl …/api/v1/connections (a second later)"
curl -s -H 'Authorization: Bearer change-me-operator-token' "http://127.0.0.1:$H/api/v1/connections"; echo
kill -TERM $PID; wait $PID 2>/dev/null

echo; echo "== 4. SIGHUP adds a token while a subscriber keeps receiving"
cp config/secure.example.toml $OUT/live.toml
P=$(free_port); H=$(free_port)
$B --config $OUT/live.toml --listen 127.0.0.1:$P --http-listen 127.0.0.1:$H --shards 2 2>$OUT/b4.log & PID=$!; wait_port $P
$CLI --server 127.0.0.1:$P --token change-me-operator-token sub 'feed.>' >$OUT/sub4.out 2>$OUT/sub4.err & SUB=$!
sleep 0.7
$CLI --server 127.0.0.1:$P --token change-me-operator-token pub feed.one before-reload 2>/dev/null
say "shardbus-cli --token new-team-token pub feed.two x   (before the reload)"
$CLI --server 127.0.0.1:$P --token new-team-token pub feed.two x; echo "exit $?"
DIGEST=$(printf %s new-team-token | sha256sum | cut -d' ' -f1)
printf '\n[[auth.tokens]]\nname = "new-team"\nsha256 = "%s"\nrole = "user"\n' "$DIGEST" >> $OUT/live.toml
say "kill -HUP $PID   (after appending [[auth.tokens]] new-team)"
kill -HUP $PID; sleep 0.5
grep "configuration reloaded" $OUT/b4.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-400
say "shardbus-cli --token new-team-token pub feed.two after-reload"
$CLI --server 127.0.0.1:$P --token new-team-token pub feed.two after-reload; echo "exit $?"
sleep 0.5
echo "the subscriber (connected before the reload) printed:"; cat $OUT/sub4.out
kill $SUB; kill -TERM $PID; wait $PID 2>/dev/null
