#!/usr/bin/env bash
# Where the server's CPU goes, Gatehouse (system OpenSSL 3) beside the NIO baseline (swift-nio-ssl,
# BoringSSL), profiled with `perf` under the same load in the same run: the profile behind
# bench.sh's handshake and message lines, and the floor where a target is out of reach.
#
# Each server runs pinned to core 0 with one worker; the load runs on core 1 while `perf record`
# samples the server's stacks (every thread). Every sample goes to the first category it matches,
# printed as a share and as µs per unit (server CPU per handshake or per message from /proc during
# the profile: perf's sampling adds a little to both servers alike).
#
#   handshake [--resume]   `gatehouse bench handshake` (4 connections), full or resumed handshakes:
#     key exchange     X25519 generation and derivation (EVP_PKEY_generate/derive; BoringSSL's
#                      X25519), with the library's own set-up around them
#     signature        the ECDSA P-256 CertificateVerify (EVP_DigestSignFinal without HMAC;
#                      BoringSSL's ECDSA and P-256 code); none when resumed
#     kernel           system calls, TCP and softirq work on the server's core
#     lookups, locks   OpenSSL 3's algorithm fetches, name maps, hash tables, read-write locks,
#                      parameter arrays and string compares (BoringSSL has none of these)
#     malloc/free      glibc's allocator
#     rest of TLS      the rest of libssl/libcrypto (BoringSSL: CNIOBoringSSL, bssl::): hashing,
#                      HKDF, AES-GCM, records, the handshake state machine, ASN.1, the ticket
#     server           the server's own code and the Swift runtime (NIO: its channel pipeline)
#   messages [--fsync F] [--streams]   `gatehouse bench messages`, 64 connections x 16 in flight x
#                          64 B (--streams: through one stream per connection; Gatehouse alone):
#     kernel: TCP send / TCP receive / journal write / epoll / thread wake-ups / other
#             (on loopback, a send also runs the receiving socket's TCP input: softirq under send)
#     TLS records (libssl/libcrypto, BoringSSL), journal (its thread: records, the SHA-256 digest
#     chain, bookkeeping),
#     protocol (framing, validation, parsing, replies), server (worker, state machine, glue),
#     Swift runtime (retain/release, allocation), malloc/free, libc (memcpy and the rest)
#
# Usage: scripts/profile.sh handshake|messages [--resume] [--fsync never|always] [--streams]
#                           [--seconds S] [--skip-nio] [--no-build] [--keep]
# Needs perf (Debian: linux-perf) and, without --skip-nio, the NIO baseline's build (.build-nio,
# see bench.sh); about a minute once built. One round, sampled: read it beside bench.sh's medians.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

mode=${1:-}
case "$mode" in
    handshake | messages) shift ;;
    -h | --help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "profile.sh: first argument must be handshake or messages (see --help)" >&2; exit 2 ;;
esac
seconds=4
resume=0
fsync=never
streams=()
skip_nio=0
no_build=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --resume) resume=1; shift ;;
        --fsync) fsync="$2"; shift 2 ;;
        --streams) streams=(--streams); skip_nio=1; shift ;;  # the NIO baseline has no streams
        --skip-nio) skip_nio=1; shift ;;
        --no-build) no_build=1; shift ;;
        --keep) bench_keep=1; shift ;;
        -h | --help) sed -n '2,35p' "$0"; exit 0 ;;
        *) echo "profile.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "profile.sh: --seconds must be a number" >&2; exit 2; }
