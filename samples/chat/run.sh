#!/usr/bin/env bash
# The chat sample in one command: `samples/chat/run.sh [USER]` builds the broker and the
# terminal client, starts the broker with samples/chat/chat.toml when none answers on
# 127.0.0.1:7480 yet (it keeps running: stop it with `kill $(cat /tmp/shardbus-chat.pid)`),
# then opens the terminal client as USER (alice, bob or carol; alice by default). The web
# client is at http://127.0.0.1:7480/chat/.
set -euo pipefail
cd "$(dirname "$0")/../.."
user="${1:-alice}"
cargo build --release --quiet --bin shardbus --bin shardbus-chat
answers() { (exec 3<>/dev/tcp/127.0.0.1/7480) 2>/dev/null; }
if ! answers; then
  target/release/shardbus --config samples/chat/chat.toml > /tmp/shardbus-chat.log 2>&1 &
  echo $! > /tmp/shardbus-chat.pid
  for _ in $(seq 100); do answers && break; sleep 0.1; done
  answers || { echo "the broker did not start: /tmp/shardbus-chat.log" >&2; exit 1; }
  echo "broker started (log /tmp/shardbus-chat.log); web client: http://127.0.0.1:7480/chat/" >&2
fi
exec target/release/shardbus-chat --server 127.0.0.1:7400 --token "$user-token" --name "$user"
