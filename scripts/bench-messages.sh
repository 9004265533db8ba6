#!/usr/bin/env bash
# Message throughput: server CPU per acknowledged message, gatehouse-server against a swift-nio +
# swift-nio-ssl server doing the same job (Benchmarks/NIOBaseline), in the same run; and the
# durability benchmark of issue 3 (--fsync always / interval=10 / never, 100 pipelining clients).
#
# Every server runs pinned to core 0 with one worker (NIO: one event-loop thread); its journal
# writer thread shares that core. The load is `gatehouse bench messages` pinned to core 1 (one
# thread): 64 connections x 16 messages in flight x 64 bytes (part 1), 100 connections x 16 (part 2).
# Server CPU is user+sys from /proc/PID/stat over the client's run (connection set-up included:
# 64 handshakes, about 20 ms of a multi-second window), divided by the messages acknowledged.
# Rounds alternate between configurations; medians are reported, and ratios of medians.
# Each round starts a fresh server on a fresh journal (on the filesystem of --dir), checks that the
# journal holds exactly as many records as the client counted ACKs, and reads the server's
# records and flushes from its exit line (SIGTERM).
#
# Part 3 (issue 11, with --streams): the cost of streams: the same load (64 x 16 x 64 B, --fsync
# never, so that CPU and not the disk is measured) plain and through one stream per connection
# (`bench messages --streams`), rounds alternating; reports the ratio of server CPU per message.
#
# Usage: scripts/bench-messages.sh [--seconds S] [--rounds N] [--skip-nio] [--skip-durability]
#                                  [--metrics] [--streams] [--only-streams] [--dir DIR] [--keep]
#   --seconds S   length of each round's load (default 8)
#   --rounds N    rounds per configuration (default 3)
#   --skip-nio    do not build or run the NIO baseline
#   --metrics     part 1 also runs gatehouse with --metrics-address, scraped once a second, and
#                 prints its CPU per message against gatehouse without metrics (same run)
#   --streams     add part 3 (streams vs plain); --only-streams runs part 3 alone
#   --dir DIR     where the temporary folder (certs, journals, logs) goes (default: $TMPDIR or /tmp;
#                 its filesystem is the one fsync is measured on: not tmpfs)
#   --keep        keep the temporary folder and print its path
# Defaults take about 4 minutes once built (7 configurations x 3 rounds x ~10 s).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

seconds=8
rounds=3
skip_nio=0
skip_durability=0
metrics=0
streams=0
only_streams=0
keep=0
dir=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --skip-nio) skip_nio=1; shift ;;
        --skip-durability) skip_durability=1; shift ;;
        --metrics) metrics=1; shift ;;
        --streams) streams=1; shift ;;
        --only-streams) streams=1; only_streams=1; skip_nio=1; skip_durability=1; shift ;;
        --dir) dir="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
        *) echo "bench-messages.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(nproc)" -ge 2 ] || { echo "bench-messages.sh: needs 2 cores (server on one, load on the other)" >&2; exit 1; }
for tool in taskset python3; do
    command -v "$tool" >/dev/null || { echo "bench-messages.sh: needs $tool" >&2; exit 1; }
done

log() { echo "bench-messages: $*" >&2; }

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
bench_keep=$keep
bench_build
bench_workdir "$dir"
fstype=$(df --output=fstype "$work" | tail -n 1)
[ "$fstype" != tmpfs ] || log "warning: $work is on tmpfs: fdatasync costs nothing there (use --dir)"

