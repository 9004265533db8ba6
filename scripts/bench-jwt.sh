#!/usr/bin/env bash
# Server CPU per JWT AUTH against an opaque-token AUTH, in the same run, on the same server.
#
# One gatehouse-server (release, one worker, pinned to core 0) trusts a development IdP
# (scripts/dev-idp.sh: an ES256, an RS256 and an EdDSA key). A Python ssl client on core 1 sends
# pipelined lines on one connection for --seconds per mode, and server CPU (user+sys from
# /proc/PID/stat) is divided by the lines answered:
#   ping        PING: the cost of a line, the floor under every AUTH
#   opaque      AUTH with a tokens-file token (a wrong one, which costs the same hash and
#               constant-time compare as a right one, and can be repeated)
#   jwt-ES256, jwt-RS256, jwt-EdDSA
#               AUTH with a valid JWT, again and again (re-authentication: the full check,
#               signature and claims, every time)
# Then the reconnect storm: a new TLS connection per AUTH (handshake + AUTH + close), opaque
# against ES256, server CPU per connection. Modes alternate within each round; medians of
# --rounds are printed, with openssl speed's verify figures as the crypto floor.
#
# Usage: scripts/bench-jwt.sh [--rounds N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
seconds=3
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "bench-jwt.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(nproc)" -ge 2 ] || { echo "bench-jwt.sh: needs 2 cores (server on one, load on the other)" >&2; exit 1; }

swift build -c release --product gatehouse-server >/dev/null
bin=.build/release/gatehouse-server

work=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
bash scripts/gen-certs.sh --out "$work/pki" --quiet
token=$("$bin" token add bench --tokens "$work/tokens" 2>/dev/null)
idp=(bash scripts/dev-idp.sh --dir "$work/idp")
for alg in ES256 RS256 EdDSA; do "${idp[@]}" init --alg "$alg" --kid "$alg" >/dev/null 2>&1; done
for alg in ES256 RS256 EdDSA; do "${idp[@]}" mint --kid "$alg" --sub bench --ttl 3600 >"$work/jwt-$alg"; done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 "$bin" serve --host 127.0.0.1 --port "$port" --workers 1 --cert "$work/pki/server.crt" \
    --key "$work/pki/server.key" --tokens "$work/tokens" --journal "$work/journal.jsonl" --log-level warning \
    --error-budget 1000000000 --auth-failure-limit 0 --max-connections-per-peer 0 \
    --jwt-jwks "$work/idp/jwks.json" --jwt-issuer gatehouse-dev-idp --jwt-audience gatehouse \
    --jwt-algorithms ES256,RS256,EdDSA >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

# The load: one mode for SECONDS; prints "lines" (or connections) answered as expected.
cat >"$work/load.py" <<'PY'
import socket, ssl, sys, time
port, ca, mode, seconds, line, expect = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=ca)
def connect():
    raw = socket.create_connection(("127.0.0.1", int(port)))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    f = s.makefile("rb")
    assert f.readline().startswith(b"HELLO gatehouse/1")
    return s, f
done = 0
deadline = time.monotonic() + seconds
if mode == "pipelined":
    s, f = connect()
    batch = (line + "\n").encode() * 64
    while time.monotonic() < deadline:
        s.sendall(batch)
        for _ in range(64):
            reply = f.readline()
            if not reply.startswith(expect.encode()):
                sys.exit(f"unexpected reply: {reply!r}")
        done += 64
else:  # a connection per AUTH
    while time.monotonic() < deadline:
        s, f = connect()
        s.sendall((line + "\nQUIT\n").encode())
        reply = f.readline()
        if not reply.startswith(expect.encode()):
            sys.exit(f"unexpected reply: {reply!r}")
        f.readline()
        s.close()
        done += 1
print(done)
PY
cpu_ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
tick=$(getconf CLK_TCK)

# µs of server CPU per line (or connection) for one mode.
measure() {
    local kind=$1 line=$2 expect=$3 before after n
    before=$(cpu_ticks)
    n=$(taskset -c 1 python3 "$work/load.py" "$port" "$work/pki/ca.crt" "$kind" "$seconds" "$line" "$expect")
    after=$(cpu_ticks)
    python3 -c "print(f'{($after-$before)/$tick/$n*1e6:.2f}')"
}

modes=(ping opaque jwt-ES256 jwt-RS256 jwt-EdDSA storm-opaque storm-ES256)
declare -A results
for r in $(seq "$rounds"); do
    results[ping]+=" $(measure pipelined PING PONG)"
    results[opaque]+=" $(measure pipelined "AUTH bench ${token}x" "ERR AUTH_FAILED")"
    for alg in ES256 RS256 EdDSA; do
        results[jwt-$alg]+=" $(measure pipelined "AUTH bench $(cat "$work/jwt-$alg")" "OK AUTH")"
    done
    results[storm-opaque]+=" $(measure connections "AUTH bench $token" "OK AUTH")"
    results[storm-ES256]+=" $(measure connections "AUTH bench $(cat "$work/jwt-ES256")" "OK AUTH")"
    echo "round $r:$(for m in "${modes[@]}"; do printf ' %s %s' "$m" "${results[$m]##* }"; done)" >&2
done

speed=$(openssl speed -seconds 1 ecdsap256 rsa2048 ed25519 2>/dev/null || true)
ecdsa=$(echo "$speed" | awk '/256 bits ecdsa \(nistp256\)/ {print 1e6/$8; exit}')
rsa=$(echo "$speed" | awk '/^rsa 2048 bits/ {print 1e6/$7; exit}')
ed=$(echo "$speed" | awk '/253 bits EdDSA \(Ed25519\)/ {print 1e6/$8; exit}')

python3 - "$ecdsa" "$rsa" "$ed" "$rounds" \
    "${results[ping]}" "${results[opaque]}" "${results[jwt-ES256]}" "${results[jwt-RS256]}" "${results[jwt-EdDSA]}" \
    "${results[storm-opaque]}" "${results[storm-ES256]}" <<'PY'
import statistics, sys
ecdsa, rsa, ed = (float(x) if x else 0.0 for x in sys.argv[1:4])
rounds = sys.argv[4]
m = [statistics.median(map(float, x.split())) for x in sys.argv[5:]]
ping, opaque, es, rs, edd, storm_o, storm_e = m
print(f"server CPU per AUTH, one pipelining connection (median of {rounds} rounds, 1 worker, pinned):")
print(f"  PING (a line's floor)       {ping:8.2f} µs")
print(f"  AUTH opaque token           {opaque:8.2f} µs")
for name, v, floor in (("ES256", es, ecdsa), ("RS256", rs, rsa), ("EdDSA", edd, ed)):
    f = f"; openssl speed verify {floor:.1f} µs" if floor else ""
    print(f"  AUTH JWT {name}              {v:8.2f} µs   ratio JWT / opaque {v / opaque:6.1f}{f}")
print("reconnect storm: server CPU per connection (TLS 1.3 handshake + AUTH + QUIT):")
print(f"  opaque token                {storm_o:8.1f} µs")
print(f"  JWT ES256                   {storm_e:8.1f} µs   ratio {storm_e / storm_o:.2f}")
PY
