#!/usr/bin/env bash
# Resident memory per idle authenticated connection: gatehouse-server against the SwiftNIO
# baseline (Benchmarks/NIOBaseline) doing the same job, in the same run.
#
# For each server: start it (1 worker / 1 event-loop thread), read its VmRSS, hold N authenticated
# connections with `gatehouse bench idle`, and sample VmRSS while they are held (the peak).
# Reports (RSS held - RSS before) / N for each, the medians, and their ratio. Traffic goes to 127.0.0.1 only; every process started is stopped on exit.
#
# Usage: scripts/bench-idle.sh [--connections N] [--rounds R] [--skip-nio]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

connections=10000
rounds=3
skip_nio=0
while [ $# -gt 0 ]; do
    case "$1" in
        --connections) connections="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --skip-nio) skip_nio=1; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "bench-idle.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((connections + 200)) ] || { echo "bench-idle.sh: descriptor limit $(ulimit -n) too low for $connections" >&2; exit 1; }

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
bench_build
bench_workdir
all_cores="0-$(($(nproc) - 1))"

# One round: bytes per idle connection.
round() {
    local kind=$1
    if [ "$kind" = gatehouse ]; then
        start_server gatehouse "$all_cores" 1 never --max-connections $((connections + 100))
    else
        start_server nio "$all_cores" 1 never
    fi
    bench_client send warm-up >/dev/null
    sleep 0.5
    local before held
    before=$(rss_kib "$pid")
    bench_client bench idle --connections "$connections" --hold 6 --json > "$work/idle.json" 2>/dev/null &
    local bench=$!
    # Sample while the connections are held: the peak is the held state.
    held=$before
    for _ in $(seq 60); do
        sleep 0.25
        local now
        now=$(rss_kib "$pid")
        [ "$now" -gt "$held" ] && held=$now
        kill -0 "$bench" 2>/dev/null || break
    done
    wait "$bench" || true
    local opened
    opened=$(python3 -c "import json; d=json.load(open('$work/idle.json')); print(d.get('held', d.get('succeeded', d.get('completed', 0))))" 2>/dev/null || echo 0)
    stop_server "$pid"
    python3 -c "print(f'{($held-$before)*1024/$connections:.0f} $opened')"
}

g=(); n=()
for r in $(seq "$rounds"); do
    g+=("$(round gatehouse)")
    echo "round $r: gatehouse ${g[-1]% *} bytes per idle connection (held: ${g[-1]#* })" >&2
    if [ "$skip_nio" = 0 ]; then
        n+=("$(round nio)")
        echo "round $r: nio       ${n[-1]% *} bytes per idle connection (held: ${n[-1]#* })" >&2
    fi
done
python3 - "$connections" "${g[@]}" -- "${n[@]}" <<'PY'
import statistics, sys
conns = int(sys.argv[1])
rest = sys.argv[2:]
cut = rest.index("--")
g = [float(x.split()[0]) for x in rest[:cut]]
n = [float(x.split()[0]) for x in rest[cut + 1:]]
print(f"resident memory per idle authenticated connection ({conns} held, median of {len(g)} rounds):")
gm = statistics.median(g)
print(f"  gatehouse-server : {gm:8.0f} bytes  (DESIGN budget: 12 KiB = 12288)")
if n:
    nm = statistics.median(n)
    print(f"  NIO baseline     : {nm:8.0f} bytes")
    print(f"  ratio gatehouse / NIO : {gm / nm:.2f}")
PY