[[ "$fsync" =~ ^(never|always)$ ]] || { echo "profile.sh: --fsync must be never or always" >&2; exit 2; }
command -v perf >/dev/null || { echo "profile.sh: needs perf (apt-get install linux-perf)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "profile.sh: needs 2 cores (server on one, load on the other)" >&2; exit 1; }

bench_build
bench_workdir

load() {
    local out=$1
    if [ "$mode" = handshake ]; then
        local extra=()
        [ "$resume" = 1 ] && extra=(--resume)
        taskset -c 1 "$client_bin" bench handshake --connections 4 --threads 1 --duration "$seconds" --json \
            "${extra[@]}" --host 127.0.0.1 --port "$port" --ca "$work/pki/ca.crt" --server-name localhost \
            >"$out" 2>/dev/null || true
    else
        taskset -c 1 "$client_bin" bench messages --connections 64 --window 16 --size 64 --duration "$seconds" \
            --threads 1 --json --host 127.0.0.1 --port "$port" --ca "$work/pki/ca.crt" --server-name localhost \
            "${streams[@]}" --user bench --token-file "$work/token" >"$out" 2>/dev/null || true
    fi
}

profile() {
    local impl=$1 t0 t1 out=$work/load-$1.json
    start_server "$impl" 0 1 "$fsync"
    perf record -F 997 --call-graph dwarf,16384 -o "$work/perf-$impl.data" -p "$pid" -- sleep "$seconds" \
        >/dev/null 2>&1 &
    local perf_pid=$!
    sleep 0.2  # perf attached before the load starts
    t0=$(cpu_ticks "$pid")
    load "$out"
    t1=$(cpu_ticks "$pid")
    wait "$perf_pid" || true
    stop_server "$pid"
    perf script -i "$work/perf-$impl.data" -F comm,tid,ip,sym,dso 2>/dev/null >"$work/stacks-$impl.txt"
    python3 -c "import json, sys; d = json.load(open(sys.argv[1])); n = d.get('acknowledged') or d['completed'];
print(f'{($t1 - $t0) / $tick / n * 1e6:.2f}' if n else 'nan')" "$out" >"$work/cpu-$impl.txt"
    bench_log "$impl: $(cat "$work/cpu-$impl.txt") µs of server CPU per $([ "$mode" = handshake ] && echo handshake || echo message) during the profile"
}

impls=(gatehouse)
[ "$skip_nio" = 1 ] || impls+=(nio)
for impl in "${impls[@]}"; do profile "$impl"; done

python3 - "$work" "$mode" "$resume" "$fsync" "${impls[@]}" <<'PY'
import collections, re, sys

work, mode, resume, fsync = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
impls = sys.argv[5:]
BSSL = re.compile(r"CNIOBoringSSL|bssl::")
MALLOC = re.compile(r"malloc|free|_int_|tcache|consolidate|realloc|calloc|memalign")

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

def is_tls(name, dso):
    return "libssl" in dso or "libcrypto" in dso or bool(BSSL.search(name))

# handshake
KEX = re.compile(r"EVP_PKEY_generate|EVP_PKEY_derive|X25519|x25519|curve25519")
SIG_BSSL = re.compile(r"ECDSA|ecdsa|nistz256|p256|ec_scalar|ec_point")
LOOKUPS = re.compile(r"_fetch\b|_fetch_|OPENSSL_LH_|CRYPTO_THREAD_|pthread_rwlock|strcmp|strcasecmp|"
                     r"ossl_namemap|ossl_method|OSSL_PARAM|OSSL_DECODER|OSSL_ENCODER|EVP_KEYMGMT|ossl_lib_ctx")

def handshake_category(stack):
    joined = "\n".join(name for name, _ in stack)
    leaf, dso = stack[0]
    if KEX.search(joined):
        return "key exchange"
    if ("EVP_DigestSignFinal" in joined and "HMAC" not in joined) or SIG_BSSL.search(joined):
        return "signature"
    if "kernel" in dso:
        return "kernel"
    if LOOKUPS.search(joined):
        return "lookups, locks"
    if "libc.so" in dso and MALLOC.search(leaf):
        return "malloc/free"
    if is_tls(leaf, dso):
        return "rest of TLS"
    return "server"

# messages
def message_category(stack):
    names = [name for name, _ in stack]
    joined = "\n".join(names)
    leaf, dso = stack[0]
    if "kernel" in dso:
        if re.search(r"sys_sendto|sys_sendmsg|tcp_sendmsg", joined):
            return "kernel: TCP send"
        if re.search(r"sys_recvfrom|sys_recvmsg|tcp_recvmsg|sys_read\b|ksys_read", joined):
            return "kernel: TCP receive"
        if re.search(r"sys_write|sys_pwrite|vfs_write|sys_fdatasync|sys_fsync|vfs_fsync|ext4_|xfs_", joined):
            return "kernel: journal write"
        if re.search(r"epoll", joined):
            return "kernel: epoll"
        if re.search(r"futex|sys_eventfd|eventfd_|try_to_wake_up|schedule", joined):
            return "kernel: thread wake-ups"
        return "kernel: other"
    if "libc.so" in dso and MALLOC.search(leaf):
        return "malloc/free"
    # The journal's thread and its work wherever it runs (its SHA-256 is in libcrypto too).
    if "$s16GatehouseJournal" in joined or "$s17GatehousePostgres" in joined:
        return "journal"
    if is_tls(leaf, dso):
        return "TLS records"
    # The innermost frame of our own code names the module (inlined frames included).
    for name, frame_dso in stack:
        if name.startswith("$s17GatehouseProtocol"):
            return "protocol"
        if name.startswith("$s") and ("Gatehouse" in name[:24] or "NIO" in name[:24]):
            break
    if "libswift" in dso or leaf.startswith("swift_") or leaf.startswith("swift::"):
        return "Swift runtime"
    if "libc.so" in dso:
        return "libc (memcpy, ...)"
    return "server"

if mode == "handshake":
    categorize = handshake_category
    categories = ["key exchange", "signature", "kernel", "lookups, locks", "malloc/free", "rest of TLS", "server"]
    unit = ("resumed" if resume else "full") + " TLS 1.3 handshake"
    digits = 1
else:
    categorize = message_category
    categories = ["kernel: TCP send", "kernel: TCP receive", "kernel: journal write", "kernel: epoll",
                  "kernel: thread wake-ups", "kernel: other", "TLS records", "journal", "protocol", "server",
                  "Swift runtime", "malloc/free", "libc (memcpy, ...)"]
    unit = f"acknowledged 64-byte message (--fsync {fsync})"
    digits = 3

rows = {}
for impl in impls:
    counts = collections.Counter(categorize(s) for s in samples(f"{work}/stacks-{impl}.txt"))
    try:
        cpu = float(open(f"{work}/cpu-{impl}.txt").read())
    except ValueError:
        cpu = float("nan")
    rows[impl] = (counts, sum(counts.values()) or 1, cpu)

names = {"gatehouse": "Gatehouse", "nio": "NIO"}
print(f"Server CPU per {unit}, by where it goes (perf samples: "
      + ", ".join(f"{names[i]} {rows[i][1]}" for i in impls) + ")\n")
header = "| part | " + " | ".join(f"{names[i]} µs | share" for i in impls)
header += " | g − NIO µs |" if "nio" in impls else " |"
print(header)
print("|---" * (1 + 2 * len(impls) + ("nio" in impls)) + "|")
for c in categories + ["total"]:
    cells, us = [], {}
    for impl in impls:
        counts, total, cpu = rows[impl]
        share = 1.0 if c == "total" else counts[c] / total
        us[impl] = share * cpu
        cells += [f"{us[impl]:.{digits}f}", f"{100 * share:.0f}%"]
    diff = f" | {us['gatehouse'] - us['nio']:+.{digits}f} |" if "nio" in impls else " |"
    print(f"| {c} | " + " | ".join(cells) + diff)
PY
