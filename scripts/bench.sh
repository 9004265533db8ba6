#!/usr/bin/env bash
# One table of Gatehouse's performance against a swift-nio + swift-nio-ssl server doing the same
# job (Benchmarks/NIOBaseline) and `openssl s_server`, all measured in the same run: rounds
# alternate between the servers and the table shows medians and ratios of medians.
#
# Lines (server pinned to core 0 with one worker, the load pinned to core 1, unless said):
#   full handshake (s_time)  server CPU per full TLS 1.3 handshake, `openssl s_time -new` as client
#   full handshake           the same with `gatehouse bench handshake` (4 connections) as client
#   resumed handshake        `gatehouse bench handshake --resume`: server CPU per resumed handshake
#   messages never/always    server CPU per acknowledged 64-byte message, 64 connections x 16 in
#                            flight, journal written with --fsync never / always
#   messages, streams        the same through one stream per connection (--fsync never; NIO has none)
#   idle memory              resident memory per idle authenticated connection, N held (default 10,000)
#   storm                    `gatehouse bench storm`: N clients authenticated, all drop their
#                            connections at once (client side), all reconnect at once, full or
#                            resuming: time until all are authenticated again, server CPU per
#                            reconnect, p99 reconnect latency, and the ACK p99 of 4 messengers
#                            (established connections sending, window 1) during the storm;
#                            each client waits up to 30 s per step and retries after an error
#   scaling                  messages/s with 2 workers over 1 (server and load unpinned, sharing
#                            the 2 cores), --fsync never
#
# Usage: scripts/bench.sh [--quick] [--rounds N] [--seconds S] [--connections N] [--before BIN]
#                         [--storm-rounds N] [--skip-nio] [--only LINES] [--no-build] [--dir DIR] [--keep]
#   --quick          1 round of 1 s, 2,000 idle / storm clients: a smoke run of under 3 minutes
#   --rounds N       rounds per server and line (default 3), but idle and storm (below)
#   --storm-rounds N rounds of the idle and storm lines (default 1: a 10,000-client storm takes
#                    15 to 60 s per server and mode)
#   --seconds S      length of each measured load (default 1.5)
#   --connections N  idle and storm clients (default 10000; needs ulimit -n above N + 200)
#   --before BIN     also measure another gatehouse-server binary (e.g. main's, built elsewhere):
#                    a column and a ratio gatehouse / before on every Gatehouse line
#   --skip-nio       no NIO baseline (nor its build)
#   --only LINES     comma-separated subset of: handshake,messages,idle,storm,scaling
#   --no-build       use the release binaries (and .build-nio) as last built
#   --dir DIR        temporary folder's parent (its filesystem is the one fsync is measured on)
#   --keep           keep the temporary folder (logs, per-round results) and print its path
# Defaults take under 5 minutes once built on a quiet machine (3 min 42 s on 2026-12-01; each
# 10,000-client storm 15 to 25 s), longer with --before or a busy machine (16 minutes with both).
# The figures are noisy on a shared machine: compare ratios of same-run medians, not runs.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

rounds=3
storm_rounds=1
seconds=1.5
connections=10000
before_bin=""
skip_nio=0
no_build=0
only="handshake,messages,idle,storm,scaling"
dir=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) rounds=1; seconds=1; connections=2000; shift ;;
        --rounds) rounds="$2"; shift 2 ;;
        --storm-rounds) storm_rounds="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --before) before_bin="$2"; shift 2 ;;
        --skip-nio) skip_nio=1; shift ;;
        --only) only="$2"; shift 2 ;;
        --no-build) no_build=1; shift ;;
        --dir) dir="$2"; shift 2 ;;
        --keep) bench_keep=1; shift ;;
        -h | --help) sed -n '2,40p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: --rounds must be a positive integer" >&2; exit 2; }
