#!/usr/bin/env bash
# Services side by side: shardbus's server-side balancing against nats-server's request/reply
# over a queue group (what NATS's Services API uses), same machine, same load tool, same run.
#
#   perf/service_compare.sh [rounds]     (default 3 rounds; RESULTS=0 to skip writing perf/RESULTS.md)
#
# Starts shardbus with one `[[services]]` entry per strategy (services `rr`, `lp`, `w`, `ch`)
# and nats-server, and runs `shardbus-bench` in alternation: plain request/reply over a queue
# group against both (the baseline), the same requests to a shardbus service under each
# strategy (the strategies' overhead over the baseline), and 8 concurrent requesters against 3
# responders of which one is slow (2 ms a request): NATS's queue group, shardbus round robin
# and least pending (the strategy that should win on the tail). Prints per scenario the median
# and spread, the ratios, and appends the table to perf/RESULTS.md with the command, nproc,
# CPU model and date.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/scripts/common.sh

rounds=${1:-3}
cores=$(nproc)
ensure_nats_server
cargo build --release -q --bin shardbus --bin shardbus-bench
bench=target/release/shardbus-bench

config=$(mktemp --suffix .toml)
for entry in rr:round_robin lp:least_pending w:weighted ch:consistent_hash; do
  printf '[[services]]\nname = "%s"\nstrategy = "%s"\n' "${entry%%:*}" "${entry#*:}" >>"$config"
done
sb_port=$(free_port)
nats_port=$(free_port)
target/release/shardbus --config "$config" --listen "127.0.0.1:$sb_port" --http-listen 127.0.0.1:0 \
  --shards "$cores" 2>/tmp/service-compare-shardbus.log &
sb_pid=$!
GOMAXPROCS=$cores nats-server -a 127.0.0.1 -p "$nats_port" 2>/tmp/service-compare-nats.log &
nats_pid=$!
cleanup() {
  kill "$sb_pid" "$nats_pid" 2>/dev/null || true
  wait "$sb_pid" "$nats_pid" 2>/dev/null || true
  rm -f "$config"
}
trap cleanup EXIT
wait_for_ports "$sb_port" "$nats_port"
sb="shardbus://127.0.0.1:$sb_port"
nats="nats://127.0.0.1:$nats_port"

# name | target | arguments
scenarios=(
  "1 sync requester, 3 responders|nats|-n 20000 reqrep -r 3"
  "1 sync requester, 3 responders|sb|-n 20000 reqrep -r 3"
  "1 sync requester, 3 responders|sb rr|-n 20000 service --name rr -r 3"
  "1 sync requester, 3 responders|sb lp|-n 20000 service --name lp -r 3"
  "1 sync requester, 3 responders|sb w|-n 20000 service --name w -r 3"
  "1 sync requester, 3 responders|sb ch|-n 20000 service --name ch -r 3"
  "8 requesters, 3 responders|nats|-n 5000 reqrep -c 8 -r 3"
  "8 requesters, 3 responders|sb|-n 5000 reqrep -c 8 -r 3"
  "8 requesters, 3 responders|sb rr|-n 5000 service --name rr -c 8 -r 3"
  "8 requesters, 3 responders|sb lp|-n 5000 service --name lp -c 8 -r 3"
  "8 requesters, 3 responders, 1 slow (2 ms)|nats|-n 1000 reqrep -c 8 -r 3 --slow 1"
  "8 requesters, 3 responders, 1 slow (2 ms)|sb rr|-n 1000 service --name rr -c 8 -r 3 --slow 1"
  "8 requesters, 3 responders, 1 slow (2 ms)|sb lp|-n 1000 service --name lp -c 8 -r 3 --slow 1"
)
results=$(mktemp)
for ((round = 1; round <= rounds; round++)); do
  for entry in "${scenarios[@]}"; do
    IFS='|' read -r name who args <<<"$entry"
    case $who in nats) target=$nats ;; *) target=$sb ;; esac
    echo "round $round: $name, $who" >&2
    # shellcheck disable=SC2086 # the arguments are meant to split
    line=$($bench --json --target "$target" $args || echo '{"failed":true}')
    printf '%s\t%s\t%s\n' "$name" "$who" "$line" >>"$results"
  done
done

table=$(python3 - "$results" <<'PY'
import json, statistics, sys
rows, order = {}, []
for line in open(sys.argv[1]):
    name, who, blob = line.rstrip("\n").split("\t", 2)
    if name not in rows:
        rows[name] = {}
        order.append(name)
    rows[name].setdefault(who, []).append(json.loads(blob))
label = {"nats": "NATS queue group", "sb": "shardbus queue group", "sb rr": "shardbus service, round_robin",
         "sb lp": "shardbus service, least_pending", "sb w": "shardbus service, weighted",
         "sb ch": "shardbus service, consistent_hash (no key: in turn)"}
def med(runs, key):
    vals = [r["received_per_sec"] if key == "rps" else r["latency"][key] for r in runs if not r.get("failed")]
    return (statistics.median(vals), min(vals), max(vals)) if vals else None
print("| scenario | broker | req/s median (min–max) | p50 µs | p99 µs | req/s vs NATS | req/s vs shardbus queue group | p99 vs NATS |")
print("|---|---|---|---|---|---|---|---|")
for name in order:
    base_nats = med(rows[name].get("nats", []), "rps")
    base_sb = med(rows[name].get("sb", []), "rps")
    p99_nats = med(rows[name].get("nats", []), "p99_us")
    for who, runs in rows[name].items():
        rps, p50, p99 = med(runs, "rps"), med(runs, "p50_us"), med(runs, "p99_us")
        if rps is None:
            print(f"| {name} | {label[who]} | failed | | | | | |"); continue
        vs_nats = f"{rps[0] / base_nats[0]:.2f}×" if base_nats and who != "nats" else "—"
        vs_sb = f"{rps[0] / base_sb[0]:.2f}×" if base_sb and who.startswith("sb ") else "—"
        p99_ratio = f"{p99[0] / p99_nats[0]:.2f}" if p99_nats and who != "nats" else "—"
        print(f"| {name} | {label[who]} | {rps[0]:,.0f} ({rps[1]:,.0f}–{rps[2]:,.0f}) | {p50[0]:,.1f} | {p99[0]:,.1f} | {vs_nats} | {vs_sb} | {p99_ratio} |")
PY
)
echo "$table"
if [ "${RESULTS:-1}" != 0 ]; then
  results_section "services: shardbus's balancing vs NATS request/reply over a queue group (perf/service_compare.sh)" "$table" \
    "Command: \`perf/service_compare.sh $rounds\` ($rounds rounds, alternating). $(machine), nats-server $(nats-server --version | awk '{print $2}')." \
    "shardbus $(git rev-parse --short HEAD) (--shards $cores) and nats-server (GOMAXPROCS=$cores) on loopback, \`shardbus-bench\` on the same cores, 16-byte payloads; the slow responder answers each request after 2 ms, one at a time."
fi
rm -f "$results"
