#!/usr/bin/env bash
# Side by side: shardbus against nats-server, same machine, same load tool, same run.
#
#   perf/compare.sh [rounds]        (default 3 rounds, request/reply 3× as many: REQREP_ROUNDS;
#                                    RESULTS=0 to skip writing perf/RESULTS.md;
#                                    ONLY=<scenario name prefix> to run a subset, e.g. ONLY=conns;
#                                    OTHERS=0 to skip the other comparison scripts named below;
#                                    "..., 10k conns held" runs while a second load tool holds
#                                    10,000 subscribed connections to the same broker;
#                                    SERVER_FLAGS="--spin-before-park-us 50" for extra shardbus flags;
#                                    not SHARDBUS_*: shardbus reads those as configuration)
#
# Installs nats-server from Debian's packages when missing, builds the release binaries, starts
# both brokers on loopback with the same core count, runs every scenario against each in
# alternation (A B A B ...), and prints per scenario the median, the spread (min–max) and the
# shardbus/NATS ratio of the medians (request/reply also per placement: whether the requester
# and the responder landed on one shard), then runs perf/service_compare.sh (services against
# NATS's queue group), perf/room_compare.sh (rooms against Socket.IO),
# perf/cluster_compare.sh (two nodes over Redis against Socket.IO's Redis adapter) and
# perf/history_compare.sh (history in Redis against in memory).
# The table is also appended to perf/RESULTS.md with the
# command, nproc, CPU model and date.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
cores=$(nproc)
if ! command -v nats-server >/dev/null; then
  echo "installing nats-server (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq nats-server >/dev/null
fi
cargo build --release -q --bin shardbus --bin shardbus-bench
bench=target/release/shardbus-bench

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sb_pid=""
nats_pid=""
stop_brokers() {
  if [ -n "$sb_pid" ]; then
    kill "$sb_pid" "$nats_pid" 2>/dev/null || true
    wait "$sb_pid" "$nats_pid" 2>/dev/null || true
  fi
}
# Fresh brokers on fresh ports: needed before every `conns` run, whose RSS growth would
# otherwise be hidden by memory the previous run freed and the allocator kept.
start_brokers() {
  stop_brokers
  sb_port=$(free_port)
  nats_port=$(free_port)
  # shellcheck disable=SC2086 # extra flags are meant to split
  target/release/shardbus --listen "127.0.0.1:$sb_port" --http-listen 127.0.0.1:0 --shards "$cores" ${SERVER_FLAGS:-} 2>/tmp/compare-shardbus.log &
  sb_pid=$!
  GOMAXPROCS=$cores nats-server -a 127.0.0.1 -p "$nats_port" 2>/tmp/compare-nats.log &
  nats_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$sb_port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
    sleep 0.1
  done
}
trap stop_brokers EXIT
start_brokers

# name | arguments (after the target). The throughput runs last a second or more on shardbus:
# at a third of a second a run measured its ramp (connecting, the first batches) as much as
# the steady rate, and the figure swung by a quarter from run to run.
scenarios=(
  "pubsub 1:1 16 B|-n 10000000 pubsub"
  "pubsub 1:1 1 KiB|-n 2000000 -s 1024 pubsub"
  "fan-out 1:4 16 B|-n 3000000 pubsub -S 4"
  "fan-out 1:4 1 KiB|-n 500000 -s 1024 pubsub -S 4"
  "queue 1:4 16 B|-n 6000000 queue -w 4"
  "reqrep 1 sync client|-n 20000 --server-pid {pid} reqrep"
  "reqrep 1 sync client, 1,000/s|-n 3000 --rate 1000 --server-pid {pid} reqrep"
  "reqrep 8 sync clients, 4 responders|-n 5000 --server-pid {pid} reqrep -c 8 -r 4"
  "conns 10k|conns -c 10000 --server-pid {pid}"
  "pubsub 1:1 16 B, 10k conns held|-n 10000000 pubsub"
)

