"""Median (min–max) tables of shardbus-bench JSON reports, for the A/B scripts in perf/scripts.

    python3 perf/scripts/medians.py FILE FIELDS METRIC...

FILE holds one report per line, each tagged with the fields its script added (`tagged` in
common.sh); FIELDS (comma-separated) groups them, one table row per group ("placement" is
the report's placement kind); each METRIC is a column, a name from METRICS.
"""

import json
import statistics
import sys


def per_unit(r):
    """Server CPU µs per request or delivery."""
    return r["server_cpu_percent"] / 100 / r["received_per_sec"] * 1e6


METRICS = {
    "req/s": ("{:,.0f}", lambda r: r["received_per_sec"]),
    "deliveries/s": ("{:,.0f}", lambda r: r["received_per_sec"]),
    "p50 µs": ("{:,.0f}", lambda r: r["latency"]["p50_us"]),
    "p99 µs": ("{:,.0f}", lambda r: r["latency"]["p99_us"]),
    "server CPU %": ("{:,.0f}", lambda r: r["server_cpu_percent"]),
    "tool CPU %": ("{:,.0f}", lambda r: r["tool_cpu_percent"]),
    "server CPU µs/request": ("{:,.1f}", per_unit),
    "server CPU µs/delivery": ("{:,.2f}", per_unit),
    "lost": ("{:,.0f}", lambda r: r["missing"]),
}


def field(r, name):
    if name == "placement":
        return (r.get("placement") or {}).get("kind", "—")
    return r[name]


def span(values, fmt):
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main(path, fields, metrics):
    fields = fields.split(",")
    groups = {}
    for line in open(path):
        r = json.loads(line)
        groups.setdefault(tuple(field(r, f) for f in fields), []).append(r)
    print("| " + " | ".join(fields + ["runs"] + metrics) + " |")
    print("|" + "---|" * (len(fields) + 1 + len(metrics)))
    for key, rows in sorted(groups.items()):
        cells = list(key) + [str(len(rows))]
        for name in metrics:
            fmt, get = METRICS[name]
            cells.append(span([get(r) for r in rows], fmt))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