# user and system ticks of the process, then of each live thread: "u s name=u/s,name=u/s,...".
cpu_detail() {
    local pid=$1 t comm threads=""
    for t in /proc/"$pid"/task/*; do
        comm=$(tr ' ' _ <"$t/comm" 2>/dev/null) || continue
        threads+="$comm=$(awk '{print $14 "/" $15}' "$t/stat" 2>/dev/null),"
    done
    echo "$(awk '{print $14, $15}' "/proc/$pid/stat") $threads"
}
results=$work/results.tsv
: >"$results"

# One round: run_round PART IMPL FSYNC CONNECTIONS ROUND -> a line in $results.
run_round() {
    local part=$1 impl=$2 fsync=$3 conns=$4 r=$5
    local tag="$part-$impl-${fsync//=/}-$r"
    local port journal="$work/journal-$tag.jsonl" srvlog="$work/server-$tag.log" out="$work/client-$tag.json"
    port=$(free_port)
    local extra=() server_extra=() mport=""
    [ "$impl" = streams ] && extra=(--streams)
    if [ "$impl" = gatehouse+metrics ]; then
        mport=$(free_port)
        server_extra=(--metrics-address "127.0.0.1:$mport")
    fi
    if [ "$impl" != nio ]; then
        taskset -c 0 "$server_bin" serve --host 127.0.0.1 --port "$port" --workers 1 \
            --cert "$work/pki/server.crt" --key "$work/pki/server.key" --tokens "$work/tokens" \
            --journal "$journal" --fsync "$fsync" --log-level info "${server_extra[@]}" >/dev/null 2>"$srvlog" &
    else
        taskset -c 0 "$nio_bin" --host 127.0.0.1 --port "$port" --threads 1 \
            --cert "$work/pki/server.crt" --key "$work/pki/server.key" --tokens "$work/tokens" \
            --journal "$journal" --fsync "$fsync" >/dev/null 2>"$srvlog" &
    fi
    local pid=$!
    pids+=("$pid")
    local up=0
    for _ in $(seq 200); do
        grep -q listening "$srvlog" 2>/dev/null && { up=1; break; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [ "$up" = 1 ] || { log "$impl did not start:"; cat "$srvlog" >&2; exit 1; }

    local t0 t1 w0 w1 d0 d1 scraper=""
    if [ -n "$mport" ]; then
        # A scrape a second, from core 1 with the load (Prometheus's default is one in 15 s).
        taskset -c 1 python3 -c 'import sys, time, urllib.request
end = time.time() + float(sys.argv[2])
while time.time() < end:
    urllib.request.urlopen(sys.argv[1], timeout=5).read(); time.sleep(1)' "http://127.0.0.1:$mport/metrics" "$seconds" &
        scraper=$!
    fi
    d0=$(cpu_detail "$pid"); t0=$(cpu_ticks "$pid"); w0=$(date +%s%N)
    timeout $((seconds + 60)) taskset -c 1 "$client_bin" bench messages --host 127.0.0.1 --port "$port" \
        --ca "$work/pki/ca.crt" --server-name localhost --user bench --token-file "$work/token" \
        --connections "$conns" --window 16 --size 64 --duration "$seconds" --threads 1 --json "${extra[@]}" \
        >"$out" 2>"$work/client-$tag.err" || true
    t1=$(cpu_ticks "$pid"); w1=$(date +%s%N); d1=$(cpu_detail "$pid")
    [ -z "$scraper" ] || wait "$scraper" 2>/dev/null || true
    stop_server "$pid"
    local lines=0
    [ -f "$journal" ] && lines=$(wc -l <"$journal")
    python3 - "$part" "$impl" "$fsync" "$conns" "$r" "$((t1 - t0))" "$tick" "$((w1 - w0))" "$lines" \
        "$out" "$srvlog" "$work/client-$tag.err" "$d0" "$d1" >>"$results" <<'PY'
import json, re, sys
part, impl, fsync, conns, r, ticks, tick, wall_ns, lines, out, srvlog, errf, d0, d1 = sys.argv[1:]
def detail(d):
    f = d.split()
    threads = {}
    for item in (f[2] if len(f) > 2 else "").split(","):
        if "=" in item:
            name, us = item.rsplit("=", 1)
            u, s = us.split("/")
            threads[name] = threads.get(name, 0) + int(u) + int(s)
    return int(f[0]), int(f[1]), threads
u0, s0, th0 = detail(d0)
u1, s1, th1 = detail(d1)
tk = int(tick)
# Seconds of user and system CPU, and per thread (threads alive at both readings).
split = f"{(u1 - u0) / tk:.2f}/{(s1 - s0) / tk:.2f}"
per_thread = ",".join(f"{n}={(th1[n] - th0.get(n, 0)) / tk:.2f}" for n in sorted(th1) if th1[n] - th0.get(n, 0) > 0)
try:
    j = json.load(open(out))
except Exception:
    sys.stderr.write(f"bench-messages: client failed ({impl} {fsync} round {r}):\n" + open(errf).read()[-2000:] + open(out).read()[-500:])
    sys.exit(1)
stopped = [l for l in open(srvlog, errors="replace") if "stopped" in l]
rec = re.search(r"records=(\d+)", stopped[-1]).group(1) if stopped else "-1"
fl = re.search(r"flushes=(\d+)", stopped[-1]).group(1) if stopped else "-1"
cpu_s = int(ticks) / int(tick)
acked = j["acknowledged"]
errors = sum(j["errors"].values())
print("\t".join(map(str, [part, impl, fsync, conns, r, acked, j["rate_per_s"], j["latency_us"]["p50"],
      j["latency_us"]["p99"], f"{cpu_s:.2f}", f"{int(wall_ns) / 1e9:.2f}", lines, rec, fl, errors, j.get("unanswered", 0),
      split, per_thread or "-"])))
PY
    tail -n 1 "$results" | awk -F'\t' -v tick="$tick" '{
        printf "bench-messages: %-7s %-9s %-11s round %s: %8.0f msgs/s  %.3f µs/msg  cpu %3.0f%%  p50 %s µs  p99 %s µs  acked %s journal %s\n",
            $1, $2, $3, $5, $7, ($6 > 0 ? $10 * 1e6 / $6 : 0), 100 * $10 / $11, $8, $9, $6, $12 }' >&2
    rm -f "$journal"
}

if [ "$only_streams" = 0 ]; then
log "part 1: 64 connections x 16 in flight x 64 B, ${seconds}s per round, $rounds rounds, server pinned to core 0"
impls=(gatehouse)
[ "$metrics" = 0 ] || impls+=(gatehouse+metrics)
[ "$skip_nio" = 1 ] || impls+=(nio)
for r in $(seq "$rounds"); do
    for fsync in never always; do
        for impl in "${impls[@]}"; do run_round budget "$impl" "$fsync" 64 "$r"; done
    done
done
fi
if [ "$streams" = 1 ]; then
    log "part 3 (issue 11): plain vs streams, 64 connections x 16 in flight x 64 B, --fsync never, rounds alternating"
    for r in $(seq "$rounds"); do
        for impl in gatehouse streams; do run_round streams "$impl" never 64 "$r"; done
    done
    python3 - "$results" <<'PY'
import statistics as st, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def us(impl):
    return [float(r[9]) * 1e6 / int(r[5]) for r in rows if r[0] == "streams" and r[1] == impl and int(r[5])]
plain, streams = us("gatehouse"), us("streams")
if plain and streams:
    print()
    print(f"Streams (issue 11), medians of {len(plain)} rounds, --fsync never, server CPU per message:")
    print(f"  plain   {st.median(plain):.3f} µs/msg   rounds {', '.join(f'{v:.3f}' for v in plain)}")
    print(f"  streams {st.median(streams):.3f} µs/msg   rounds {', '.join(f'{v:.3f}' for v in streams)}")
    print(f"  ratio streams / plain: {st.median(streams) / st.median(plain):.3f} (target ≤ 1.1)")
PY
fi
if [ "$skip_durability" = 0 ]; then
    log "part 2 (issue 3): 100 pipelining connections x 16 in flight, gatehouse, pinned to core 0"
    for r in $(seq "$rounds"); do
        for fsync in always interval=10 never; do run_round durable gatehouse "$fsync" 100 "$r"; done
    done
fi

python3 - "$results" "$fstype" "$seconds" <<'PY'
import statistics as st, sys
path, fstype, seconds = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
if not any(r[0] in ("budget", "durable") for r in rows):
    sys.exit(0)  # --only-streams: part 3 printed its own summary
def group(part, impl, fsync):
    return [r for r in rows if r[0] == part and r[1] == impl and r[2] == fsync]
def us(r): return float(r[9]) * 1e6 / int(r[5]) if int(r[5]) else float("nan")
def med(vals): return st.median(vals) if vals else float("nan")
def threads_of(g):
    # µs per message by thread (median over rounds); worker and event-loop threads by name.
    names = {}
    for r in g:
        for item in r[17].split(","):
            if "=" in item:
                n, sec = item.rsplit("=", 1)
                names.setdefault(n, []).append(float(sec) * 1e6 / max(1, int(r[5])))
    return {n: med(v) for n, v in names.items() if med(v) >= 0.005}
def summary(g):
    return dict(us=med([us(r) for r in g]), rate=med([float(r[6]) for r in g]), p50=med([int(r[7]) for r in g]),
                p99=med([int(r[8]) for r in g]), util=med([100 * float(r[9]) / float(r[10]) for r in g]),
                acked=sum(int(r[5]) for r in g), lines=sum(int(r[11]) for r in g), records=sum(int(r[12]) for r in g),
                flushes=sum(int(r[13]) for r in g), errors=sum(int(r[14]) for r in g), n=len(g),
                usr=med([float(r[16].split("/")[0]) * 1e6 / int(r[5]) for r in g if int(r[5])]),
                sys=med([float(r[16].split("/")[1]) * 1e6 / int(r[5]) for r in g if int(r[5])]),
                threads=threads_of(g),
                per_flush=med([int(r[12]) / int(r[13]) for r in g if int(r[13]) > 0]) if any(int(r[13]) > 0 for r in g) else None)
print()
print(f"Message throughput (medians of {max((len(group('budget','gatehouse',f)) for f in ('never','always')), default=0)} rounds, {seconds} s each; "
      f"server pinned to core 0, 1 worker; load gatehouse bench on core 1; journal on {fstype})")
budget = {"never": 1.0, "always": 1.5}
print(f"  {'configuration':<40} {'µs/msg':>8} {'budget':>7} {'msgs/s':>9} {'cpu%':>5} {'p50 µs':>7} {'p99 µs':>7} {'msgs/flush':>10} {'acked':>9} {'journal':>9}")
S = {}
split = []
def line(label, s, b=None):
    pf = f"{s['per_flush']:.1f}" if s["per_flush"] else "-"
    ok = "" if s["acked"] == s["lines"] else "  MISMATCH"
    err = f"  errors {s['errors']}" if s["errors"] else ""
    bud = f"≤{b:.1f}" if b else ""
    print(f"  {label:<40} {s['us']:8.3f} {bud:>7} {s['rate']:9.0f} {s['util']:5.0f} {s['p50']:7.0f} {s['p99']:7.0f} {pf:>10} {s['acked']:9d} {s['lines']:9d}{ok}{err}")
    split.append(f"  {label:<40} user {s['usr']:.3f} + sys {s['sys']:.3f} µs;  by thread: " + ", ".join(f"{n} {v:.3f}" for n, v in sorted(s['threads'].items(), key=lambda x: -x[1])))
for fsync in ("never", "always"):
    for impl in ("gatehouse", "gatehouse+metrics", "nio"):
        g = group("budget", impl, fsync)
        if g:
            S[(impl, fsync)] = summary(g)
            line(f"{impl} --fsync {fsync} (64x16)", S[(impl, fsync)], budget[fsync] if impl == "gatehouse" else None)
print("  CPU per message, user + system, and by server thread (µs, medians):")
print("\n".join(split)); split.clear()
for fsync in ("never", "always"):
    if ("gatehouse", fsync) in S and ("nio", fsync) in S:
        a, b = S[("gatehouse", fsync)], S[("nio", fsync)]
        print(f"  ratio gatehouse / NIO, --fsync {fsync:<6}: CPU per message {a['us'] / b['us']:.2f}   throughput {a['rate'] / b['rate']:.2f}")
for fsync in ("never", "always"):
    if ("gatehouse", fsync) in S and ("gatehouse+metrics", fsync) in S:
        a, b = S[("gatehouse+metrics", fsync)], S[("gatehouse", fsync)]
        print(f"  ratio with / without --metrics-address (scraped 1/s), --fsync {fsync:<6}: CPU per message {a['us'] / b['us']:.3f}   throughput {a['rate'] / b['rate']:.3f}")
for fsync in ("never", "always"):
    if ("gatehouse", fsync) in S:
        s = S[("gatehouse", fsync)]
        verdict = "within" if s["us"] <= budget[fsync] else "OVER"
        print(f"  gatehouse --fsync {fsync}: {s['us']:.3f} µs/message, budget {budget[fsync]:.1f} µs: {verdict} ({s['us'] / budget[fsync]:.2f} x the budget)")
D = {}
for fsync in ("always", "interval=10", "never"):
    g = group("durable", "gatehouse", fsync)
    if g: D[fsync] = summary(g)
if D:
    print()
    print(f"Durability (issue 3): gatehouse, 100 pipelining connections x 16 in flight x 64 B, pinned like above (medians of {max(s['n'] for s in D.values())} rounds)")
    print(f"  {'configuration':<40} {'µs/msg':>8} {'':>7} {'msgs/s':>9} {'cpu%':>5} {'p50 µs':>7} {'p99 µs':>7} {'msgs/flush':>10} {'acked':>9} {'journal':>9}")
    for fsync, s in D.items(): line(f"gatehouse --fsync {fsync} (100x16)", s)
    print("  CPU per message, user + system, and by server thread (µs, medians):")
    print("\n".join(split)); split.clear()
    if "always" in D and "never" in D:
        ratio = D["always"]["rate"] / D["never"]["rate"]
        print(f"  throughput always / never: {ratio:.2f}  (goal: at least 0.50: {'met' if ratio >= 0.5 else 'NOT met'})")
    if "interval=10" in D and "never" in D:
        print(f"  throughput interval=10 / never: {D['interval=10']['rate'] / D['never']['rate']:.2f}")
print()
bad = [r for r in rows if int(r[5]) != int(r[11]) or (int(r[12]) >= 0 and int(r[12]) != int(r[11]))]
total_a = sum(int(r[5]) for r in rows); total_l = sum(int(r[11]) for r in rows)
print(f"Cross-check: messages acknowledged (client) {total_a}, journal lines {total_l}, over {len(rows)} rounds: "
      + ("equal in every round" if not bad else f"{len(bad)} round(s) differ: " + "; ".join(f"{r[1]} {r[2]} round {r[4]}: acked {r[5]} journal {r[11]} server records {r[12]}" for r in bad)))
PY