# Runs the load tool against $target while, for "conns held" scenarios, another instance holds
# 10,000 subscribed connections to the same broker.
run_bench() {
  local holder=""
  case $name in *"conns held"*)
    local hold_log
    hold_log=$(mktemp)
    $bench --target "$target" conns -c 10000 --hold-secs 80 >/dev/null 2>"$hold_log" &
    holder=$!
    for _ in $(seq 600); do
      grep -q holding "$hold_log" && break
      kill -0 "$holder" 2>/dev/null || break
      sleep 0.2
    done
    ;;
  esac
  # shellcheck disable=SC2086 # the arguments are meant to split
  $bench --json --target "$target" ${args//\{pid\}/$pid} || echo '{"failed":true}'
  if [ -n "$holder" ]; then
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
  fi
}

out=$(mktemp)
for entry in "${scenarios[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  # ONLY=conns (a name prefix) runs a subset.
  case $name in "${ONLY:-}"*) ;; *) continue ;; esac
  # Request/reply depends on where its two ends land: more rounds, to see each placement.
  runs=$rounds
  case $name in reqrep*) runs=${REQREP_ROUNDS:-$((rounds * 3))} ;; esac
  for round in $(seq "$runs"); do
    case $name in *conns*) start_brokers ;; esac
    for target in "shardbus://127.0.0.1:$sb_port" "nats://127.0.0.1:$nats_port"; do
      case $target in shardbus*) pid=$sb_pid ;; *) pid=$nats_pid ;; esac
      line=$(run_bench)
      printf '%s\t%s\t%s\n' "$name" "$target" "$line" >>"$out"
      echo "$name round $round ${target%%:*}: done" >&2
    done
  done
done

