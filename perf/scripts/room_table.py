"""The table of a room comparison (perf/room_compare.sh, perf/cluster_compare.sh): each line of
the results file is `scenario<TAB>broker<TAB>report JSON` (room_bench.js's fields); prints per
scenario and measure the median and spread of each broker and the ratio of the medians."""
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, broker, report = line.rstrip("\n").split("\t", 2)
    rows.setdefault(name, {}).setdefault(broker, []).append(json.loads(report))

def med(reports, key):
    values = [r[key] for r in reports if r.get(key) is not None]
    return statistics.median(values), min(values), max(values)

def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"

print("| scenario | measure | shardbus (median, min–max) | Socket.IO (median, min–max) | shardbus / Socket.IO |")
print("|---|---|---|---|---|")
for name, brokers in rows.items():
    sb = brokers.get("shardbus", [])
    sio = brokers.get("socketio", [])
    if name.startswith("recover"):
        m = med(sb, "elapsed_ms")
        ok = all(r["recovered"] and r["count"] == r["missed"] for r in sb)
        print(f"| {name} | one JOIN: answer and all publications, ms | {fmt(m[0])} ({fmt(m[1])}–{fmt(m[2])}), recovered in every round: {ok} | — | — |")
        continue
    for key, label in [("deliveries_per_s", "deliveries/s"), ("p50_us", "p50 µs"), ("p99_us", "p99 µs"), ("p999_us", "p99.9 µs"), ("server_cpu_us_per_delivery", "server CPU µs / delivery")]:
        a = med(sb, key)
        if sio:
            b = med(sio, key)
            ratio = f"{a[0] / b[0]:.2f}×" if b[0] else "—"
            right = f"{fmt(b[0])} ({fmt(b[1])}–{fmt(b[2])})"
        else:
            ratio, right = "—", "—"
        print(f"| {name} | {label} | {fmt(a[0])} ({fmt(a[1])}–{fmt(a[2])}) | {right} | {ratio} |")
