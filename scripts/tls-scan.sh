#!/usr/bin/env bash
# Scans a Gatehouse server with real TLS scanners from Debian's packages, sslscan (protocols,
# every accepted cipher suite, renegotiation, compression, Heartbleed) and testssl.sh
# (protocols, cipher categories and its whole vulnerability battery), and judges the result
# against the project's TLS policy: no SSLv2/SSLv3/TLS 1.0/TLS 1.1; TLS 1.2 only with --min-tls 1.2
# and then only ECDHE with AES-GCM or ChaCha20-Poly1305; no vulnerability reported.
#
# It starts its own server (certificates from gen-certs.sh, a token file and journal in a
# temporary folder, port chosen by the kernel, 127.0.0.1) and stops it at the end.
#
# Usage: scripts/tls-scan.sh [--min-tls 1.2] [--server PATH] [--scanner both|sslscan|testssl]
# Prints each scanner's findings, then 'tls-scan: PASS' or 'tls-scan: FAIL: <reasons>' (exit 1).
# Needs: apt-get install sslscan testssl.sh python3 openssl
set -euo pipefail
PROG=${0##*/}

# A parent may hand down blocked signals (Foundation's Process does, from the test runner):
# then testssl.sh cannot stop its helper s_client with SIGTERM and hangs. Start over with an
# empty signal mask; bash has no builtin for it, python3 does.
if [[ -z ${GATEHOUSE_TLS_SCAN_UNMASKED:-} ]] && command -v python3 >/dev/null; then
    export GATEHOUSE_TLS_SCAN_UNMASKED=1
    exec python3 -c 'import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, [])
os.execvp("bash", ["bash"] + sys.argv[1:])' "$0" "$@"
fi
REPO=$(cd "$(dirname "$0")/.." && pwd -P)

MIN_TLS=1.3
SERVER=
SCANNER=both
while (($#)); do
    case $1 in
        --min-tls) MIN_TLS=${2:-}; shift 2 ;;
        --server) SERVER=${2:-}; shift 2 ;;
        --scanner) SCANNER=${2:-}; shift 2 ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "$PROG: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $MIN_TLS == 1.3 || $MIN_TLS == 1.2 ]] || { echo "$PROG: --min-tls must be 1.2 or 1.3" >&2; exit 2; }
[[ $SCANNER =~ ^(both|sslscan|testssl)$ ]] || { echo "$PROG: --scanner must be both, sslscan or testssl" >&2; exit 2; }
if [[ -z $SERVER ]]; then
    for candidate in "$REPO/.build/debug/gatehouse-server" "$REPO/.build/release/gatehouse-server"; do
        [[ -x $candidate ]] && { SERVER=$candidate; break; }
    done
