#!/usr/bin/env bash
# Fuzzes the protocol core (LineFramer + LineValidator + CommandParser + Session) with libFuzzer
# for a bounded time, under AddressSanitizer. The target lives in Fuzz/ (its own package, so the
# main `swift build` never sees it); see Fuzz/Sources/ProtocolFuzzer for the invariants checked.
#
# Usage: scripts/fuzz.sh [--jwt] [SECONDS] [extra libFuzzer flags...]   (default 60 seconds)
# The corpus grows in Fuzz/corpus (git-ignored), seeded from Fuzz/seeds; a crash leaves its
# input in Fuzz/artifacts/ and makes this script exit non-zero. Replay one with:
#   Fuzz/.build/release/ProtocolFuzzer Fuzz/artifacts/crash-<hash>
# --jwt fuzzes the JOSE code instead (GatehouseJWT: base64url, JSON, JWS header, key selection,
# claims, JWKS; see Fuzz/Sources/JWTFuzzer): corpus Fuzz/corpus-jwt, seeds Fuzz/seeds-jwt,
# crashes Fuzz/artifacts/jwt-*.
set -euo pipefail
cd "$(dirname "$0")/../Fuzz"

fuzzer=ProtocolFuzzer corpus=corpus seeds=seeds prefix=artifacts/ max_len=4096
if [[ ${1:-} == --jwt ]]; then
    fuzzer=JWTFuzzer corpus=corpus-jwt seeds=seeds-jwt prefix=artifacts/jwt- max_len=12288
    shift
fi
seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 1 ]] || { echo "fuzz.sh: SECONDS must be a positive whole number" >&2; exit 2; }
shift || true

swift build -c release --scratch-path .build -Xswiftc -sanitize=fuzzer,address 2>&1 |
    grep -v "Cannot export local symbol '__asan_extra_spill_area'" >&2
mkdir -p "$corpus" artifacts
echo "fuzz.sh: running $fuzzer for ${seconds}s" >&2
set +e
"./.build/release/$fuzzer" "$corpus" "$seeds" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$prefix" "$@" 2>&1 | tee artifacts/last-run.log |
    grep -E '^#[0-9]+ +(INITED|DONE|pulse)|^Done|stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|SUMMARY|Test unit written'
status=${PIPESTATUS[0]}
set -e
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' artifacts/last-run.log | tail -1)
echo "fuzz.sh: ${runs:-?} executions in ${seconds}s; corpus $(find "$corpus" -type f | wc -l) inputs; exit status $status"
exit "$status"
