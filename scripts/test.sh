#!/usr/bin/env bash
# Runs every test: unit tests of each module and the integration tests that start the real
# server binary and drive it with openssl s_client, gnutls-cli, Python's ssl and the Swift client.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in openssl pkg-config python3; do
    command -v "$tool" >/dev/null || { echo "test.sh: '$tool' is not installed (see README: Prerequisites)" >&2; exit 1; }
done
for tool in gnutls-cli sslscan testssl haproxy; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
        echo "test.sh: '$tool' is not installed; its tests will fail (apt-get install gnutls-bin sslscan testssl.sh haproxy)" >&2
done
python3 -c "import prometheus_client, yaml, cryptography" 2>/dev/null ||
    echo "test.sh: python modules prometheus_client, pyyaml and cryptography are needed (pip install prometheus_client pyyaml cryptography)" >&2

# House style (swift-nio-ssl's .swift-format). Fix with:
#   swift format format --in-place --recursive Sources Tests Package.swift
swift format lint --strict --recursive Sources Tests Package.swift

# Build everything first (the integration tests run the built gatehouse-server binary).
swift build --build-tests "$@"
# The test runner process itself has died with SIGSEGV about once in ten full runs (seen twice,
# at different tests, both times while many tests start processes in parallel; not yet
# reproduced in isolation — see the issue notes). A crash of the runner is not a test failure:
# rerun once then, loudly. A failing test is never rerun.
# Swift's own backtracer prints the crashing thread's stack into the log if that happens again.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=yes,interactive=no,threads=all}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if swift test --skip-build "$@" 2>&1 | tee "$log"; then exit 0; fi
if grep -q "exited with unexpected signal code" "$log"; then
    echo "test.sh: the test runner crashed ($(grep -o 'unexpected signal code [0-9]*' "$log" | head -1)); running the tests once more" >&2
    swift test --skip-build "$@"
else
    exit 1
fi
