#!/usr/bin/env bash
# System calls per TLS handshake of gatehouse-server, by kind (`strace -c -f`), deterministic
# where CPU figures on a shared machine are not. One worker; `gatehouse bench handshake` with one
# connection at a time connects, completes the handshake, reads the greeting and closes; strace
# is attached to the running server only for those handshakes (start-up is not counted).
#
# Usage: scripts/syscalls-handshake.sh [--count N] [--resume] [--server BIN]
#   --server BIN  measure another gatehouse-server binary (a baseline build) with the same client
set -euo pipefail
cd "$(dirname "$0")/.."

count=300
resume=()
server=""
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count="$2"; shift 2 ;;
        --resume) resume=(--resume); shift ;;
        --server) server="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "syscalls-handshake.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v strace >/dev/null || { echo "syscalls-handshake.sh: needs strace" >&2; exit 1; }

swift build -c release --product gatehouse-server >/dev/null
swift build -c release --product gatehouse >/dev/null
bindir=$(swift build -c release --show-bin-path)
server=${server:-$bindir/gatehouse-server}

work=$(mktemp -d)
pid=""
tracer=""
cleanup() {
    for p in $tracer $pid; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
bash scripts/gen-certs.sh --out "$work/pki" --quiet
"$server" token add bench --tokens "$work/tokens" >/dev/null 2>&1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" serve --host 127.0.0.1 --port "$port" --workers 1 --cert "$work/pki/server.crt" \
    --key "$work/pki/server.key" --tokens "$work/tokens" --journal "$work/journal.jsonl" \
    --log-level warning >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
sleep 0.3  # the probe connection above is closed and forgotten before tracing starts
strace -c -f -p "$pid" -o "$work/counts" 2>/dev/null &
tracer=$!
sleep 0.5
"$bindir/gatehouse" bench handshake --host 127.0.0.1 --port "$port" --ca "$work/pki/ca.crt" \
    --server-name localhost --connections 1 --count "$count" "${resume[@]}" >"$work/client" 2>&1
sleep 0.3
kill -INT "$tracer"
wait "$tracer" 2>/dev/null || true
tracer=""
grep -E "handshakes:|errors:" "$work/client" | sed 's/^ */client: /'
echo "system calls per handshake (server, ${resume[*]:-full}, $count handshakes):"
# strace -c columns: % time, seconds, usecs/call, calls, [errors,] syscall
awk -v n="$count" '$1 ~ /^[0-9.]+$/ && $NF != "total" {
    errors = (NF == 6 ? $5 : 0)
    printf "  %-16s %6.2f", $NF, $4 / n
    if (errors > 0) printf "   (%.2f failed: EAGAIN, ENOTCONN, ...)", errors / n
    printf "\n"
    total += $4
} END { printf "  %-16s %6.2f\n", "total", total / n }' "$work/counts" | sort -k2 -nr