fi
[[ -n $SERVER && -x $SERVER ]] || { echo "$PROG: no server binary; build it, or pass --server PATH" >&2; exit 2; }
need=(openssl python3)
[[ $SCANNER == testssl ]] || need+=(sslscan)
[[ $SCANNER == sslscan ]] || need+=(testssl)
for tool in "${need[@]}"; do
    command -v "$tool" >/dev/null || { echo "$PROG: '$tool' is not installed (apt-get install sslscan testssl.sh)" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-tls-scan.XXXXXX")
PID=
cleanup() {
    [[ -z $PID ]] || kill "$PID" 2>/dev/null || true
    [[ -z $PID ]] || wait "$PID" 2>/dev/null || true
    rm -rf -- "$WORK"
}
trap cleanup EXIT

bash "$REPO/scripts/gen-certs.sh" --out "$WORK/pki" --quiet
"$SERVER" token add scanner --tokens "$WORK/tokens" >/dev/null 2>&1
"$SERVER" serve --host 127.0.0.1 --port 0 --cert "$WORK/pki/server.crt" --key "$WORK/pki/server.key" \
    --tokens "$WORK/tokens" --journal "$WORK/journal.jsonl" --min-tls "$MIN_TLS" --workers 1 \
    >"$WORK/server.log" 2>&1 &
PID=$!
PORT=
for _ in $(seq 1 300); do
    PORT=$(sed -n 's/.*address=[^ ]*:\([0-9][0-9]*\).*/\1/p' "$WORK/server.log" | head -1)
    [[ -n $PORT ]] && break
    kill -0 "$PID" 2>/dev/null || { echo "$PROG: the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
[[ -n $PORT ]] || { echo "$PROG: the server did not start listening" >&2; exit 1; }
TARGET=127.0.0.1:$PORT
echo "tls-scan: server $SERVER on $TARGET, --min-tls $MIN_TLS"

FAIL=()
# ---------------------------------------------------------------- sslscan
if [[ $SCANNER != testssl ]]; then
    echo "== sslscan =="
    timeout 120 sslscan --no-colour --show-sigs "$TARGET" >"$WORK/sslscan.txt" 2>&1 || true
    sed -n '/SSL\/TLS Protocols:/,/SSL Certificate:/p' "$WORK/sslscan.txt" | grep -v '^ *$' | sed 's/^/sslscan: /'
    for p in SSLv2 SSLv3 TLSv1.0 TLSv1.1; do
        grep -Eq "^$p +disabled" "$WORK/sslscan.txt" || FAIL+=("sslscan: $p is not disabled")
    done
    want12=disabled
    [[ $MIN_TLS == 1.2 ]] && want12=enabled
    grep -Eq "^TLSv1.2 +$want12" "$WORK/sslscan.txt" || FAIL+=("sslscan: TLSv1.2 is not $want12")
    grep -Eq "^TLSv1.3 +enabled" "$WORK/sslscan.txt" || FAIL+=("sslscan: TLSv1.3 is not enabled")
    allowed='^(TLS_AES_128_GCM_SHA256|TLS_AES_256_GCM_SHA384|TLS_CHACHA20_POLY1305_SHA256|ECDHE-(ECDSA|RSA)-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305))$'
    ciphers=$(awk '/^(Preferred|Accepted) /{print $5}' "$WORK/sslscan.txt")
    [[ -n $ciphers ]] || FAIL+=("sslscan: no accepted cipher suite found")
    for c in $ciphers; do
        [[ $c =~ $allowed ]] || FAIL+=("sslscan: weak or unexpected cipher suite $c")
    done
    grep -q 'vulnerable to heartbleed' "$WORK/sslscan.txt" && ! grep -q 'not vulnerable to heartbleed' "$WORK/sslscan.txt" &&
        FAIL+=("sslscan: heartbleed")
    grep -q 'Insecure session renegotiation supported' "$WORK/sslscan.txt" && FAIL+=("sslscan: insecure renegotiation")
    grep -q 'Compression enabled' "$WORK/sslscan.txt" && FAIL+=("sslscan: TLS compression (CRIME)")
fi

# ---------------------------------------------------------------- testssl.sh
if [[ $SCANNER != sslscan ]]; then
    echo "== testssl.sh =="
    timeout 300 testssl --quiet --color 0 --warnings off --ip one --protocols --std --vulnerable \
        --jsonfile "$WORK/testssl.json" "$TARGET" >"$WORK/testssl.txt" 2>&1 || true
    if [[ ! -s $WORK/testssl.json ]]; then
        FAIL+=("testssl.sh produced no JSON: $(tail -3 "$WORK/testssl.txt" | tr '\n' ' ')")
    else
        # One line per finding: 'testssl: <id> <severity> <finding>'; judged by severity.
        python3 - "$WORK/testssl.json" >"$WORK/testssl.findings" <<'PY'
import json, sys
for f in json.load(open(sys.argv[1])):
    print("testssl: %s %s %s" % (f.get("id"), f.get("severity"), " ".join(str(f.get("finding", "")).split())))
PY
        cat "$WORK/testssl.findings"
        while read -r _ id severity rest; do
            case $severity in
                LOW | MEDIUM | HIGH | CRITICAL | WARN | FATAL) FAIL+=("testssl: $id $severity $rest") ;;
            esac
        done <"$WORK/testssl.findings"
        grep -q '^testssl: heartbleed OK' "$WORK/testssl.findings" || FAIL+=("testssl: no Heartbleed verdict")
    fi
fi

if ((${#FAIL[@]})); then
    printf 'tls-scan: FAIL: %s\n' "${FAIL[@]}"
    exit 1
fi
echo "tls-scan: PASS (no SSLv2/SSLv3/TLS1.0/TLS1.1, TLS1.2 $([[ $MIN_TLS == 1.2 ]] && echo 'ECDHE+AEAD only' || echo off), no weak cipher, no vulnerability reported)"
