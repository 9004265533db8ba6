#!/usr/bin/env bash
# Builds and runs the test suite under AddressSanitizer and ThreadSanitizer, each in its own
# scratch path (.build-asan, .build-tsan), so the normal build is untouched. The integration
# tests start the gatehouse-server built next to the test bundle, so the server runs
# instrumented too. Every sanitizer report, from the test process or any server it started, is
# written under the scratch path (log_path) and makes the run fail, even if no test noticed.
#
# Usage: scripts/sanitizers.sh [address|thread|both] [swift test arguments, e.g. --filter X]
#   default: both, the whole suite. Example: scripts/sanitizers.sh thread --filter Integration
set -uo pipefail
cd "$(dirname "$0")/.."

which=${1:-both}
case $which in
    address | thread) shift ;;
    both) [[ $# -gt 0 ]] && shift ;;
    -*) which=both ;;
    *) echo "sanitizers.sh: first argument must be address, thread or both" >&2; exit 2 ;;
esac
case $which in
    both) sanitizers=(address thread) ;;
    *) sanitizers=("$which") ;;
esac

# Tests that assert on the server's resident memory: a sanitizer's shadow memory and
# quarantine make those figures meaningless, so they are skipped here (they run in scripts/test.sh).
skip='clientThatNeverReadsIsBoundedAndClosedAtIdleTimeout|fiftyMebibyteLineIsRefusedWithoutBufferingIt'
skip+='|tenThousandClientsHoldingHalfALineStayWithinTheDocumentedBound'
skip+='|aPingFloodBehindAnUnfinishedAckIsBoundedAndOthersKeepTheirLatency|slowDiskAndMaximalLinesStayWithinTheByteBudget'

failed=()
for san in "${sanitizers[@]}"; do
    case $san in
        address) scratch=.build-asan; var=ASAN_OPTIONS; opts="halt_on_error=1:detect_leaks=0" ;;
        # Not halting: one report must not hide the rest of the suite; every report still fails the run.
        thread) scratch=.build-tsan; var=TSAN_OPTIONS; opts="halt_on_error=0:second_deadlock_stack=1" ;;
    esac
    reports=$PWD/$scratch/sanitizer-reports
    rm -rf -- "$reports"
    mkdir -p -- "$reports"
    # Not ours: swift-corelibs-foundation's Process.run reads past a getdents buffer while it
    # looks for the highest open descriptor (findMaximumOpenFromProcSelfFD). Tests only use
    # Process to start children; the server does not link Foundation's Process.
    printf 'interceptor_via_fun:*findMaximumOpenFromProcSelfFD*\n' >"$reports/../asan.supp"
    [[ $san == address ]] && opts+=":suppressions=$PWD/$scratch/asan.supp"
    # Synchronization.Mutex on Linux hands a contended lock over through a priority-inheritance
    # futex, inside the kernel, where ThreadSanitizer cannot see it: under contention it reports
    # every access made inside Mutex.withLock as a race. (Four threads appending to a
    # Mutex<[Int]> reproduce it in 15 lines with swiftc -sanitize=thread.) The bodies of
    # withLock are closures of type (inout sending T) throws -> sending R, mangled
    # ...zYuYTXEfU_; reports with such a frame are suppressed. A race between an unlocked
    # access and a locked one is hidden too: that is the price until TSan understands the lock.
    printf 'race:*zYuYTXEfU*\n' >"$reports/../tsan.supp"
    [[ $san == thread ]] && opts+=":suppressions=$PWD/$scratch/tsan.supp"
    echo "sanitizers.sh: building with -sanitize=$san in $scratch" >&2
    if ! swift build --build-tests --scratch-path "$scratch" -Xswiftc -sanitize="$san"; then
        failed+=("$san: build failed")
        continue
    fi
    echo "sanitizers.sh: testing under $san" >&2
    start=$SECONDS
    env "$var=$opts:log_path=$reports/report" \
        swift test --skip-build --scratch-path "$scratch" -Xswiftc -sanitize="$san" --skip "$skip" "$@"
    status=$?
    echo "sanitizers.sh: $san tests exited $status after $((SECONDS - start))s" >&2
    ((status == 0)) || failed+=("$san: tests failed (status $status)")
    shopt -s nullglob
    found=("$reports"/report*)
    shopt -u nullglob
    if ((${#found[@]})); then
        for f in "${found[@]}"; do
            echo "---- $f" >&2
            head -60 "$f" >&2
        done
        echo "sanitizers.sh: distinct $san reports:" >&2
        cat "${found[@]}" | grep -h '^SUMMARY' | sort | uniq -c | sort -rn >&2
        failed+=("$san: ${#found[@]} sanitizer report(s) in $reports")
    fi
done

if ((${#failed[@]})); then
    printf 'sanitizers.sh: FAIL: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "sanitizers.sh: clean under ${sanitizers[*]}"
