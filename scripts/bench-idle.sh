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

swift build -c release --product gatehouse-server >/dev/null
swift build -c release --product gatehouse >/dev/null
bin=.build/release
if [ "$skip_nio" = 0 ]; then
    swift build -c release --package-path Benchmarks/NIOBaseline --scratch-path "$repo/.build-nio" >/dev/null
    nio_bin=$(swift build -c release --package-path Benchmarks/NIOBaseline --scratch-path "$repo/.build-nio" --show-bin-path)/nio-baseline
fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
bash scripts/gen-certs.sh --out "$work/pki" --quiet
"$bin/gatehouse-server" token add bench --tokens "$work/tokens" > "$work/token" 2>/dev/null
chmod 600 "$work/token"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
client() {
    "$bin/gatehouse" "$@" --host 127.0.0.1 --port "$port" --ca "$work/pki/ca.crt" --server-name localhost \
        --user bench --token-file "$work/token"
}

# One round: bytes per idle connection.
round() {
    local kind=$1
    port=$(free_port)
    rm -f "$work/journal.jsonl"
    if [ "$kind" = gatehouse ]; then
        "$bin/gatehouse-server" serve --host 127.0.0.1 --port "$port" --workers 1 --cert "$work/pki/server.crt" \
            --key "$work/pki/server.key" --tokens "$work/tokens" --journal "$work/journal.jsonl" \
            --max-connections $((connections + 100)) --log-level warning >/dev/null 2>&1 &
    else
        "$nio_bin" --host 127.0.0.1 --port "$port" --threads 1 --cert "$work/pki/server.crt" \
            --key "$work/pki/server.key" --tokens "$work/tokens" --journal "$work/journal.jsonl" \
            --fsync never >/dev/null 2>&1 &
    fi
    local pid=$!
    pids+=("$pid")
    wait_port "$port"
    client send warm-up >/dev/null
    sleep 0.5
    local before held
    before=$(rss_kib "$pid")
    client bench idle --connections "$connections" --hold 6 --json > "$work/idle.json" 2>/dev/null &
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
    kill "$pid"; wait "$pid" 2>/dev/null || true
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
