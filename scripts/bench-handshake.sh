#!/usr/bin/env bash
# Server CPU per full TLS 1.3 handshake: gatehouse-server against `openssl s_server` (default
# options) on the same machine, in the same run, with the crypto floor from `openssl speed`.
#
# Each server runs pinned to core 0 with one worker; `openssl s_time -new` drives it from core 1
# (a full handshake per connection, no resumption). Server CPU is user+sys from /proc/PID/stat,
# before and after each round. Rounds alternate between the two servers; the medians are compared.
#
# Usage: scripts/bench-handshake.sh [--rounds N] [--seconds S] [--rsa]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5
seconds=4
certargs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --rsa) certargs+=(--rsa); shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "bench-handshake.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
cores=$(nproc)
[ "$cores" -ge 2 ] || { echo "bench-handshake.sh: needs 2 cores (server on one, load on the other)" >&2; exit 1; }

repo=$(pwd)
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
skip_nio=1
bench_cert_args=("${certargs[@]}")
bench_build
bench_workdir

# One round: µs of server CPU per handshake, and handshakes per second.
round() {
    start_server "$1" 0 1 never
    local before after out n
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -new -time "$seconds" 2>&1 || true)
    after=$(cpu_ticks "$pid")
    stop_server "$pid"
    n=$(echo "$out" | awk '/connections in [0-9.]+s;/ {print $1; exit}')
    [ -n "$n" ] && [ "$n" -gt 0 ] || { echo "s_time failed: $out" >&2; exit 1; }
    python3 -c "print(f'{($after-$before)/$tick/$n*1e6:.1f} {$n/$seconds:.0f}')"
}

g=(); s=()
for r in $(seq "$rounds"); do
    g+=("$(round gatehouse)")
    s+=("$(round s_server)")
    echo "round $r: gatehouse ${g[-1]% *} µs/handshake, s_server ${s[-1]% *} µs/handshake" >&2
done

# The crypto floor: one P-256 signature (or RSA), one X25519 key generation and one derivation.
speed=$(openssl speed -seconds 1 ecdsap256 ecdhx25519 2>/dev/null)
sign_us=$(echo "$speed" | awk '/256 bits ecdsa \(nistp256\)/ {print 1e6/$7; exit}')
ecdh_us=$(echo "$speed" | awk '/253 bits ecdh \(X25519\)/ {print 1e6/$6; exit}')

python3 - "$sign_us" "$ecdh_us" "${g[@]}" -- "${s[@]}" <<'PY'
import statistics, sys
args = sys.argv[1:]
sign, ecdh = float(args[0] or 0), float(args[1] or 0)
rest = args[2:]
cut = rest.index("--")
g = [tuple(map(float, x.split())) for x in rest[:cut]]
s = [tuple(map(float, x.split())) for x in rest[cut + 1:]]
gm = statistics.median(x[0] for x in g)
sm = statistics.median(x[0] for x in s)
floor = sign + 2 * ecdh
print(f"server CPU per full TLS 1.3 handshake (median of {len(g)} rounds, 1 worker, pinned):")
print(f"  gatehouse-server : {gm:7.1f} µs   ({statistics.median(x[1] for x in g):.0f} handshakes/s)")
print(f"  openssl s_server : {sm:7.1f} µs   ({statistics.median(x[1] for x in s):.0f} handshakes/s)")
print(f"  ratio gatehouse / s_server : {gm / sm:.2f}   (budget: at most 0.60)")
if floor:
    print(f"  crypto floor (1 ECDSA P-256 sign + 2 X25519 ops, openssl speed): {floor:.1f} µs; gatehouse / floor = {gm / floor:.2f}")
PY