table=$(python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    name, target, blob = line.rstrip("\n").split("\t", 2)
    broker = target.split(":")[0]
    r = json.loads(blob)
    if r.get("received_per_sec") and "server_cpu_percent" in r:
        r["cpu_us_per_request"] = r["server_cpu_percent"] * 1e4 / r["received_per_sec"]
    if name not in rows:
        rows[name] = {"shardbus": [], "nats": []}
        order.append(name)
    rows[name][broker].append(r)
# label: (report key, lower is better; None: no ratio)
METRICS = {
    "received/s": ("received_per_sec", False),
    "p50 µs": ("p50_us", True),
    "p99 µs": ("p99_us", True),
    "server CPU %": ("server_cpu_percent", True),
    "server CPU µs/request": ("cpu_us_per_request", True),
    "server RSS B/conn": ("server_rss_bytes_per_connection", True),
    # The load tool's own CPU (a share of one core): near 100% of a core per thread it
    # drives, the figure above is the tool's ceiling, not the broker's.
    "load tool CPU %": ("tool_cpu_percent", None),
    "host steal %": ("host_steal_percent", None),
}
def value(r, key):
    return r["latency"][key] if key in r["latency"] else r.get(key, 0)
def number(v, lower):
    return f"{v:,.0f}" if lower is False else f"{v:,.1f}"
def spread(vals, lower, note=""):
    return f"{number(statistics.median(vals), lower)} ({number(min(vals), lower)}–{number(max(vals), lower)}{note})"
def ratio(a, b, lower):
    if lower is None or not a or not b:
        return "—"
    return f"{a / b:.2f}×" if not lower else f"{a / b:.2f} (lower is better)"
print("| scenario | metric | shardbus median (min–max) | NATS median (min–max) | shardbus/NATS |")
print("|---|---|---|---|---|")
for name in order:
    req = name.startswith("reqrep")
    labels = ["received/s"]
    if req:
        labels += ["p50 µs", "p99 µs", "server CPU %", "server CPU µs/request"]
    labels = ["server RSS B/conn"] if name.startswith("conns") else labels + ["load tool CPU %", "host steal %"]
    for label in labels:
        key, lower = METRICS[label]
        cells = []
        meds = []
        for broker in ("shardbus", "nats"):
            runs = [r for r in rows[name][broker] if not r.get("failed")]
            vals = [value(r, key) for r in runs]
            fails = len(rows[name][broker]) - len(runs)
            if not vals:
                cells.append("failed"); meds.append(None); continue
            meds.append(statistics.median(vals))
            cells.append(spread(vals, lower, f", {fails} failed" if fails else ""))
        print(f"| {name} | {label} | {cells[0]} | {cells[1]} | {ratio(meds[0], meds[1], lower)} |")
    if not req:
        continue
    # The runs of both brokers during which the hypervisor took less than 2% of a core
    # (steal): on a shared host a run under steal is the host's figure, not the broker's.
    quiet = {b: [r for r in rows[name][b] if not r.get("failed") and r.get("host_steal_percent", 0) < 2] for b in ("shardbus", "nats")}
    if quiet["shardbus"] and quiet["nats"]:
        for label in ["received/s", "p50 µs", "p99 µs", "server CPU µs/request"]:
            key, lower = METRICS[label]
            vals = {b: [value(r, key) for r in quiet[b]] for b in quiet}
            cells = [spread(vals[b], lower, f", {len(vals[b])} of {len(rows[name][b])} runs") for b in ("shardbus", "nats")]
            print(f"| {name}, host steal < 2% | {label} | {cells[0]} | {cells[1]} | {ratio(statistics.median(vals['shardbus']), statistics.median(vals['nats']), lower)} |")
    # shardbus's runs by where the requesters and responders landed (from WELCOME), against
    # all of NATS's (which has no shards).
    nats = [r for r in rows[name]["nats"] if not r.get("failed")]
    kinds = sorted({r["placement"]["kind"] for r in rows[name]["shardbus"] if r.get("placement")})
    for kind in kinds:
        runs = [r for r in rows[name]["shardbus"] if r.get("placement", {}).get("kind") == kind]
        for label in ["received/s", "p50 µs", "server CPU %", "server CPU µs/request"]:
            key, lower = METRICS[label]
            vals = [value(r, key) for r in runs]
            base = statistics.median([value(r, key) for r in nats]) if nats else None
            print(f"| {name}, {kind} ({len(runs)} of {len(rows[name]['shardbus'])} runs) | {label} | {spread(vals, lower)} | all runs | {ratio(statistics.median(vals), base, lower)} |")
PY
)
echo "$table"
if [ "${RESULTS:-1}" = "1" ]; then
  section=$(mktemp)
  {
    echo "## $(date -u +%Y-%m-%d) — shardbus vs nats-server, side by side (perf/compare.sh)"
    echo
    echo "- Command: \`${ONLY:+ONLY=$ONLY }${REQREP_ROUNDS:+REQREP_ROUNDS=$REQREP_ROUNDS }${OTHERS:+OTHERS=$OTHERS }perf/compare.sh $rounds\` ($rounds rounds, request/reply ${REQREP_ROUNDS:-$((rounds * 3))}, alternating). nproc $cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(uname -r), nats-server $(nats-server --version | awk '{print $2}'), $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "- Both brokers on loopback with $cores cores (shardbus --shards $cores ${SERVER_FLAGS:-}, GOMAXPROCS=$cores); the load tool runs on the same cores."
    echo
    echo "$table"
    echo
  } >"$section"
  python3 perf/scripts/insert_section.py "$section"
fi

# Services (shardbus's balancing against NATS's queue group) and rooms (shardbus against
# Socket.IO 4): their own scripts, with their own brokers' configuration and load tools.
if [ -z "${ONLY:-}" ] && [ "${OTHERS:-1}" != 0 ]; then
  perf/service_compare.sh "$rounds"
  perf/room_compare.sh "$rounds"
  perf/cluster_compare.sh "$rounds"
  perf/history_compare.sh "$rounds"
fi