[[ "$storm_rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: --storm-rounds must be a positive integer" >&2; exit 2; }
[[ "$seconds" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench.sh: --seconds must be a number" >&2; exit 2; }
[[ "$connections" =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: --connections must be a positive integer" >&2; exit 2; }
if [ -n "$before_bin" ]; then
    [ -x "$before_bin" ] || { echo "bench.sh: --before $before_bin is not an executable" >&2; exit 2; }
    before_bin=$(realpath "$before_bin")
fi
[ "$(nproc)" -ge 2 ] || { echo "bench.sh: needs 2 cores (server on one, load on the other)" >&2; exit 1; }
for tool in taskset python3 openssl; do
    command -v "$tool" >/dev/null || { echo "bench.sh: needs $tool" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((connections + 200)) ] || {
    echo "bench.sh: descriptor limit $(ulimit -n) too low for --connections $connections" >&2
    exit 1
}
wants() { [[ ",$only," == *",$1,"* ]]; }

started=$(date -u +%s)
bench_build
bench_workdir "$dir"
results=$work/results.tsv
: >"$results"
gatehouses=(gatehouse)
[ -z "$before_bin" ] || gatehouses+=(before)
servers=("${gatehouses[@]}")
[ "$skip_nio" = 1 ] || servers+=(nio)

# Stops the server and drops its journal (bench.sh counts no records).
stop() { stop_server "$1"; rm -f "$work"/journal-*; }
# record LINE IMPL ROUND VALUE: one measurement.
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$results"; bench_log "$1 $2 round $3: $4"; }
# µs of CPU per unit: per_unit TICKS UNITS.
per_unit() { python3 -c "import sys; t, n = map(float, sys.argv[1:]); print(f'{t / $tick / n * 1e6:.2f}' if n else 'nan')" "$1" "$2"; }
json_field() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$1" "$2"; }

handshake_s_time() {
    local impl=$1 r=$2 t0 t1 out n
    start_server "$impl" 0 1 never
    t0=$(cpu_ticks "$pid")
    out=$(taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -new -time "$(python3 -c "print(max(1, round($seconds)))")" 2>&1 || true)
    t1=$(cpu_ticks "$pid")
    stop "$pid"
    n=$(echo "$out" | awk '/connections in [0-9.]+s;/ {print $1; exit}')
    [ -n "$n" ] || { bench_log "s_time failed against $impl: $out"; return; }
    record hs_s_time "$impl" "$r" "$(per_unit $((t1 - t0)) "$n")"
}

handshake_bench() {
    local impl=$1 r=$2 line=$3 t0 t1 out=$work/hs.json extra=()
    [ "$line" = hs_resumed ] && extra=(--resume)
    start_server "$impl" 0 1 never
    t0=$(cpu_ticks "$pid")
    taskset -c 1 "$client_bin" bench handshake --connections 4 --threads 1 --duration "$seconds" --json "${extra[@]}" \
        --host 127.0.0.1 --port "$port" --ca "$work/pki/ca.crt" --server-name localhost >"$out" 2>/dev/null || true
    t1=$(cpu_ticks "$pid")
    stop "$pid"
    local n resumed
    n=$(json_field "$out" 'd["completed"]') || { bench_log "bench handshake failed against $impl"; return; }
    resumed=$(json_field "$out" 'd["resumed"]')
    record "$line" "$impl" "$r" "$(per_unit $((t1 - t0)) "$n")"
    [ "$line" = hs_bench ] || record hs_resumed_share "$impl" "$r" "$(python3 -c "print(f'{$resumed / max(1, $n):.3f}')")"
}

# messages IMPL ROUND LINE FSYNC CORES WORKERS CLIENT_CORES [client options]
messages() {
    local impl=$1 r=$2 line=$3 fsync=$4 cores=$5 workers=$6 ccores=$7 out=$work/msg.json t0 t1
    shift 7
    start_server "$impl" "$cores" "$workers" "$fsync"
    t0=$(cpu_ticks "$pid")
    taskset -c "$ccores" "$client_bin" bench messages --connections 64 --window 16 --size 64 --duration "$seconds" \
        --threads 1 --json "$@" --host 127.0.0.1 --port "$port" --ca "$work/pki/ca.crt" --server-name localhost \
        --user bench --token-file "$work/token" >"$out" 2>/dev/null || true
    t1=$(cpu_ticks "$pid")
    stop "$pid"
    local n rate
    n=$(json_field "$out" 'd["acknowledged"]') || { bench_log "bench messages failed against $impl"; return; }
    rate=$(json_field "$out" 'd["rate_per_s"]')
    record "$line" "$impl" "$r" "$(per_unit $((t1 - t0)) "$n")"
    record "${line}_rate" "$impl" "$r" "$rate"
}

idle() {
    local impl=$1 r=$2 before held now out=$work/idle.json
    start_server "$impl" 0 1 never --max-connections $((connections + 100))
    bench_client send warm-up >/dev/null 2>&1 || true
    sleep 0.3
    before=$(rss_kib "$pid")
    taskset -c 1 "$client_bin" bench idle --connections "$connections" --hold 1 --json --host 127.0.0.1 \
        --port "$port" --ca "$work/pki/ca.crt" --server-name localhost --user bench --token-file "$work/token" \
        >"$out" 2>/dev/null &
    local client=$!
    held=$before
    while kill -0 "$client" 2>/dev/null; do
        now=$(rss_kib "$pid")
        [ "$now" -gt "$held" ] && held=$now
        sleep 0.2
    done
    wait "$client" || true
    stop "$pid"
    local n
    n=$(json_field "$out" 'd["held"]') || { bench_log "bench idle failed against $impl"; return; }
    [ "$n" = "$connections" ] || bench_log "idle: only $n of $connections held against $impl"
    record idle "$impl" "$r" "$(python3 -c "print(f'{($held - $before) * 1024 / $connections:.0f}')")"
}

storm() {
    local impl=$1 r=$2 line=$3 extra=()
    local out=$work/$line-$impl-$r.json err=$work/$line-$impl-$r.err  # kept apart: --keep shows each run's errors
    [ "$line" = storm_resumed ] && extra=(--resume)
    # Room for the old connections too: the server may not have seen all the drops yet when the
    # reconnects arrive (Gatehouse lowers the limit to what its descriptors allow). Handshake and
    # AUTH timeouts of 60 s, as the NIO baseline has none: with one core playing 10,000 clients,
    # the client's own backlog (taking 10,000 server flights, ~0.3 ms each) can outlast the
    # default 10 s on a busy machine, and each timeout would add a retried handshake to the storm.
    # The storm measures how fast a server gets everyone back, not its timeout policy.
    start_server "$impl" 0 1 never --max-connections $((2 * connections + 100)) \
        --handshake-timeout 60 --auth-timeout 60
    taskset -c 1 "$client_bin" bench storm --connections "$connections" --messengers 4 --server-pid "$pid" \
        --duration 60 --timeout 30 --json "${extra[@]}" --host 127.0.0.1 --port "$port" --ca "$work/pki/ca.crt" \
        --server-name localhost --user bench --token-file "$work/token" >"$out" 2>"$err" || true
    stop "$pid"
    json_field "$out" 'd["complete"]' >/dev/null 2>&1 || { bench_log "storm failed against $impl: $(cat "$err")"; return; }
    if [ "$(json_field "$out" 'd["complete"]')" = True ]; then
        record "${line}_incomplete" "$impl" "$r" 0
    else
        bench_log "storm against $impl did not complete within 60 s"
        record "${line}_incomplete" "$impl" "$r" 1
    fi
    record "${line}_s" "$impl" "$r" "$(json_field "$out" 'd["storm_s"]')"
    record "${line}_cpu" "$impl" "$r" "$(json_field "$out" 'round(d["server_cpu_s"] * 1e6 / max(1, d["reconnected"]), 1)')"
    record "${line}_p99" "$impl" "$r" "$(json_field "$out" 'd["latency_us"]["p99"] / 1000')"
    record "${line}_ack" "$impl" "$r" "$(json_field "$out" 'd["messenger_during_us"]["p99"] / 1000')"
    record "${line}_ackmax" "$impl" "$r" "$(json_field "$out" 'd["messenger_during_us"]["max"] / 1000')"
    record "${line}_ack_before" "$impl" "$r" "$(json_field "$out" 'd["messenger_before_us"]["p99"] / 1000')"
    record "${line}_errors" "$impl" "$r" "$(json_field "$out" 'sum(d["errors"].values())')"
    record "${line}_resumed" "$impl" "$r" "$(json_field "$out" 'd["resumed"] / max(1, d["reconnected"])')"
}

for r in $(seq "$((rounds > storm_rounds ? rounds : storm_rounds))"); do
    bench_log "round $r"
    if wants handshake && [ "$r" -le "$rounds" ]; then
        for impl in "${servers[@]}" s_server; do handshake_s_time "$impl" "$r"; done
        for impl in "${servers[@]}"; do handshake_bench "$impl" "$r" hs_bench; done
        for impl in "${servers[@]}"; do handshake_bench "$impl" "$r" hs_resumed; done
    fi
    if wants messages && [ "$r" -le "$rounds" ]; then
        for fsync in never always; do
            for impl in "${servers[@]}"; do messages "$impl" "$r" "msg_$fsync" "$fsync" 0 1 1; done
        done
        for impl in "${gatehouses[@]}"; do messages "$impl" "$r" msg_streams never 0 1 1 --streams; done
    fi
    if wants idle && [ "$r" -le "$storm_rounds" ]; then
        for impl in "${servers[@]}"; do idle "$impl" "$r"; done
    fi
    if wants storm && [ "$r" -le "$storm_rounds" ]; then
        for impl in "${servers[@]}"; do
            storm "$impl" "$r" storm_full
            storm "$impl" "$r" storm_resumed
        done
    fi
    if wants scaling && [ "$r" -le "$rounds" ]; then
        for impl in "${servers[@]}"; do
            messages "$impl" "$r" scale_1 never 0-1 1 0-1
            messages "$impl" "$r" scale_2 never 0-1 2 0-1
        done
    fi
done

python3 scripts/bench-table.py "$results" "$connections" "$rounds" "$storm_rounds" "$seconds" "$(($(date -u +%s) - started))"
