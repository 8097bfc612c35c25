#!/usr/bin/env bash
# A/B on one broker: plain request/reply over a queue group against the same requests to a
# shardbus service under round robin, alternated for many rounds, so the placement lottery of
# synchronous request/reply (connections land on either shard) averages out.
#
#   perf/scripts/ab_service.sh [rounds]     (default 12)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-12}
cargo build --release -q --bin shardbus --bin shardbus-bench
config=$(mktemp --suffix .toml)
printf '[[services]]\nname = "rr"\nstrategy = "round_robin"\n' >"$config"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/shardbus --config "$config" --listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 --shards "$(nproc)" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$config"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
out=$(mktemp)
for _ in $(seq "$rounds"); do
  for mode in "reqrep -r 3" "service --name rr -r 3"; do
    # shellcheck disable=SC2086 # the arguments are meant to split
    target/release/shardbus-bench --json -t "shardbus://127.0.0.1:$port" -n 10000 $mode |
      python3 -c 'import json,sys; r=json.load(sys.stdin); print(sys.argv[1], r["received_per_sec"], r["latency"]["p50_us"])' "${mode%% *}" >>"$out"
  done
done
python3 - "$out" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mode, rps, p50 = line.split()
    rows.setdefault(mode, []).append((float(rps), float(p50)))
for mode, runs in rows.items():
    rps = [r for r, _ in runs]
    print(f"{mode}: {len(runs)} rounds, req/s median {statistics.median(rps):,.0f} ({min(rps):,.0f}–{max(rps):,.0f}), p50 median {statistics.median(p for _, p in runs):.1f} µs")
PY
rm -f "$out"
