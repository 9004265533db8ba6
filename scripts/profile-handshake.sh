#!/usr/bin/env bash
# Where a TLS 1.3 handshake's server CPU goes: Gatehouse (system OpenSSL 3) beside the NIO
# baseline (swift-nio-ssl, BoringSSL), profiled with `perf` under the same load in the same run.
#
# Each server runs pinned to core 0 with one worker; `gatehouse bench handshake` (4 connections,
# full handshakes, or resumed ones with --resume) drives it from core 1 while `perf record`
# samples the server's stacks. Every sample is put in one category, the first that matches:
#   key exchange     X25519 key generation and derivation (EVP_PKEY_generate/derive; BoringSSL's
#                    X25519 functions), with the library's own set-up around them
#   signature        the ECDSA P-256 CertificateVerify (EVP_DigestSignFinal without HMAC; BoringSSL's
#                    ECDSA and P-256 functions); none in a resumed handshake
#   kernel           system calls, TCP and softirq work on the server's core
#   lookups, locks   OpenSSL 3's algorithm fetches, name maps, hash tables, read-write locks,
#                    parameter arrays and string compares (BoringSSL has none of these)
#   malloc/free      glibc's allocator
#   rest of TLS      everything else inside libssl/libcrypto (BoringSSL: CNIOBoringSSL, bssl::):
#                    hashing, HKDF, AES-GCM, record layer, handshake state machine, ASN.1
#   server           the server's own code and the Swift runtime (Gatehouse; NIO and its
#                    channel pipeline)
# and printed as a share and as µs per handshake (server CPU per handshake from /proc, measured
# during the profile: perf's sampling adds a little to both servers alike).
#
# Usage: scripts/profile-handshake.sh [--seconds S] [--resume] [--no-build] [--keep]
# Needs perf (Debian: linux-perf) and the NIO baseline's build (.build-nio, see bench.sh); about a
# minute once built. Read it beside bench.sh's handshake lines: this explains them, it does not
# replace them (one round, and sampling perturbs a little).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

seconds=4
resume=0
no_build=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --resume) resume=1; shift ;;
        --no-build) no_build=1; shift ;;
        --keep) bench_keep=1; shift ;;
        -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "profile-handshake.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "profile-handshake.sh: --seconds must be a number" >&2; exit 2; }
command -v perf >/dev/null || { echo "profile-handshake.sh: needs perf (apt-get install linux-perf)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "profile-handshake.sh: needs 2 cores (server on one, load on the other)" >&2; exit 1; }

bench_build
bench_workdir
extra=()
[ "$resume" = 1 ] && extra=(--resume)

profile() {
    local impl=$1 t0 t1 out=$work/hs-$1.json
    start_server "$impl" 0 1 never
    perf record -F 997 --call-graph dwarf,16384 -o "$work/perf-$impl.data" -p "$pid" -- sleep "$seconds" \
        >/dev/null 2>&1 &
    local perf_pid=$!
    sleep 0.2  # perf attached before the load starts
    t0=$(cpu_ticks "$pid")
    taskset -c 1 "$client_bin" bench handshake --connections 4 --threads 1 --duration "$seconds" --json \
        "${extra[@]}" --host 127.0.0.1 --port "$port" --ca "$work/pki/ca.crt" --server-name localhost \
        >"$out" 2>/dev/null || true
    t1=$(cpu_ticks "$pid")
    wait "$perf_pid" || true
    stop_server "$pid"
    perf script -i "$work/perf-$impl.data" -F comm,tid,ip,sym,dso 2>/dev/null >"$work/stacks-$impl.txt"
    python3 -c "import json, sys; d = json.load(open(sys.argv[1])); n = d['completed'];
print(f'{($t1 - $t0) / $tick / n * 1e6:.1f}' if n else 'nan')" "$out" >"$work/cpu-$impl.txt"
    bench_log "$impl: $(cat "$work/cpu-$impl.txt") µs of server CPU per handshake during the profile"
}

profile gatehouse
profile nio

python3 - "$work" "$resume" <<'PY'
import collections, re, sys

work, resume = sys.argv[1], sys.argv[2] == "1"
CATEGORIES = ["key exchange", "signature", "kernel", "lookups, locks", "malloc/free", "rest of TLS", "server"]
LOOKUPS = re.compile(r"_fetch\b|_fetch_|OPENSSL_LH_|CRYPTO_THREAD_|pthread_rwlock|strcmp|strcasecmp|"
                     r"ossl_namemap|ossl_method|OSSL_PARAM|OSSL_DECODER|OSSL_ENCODER|EVP_KEYMGMT|ossl_lib_ctx")
MALLOC = re.compile(r"malloc|free|_int_|tcache|consolidate|realloc|calloc|memalign")
KEX = re.compile(r"EVP_PKEY_generate|EVP_PKEY_derive|X25519|x25519|curve25519")
SIG_BSSL = re.compile(r"ECDSA|ecdsa|nistz256|p256|ec_scalar|ec_point")
TLS_BSSL = re.compile(r"CNIOBoringSSL|bssl::")

def samples(path):
    stack = []
    for line in open(path, errors="replace"):
        if not line.strip():
            if stack:
                yield stack
            stack = []
        elif line[0] in " \t":
            parts = line.strip().split(None, 1)
            rest = parts[1] if len(parts) > 1 else ""
            m = re.match(r"(.*?)(?:\+0x[0-9a-f]+)? \((.*)\)$", rest)
            stack.append((m.group(1), m.group(2)) if m else (rest, ""))
    if stack:
        yield stack

def category(stack):
    names = [s for s, _ in stack]
    joined = "\n".join(names)
    leaf, leaf_dso = stack[0]
    if KEX.search(joined):
        return "key exchange"
    if ("EVP_DigestSignFinal" in joined and "HMAC" not in joined) or SIG_BSSL.search(joined):
        return "signature"
    if "kernel" in leaf_dso:
        return "kernel"
    if LOOKUPS.search(joined):
        return "lookups, locks"
    if "libc.so" in leaf_dso and MALLOC.search(leaf):
        return "malloc/free"
    if "libssl" in leaf_dso or "libcrypto" in leaf_dso or TLS_BSSL.search(leaf):
        return "rest of TLS"
    return "server"

rows = {}
for impl in ("gatehouse", "nio"):
    counts = collections.Counter(category(s) for s in samples(f"{work}/stacks-{impl}.txt"))
    total = sum(counts.values()) or 1
    try:
        cpu = float(open(f"{work}/cpu-{impl}.txt").read())
    except ValueError:
        cpu = float("nan")
    rows[impl] = (counts, total, cpu)

kind = "resumed" if resume else "full"
print(f"Server CPU per {kind} TLS 1.3 handshake, by where it goes (perf samples: "
      f"Gatehouse {rows['gatehouse'][1]}, NIO {rows['nio'][1]})\n")
print("| part | Gatehouse µs | share | NIO µs | share | g − NIO µs |")
print("|---|---|---|---|---|---|")
for c in CATEGORIES + ["total"]:
    cells = []
    us = {}
    for impl in ("gatehouse", "nio"):
        counts, total, cpu = rows[impl]
        share = 1.0 if c == "total" else counts[c] / total
        us[impl] = share * cpu
        cells += [f"{us[impl]:.1f}", f"{100 * share:.0f}%"]
    print(f"| {c} | " + " | ".join(cells) + f" | {us['gatehouse'] - us['nio']:+.1f} |")
PY
