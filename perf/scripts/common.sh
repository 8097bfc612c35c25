# What the comparison scripts share (sourced): a free port, waiting for ports, a process's
# CPU, shardbus-bench's report in room_bench.js's fields, and appending a section to
# perf/RESULTS.md.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Installs nats-server from Debian's packages when it is missing.
ensure_nats_server() {
  if ! command -v nats-server >/dev/null; then
    echo "installing nats-server (Debian package)" >&2
    apt-get update -qq && apt-get install -y -qq nats-server >/dev/null
  fi
}

# Waits (up to 10 s each) until every port given accepts connections on 127.0.0.1.
wait_for_ports() {
  local port
  for port in "$@"; do
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.1
    done
  done
}

# The start of an A/B script: the release binaries built ($bench is the load tool),
# nats-server installed, a file for the reports ($out), and the brokers it then starts
# (pids, target, pid_of: start_shardbus, start_nats) stopped, and the file removed, at exit.
ab_start() {
  cargo build --release -q --bin shardbus --bin shardbus-bench
  bench=target/release/shardbus-bench
  ensure_nats_server
  out=$(mktemp)
  pids=()
  declare -gA target pid_of
  trap 'kill "${pids[@]}" 2>/dev/null || true; rm -f "$out"' EXIT
}

# Starts a broker in the background on a free port and returns once it accepts connections:
# `start_shardbus NAME BINARY [flags...]` (2 shards), `start_nats NAME` (GOMAXPROCS=2). Each
# fills target[NAME] and pid_of[NAME] and appends to pids (ab_start declares them).
start_shardbus() {
  local name=$1 bin=$2 port
  shift 2
  port=$(free_port)
  "$bin" --listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 --shards 2 "$@" 2>/dev/null &
  pid_of[$name]=$! target[$name]="shardbus://127.0.0.1:$port"
  pids+=($!)
  wait_for_ports "$port"
}
start_nats() {
  local name=$1 port
  port=$(free_port)
  GOMAXPROCS=2 nats-server -a 127.0.0.1 -p "$port" 2>/dev/null &
  pid_of[$name]=$! target[$name]="nats://127.0.0.1:$port"
  pids+=($!)
  wait_for_ports "$port"
}

# Reads one JSON report on stdin and prints it with the fields given as name=value added (the
# broker, the setting, ...), for perf/scripts/medians.py to group by.
tagged() {
  python3 -c 'import json,sys; r=json.load(sys.stdin); r.update(a.split("=", 1) for a in sys.argv[1:]); print(json.dumps(r))' "$@"
}

# CPU seconds (user + system) the processes (comma-separated pids) have used, from /proc (USER_HZ 100).
cpu() {
  local total=0 pid
  for pid in ${1//,/ }; do
    total=$(awk -v t="$total" '{print t + ($14 + $15) / 100}' "/proc/$pid/stat")
  done
  echo "$total"
}

# shardbus-bench with `$2...` against the processes `$1` (comma-separated pids, whose CPU is
# counted), reported in room_bench.js's fields.
rust_room() {
  local pids=$1
  shift
  local before after report
  before=$(cpu "$pids")
  report=$(target/release/shardbus-bench --json "$@")
  after=$(cpu "$pids")
  python3 -c '
import json, sys
r = json.loads(sys.argv[1]); cpu = float(sys.argv[3]) - float(sys.argv[2])
print(json.dumps({"deliveries_per_s": r["received_per_sec"], "p50_us": r["latency"]["p50_us"],
    "p99_us": r["latency"]["p99_us"], "p999_us": r["latency"]["p999_us"],
    "lost": r["missing"], "server_cpu_us_per_delivery": cpu * 1e6 / max(r["received"], 1)}))
' "$report" "$before" "$after"
}

# The machine and the time, for a section's first line.
machine() { echo "nproc $(nproc), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(date -u '+%Y-%m-%d %H:%M UTC')"; }

# Appends a section to perf/RESULTS.md (newest first): title `$1`, table `$2`, then each further
# argument as a line of the list above the table.
results_section() {
  local title=$1 table=$2 section line
  shift 2
  section=$(mktemp)
  {
    echo "## $(date -u +%Y-%m-%d) — $title"
    echo
    for line in "$@"; do echo "- $line"; done
    echo
    echo "$table"
    echo
  } >"$section"
  python3 perf/scripts/insert_section.py "$section"
  rm -f "$section"
}
