#!/usr/bin/env python3
"""Prints bench.sh's one table (Markdown) from its per-round results.

Input: a TSV of `line  impl  round  value` rows, then the idle/storm client count, the rounds,
the idle and storm rounds, the seconds per load and the run's wall time. Each cell is the median over rounds of one
server's value; ratios are ratios of those medians (lower is better for every line but the
scaling one, where it is messages/s with 2 workers over 1).
"""
import collections
import datetime
import os
import platform
import statistics
import sys

path, connections, rounds, storm_rounds, seconds, wall = sys.argv[1:7]
values = collections.defaultdict(list)
for row in open(path):
    parts = row.rstrip("\n").split("\t")
    if len(parts) == 4:
        try:
            values[(parts[0], parts[1])].append(float(parts[3]))
        except ValueError:
            pass

def med(line, impl):
    v = [x for x in values.get((line, impl), []) if x == x]
    return statistics.median(v) if v else None

def per_round_ratio(a, b, impl):
    """Median of per-round ratios a/b for one server (rounds paired by order)."""
    xs, ys = values.get((a, impl), []), values.get((b, impl), [])
    r = [x / y for x, y in zip(xs, ys) if y]
    return statistics.median(r) if r else None

impls = ["gatehouse", "before", "nio", "s_server"]
present = [i for i in impls if any(k[1] == i for k in values)]
n = int(connections)
rows = [
    ("hs_s_time", "full handshake, s_time client", "µs CPU", "≤ 1.0 × NIO"),
    ("hs_bench", "full handshake, gatehouse client", "µs CPU", "≤ 1.0 × NIO"),
    ("hs_resumed", "resumed handshake", "µs CPU", "≤ 0.5 × full"),
    ("msg_never", "message, --fsync never", "µs CPU", "≤ 0.85 × NIO"),
    ("msg_always", "message, --fsync always", "µs CPU", ""),
    ("msg_streams", "message through a stream, never", "µs CPU", "≤ 1.1 × plain"),
    ("idle", f"idle connection ({n:,} held)", "bytes", "≤ 0.6 × NIO"),
    ("storm_full_s", f"storm {n:,}, full: all back", "s", "< NIO"),
    ("storm_full_cpu", "storm, full: server CPU per reconnect", "µs", ""),
    ("storm_full_p99", "storm, full: reconnect p99", "ms", ""),
    ("storm_full_ack", "storm, full: messenger ACK p99", "ms", "bounded"),
    ("storm_full_ackmax", "storm, full: messenger ACK max", "ms", ""),
    ("storm_resumed_s", f"storm {n:,}, resumed: all back", "s", "< NIO"),
    ("storm_resumed_cpu", "storm, resumed: server CPU per reconnect", "µs", ""),
    ("storm_resumed_p99", "storm, resumed: reconnect p99", "ms", ""),
    ("storm_resumed_ack", "storm, resumed: messenger ACK p99", "ms", "bounded"),
    ("storm_resumed_ackmax", "storm, resumed: messenger ACK max", "ms", ""),
    ("scale_1", "message, 1 worker (unpinned), never", "µs CPU", ""),
    ("scale_2", "message, 2 workers (unpinned), never", "µs CPU", ""),
    ("scale_1_rate", "messages/s, 1 worker (unpinned)", "msg/s", ""),
    ("scale_2_rate", "messages/s, 2 workers (unpinned)", "msg/s", "≥ 1.7 × 1 worker"),
]

def cell(v):
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b not in (None, 0) else "–"

cols = present + [c for c in ("g/NIO", "g/s_server", "g/before") if (c[2:] if c != "g/NIO" else "nio") in present]
names = {"gatehouse": "Gatehouse", "before": "before", "nio": "NIO", "s_server": "s_server"}
header = ["line", "unit"] + [names.get(c, c) for c in cols] + ["target"]
cpu = ""
try:
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip()
            break
except OSError:
    pass
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
print()
print(f"Gatehouse performance, {now}, {os.cpu_count()} cores ({cpu or platform.machine()}), "
      f"Linux {platform.release()}; medians of {rounds} alternating rounds of {seconds} s "
      f"(idle and storm: {storm_rounds}); run took {wall} s.")
print()
print("| " + " | ".join(header) + " |")
print("|" + "|".join("---" for _ in header) + "|")
for key, label, unit, target in rows:
    m = {i: med(key, i) for i in present}
    if all(v is None for v in m.values()):
        continue
    out = [label, unit] + [cell(m[i]) for i in present]
    for c in cols[len(present):]:
        other = {"g/NIO": "nio", "g/s_server": "s_server", "g/before": "before"}[c]
        out.append(ratio(m.get("gatehouse"), m.get(other)))
    print("| " + " | ".join(out + [target]) + " |")
derived = []
for impl in present:
    full, res = med("hs_bench", impl), med("hs_resumed", impl)
    if full and res:
        derived.append(f"resumed / full handshake CPU: {names[impl]} {res / full:.2f}")
for impl in present:
    s = per_round_ratio("scale_2_rate", "scale_1_rate", impl)
    if s:
        derived.append(f"scaling, messages/s 2 workers / 1: {names[impl]} {s:.2f} (target ≥ 1.7)")
for impl in present:
    share = med("storm_resumed_resumed", impl)
    if share is not None:
        derived.append(f"storm --resume: share of reconnects resumed, {names[impl]} {share:.2f}")
    for line in ("storm_full", "storm_resumed"):
        bad = sum(values.get((f"{line}_incomplete", impl), []))
        if bad:
            derived.append(f"{line}: {names[impl]} NOT all authenticated within the 60 s bound in {bad:.0f} "
                           f"round(s) (the time shown is the bound)")
        b, e = med(f"{line}_ack_before", impl), med(f"{line}_errors", impl)
        if b is not None:
            derived.append(f"{line}: {names[impl]} messenger ACK p99 before the drop {b:.2f} ms; "
                           f"reconnect errors (retried) {e:.0f}")
print()
for d in derived:
    print(f"- {d}")
