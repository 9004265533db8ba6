import Benchmark
import GatehouseAuth

/// The cost of one failed AUTH in the throttle, with a table of a few peers beside one that an
/// attacker has filled with 100,000 distinct IPv6 /64s (65,536 remembered, the rest evicted):
/// the two should cost the same (O(1) per failure), where a scan of the table would not.
/// Each iteration records 100 failures from new /64s (keys made in setup, not measured). The
/// throttle as it was before (eviction by scanning and copying the table) runs beside it.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .instructions, .mallocCountTotal],
        maxDuration: .seconds(3),
        maxIterations: 300
    )
    for (name, peers) in [("1,000 peers", 1000), ("100,000 /64s", 100_000)] {
        Benchmark("Throttle: 100 failures, table of \(name)") {
            (benchmark: Benchmark, state: ThrottleState<AuthFailureThrottle>) in
            for _ in benchmark.scaledIterations { state.fail(100) }
        } setup: {
            ThrottleState<AuthFailureThrottle>(filledWith: peers)
        }
        Benchmark("Legacy throttle: 100 failures, table of \(name)") {
            (benchmark: Benchmark, state: ThrottleState<LegacyThrottle>) in
            for _ in benchmark.scaledIterations { state.fail(100) }
        } setup: {
            ThrottleState<LegacyThrottle>(filledWith: peers)
        }
    }
}

/// What both throttles offer the benchmark.
protocol FailureRecorder {
    init()
    mutating func recordFailure(_ peer: PeerKey, now: UInt64)
    var trackedPeers: Int { get }
}

extension AuthFailureThrottle: FailureRecorder {
    init() { self.init(limit: 3, windowSeconds: 3600) }
}

extension LegacyThrottle: FailureRecorder {
    init() { self.init(limit: 3, windowSeconds: 3600) }
}

/// A throttle filled with `peers` /64s and a supply of fresh attacker keys; a class, so that the
/// table is mutated in place (a struct copy would copy the whole table on each iteration).
final class ThrottleState<Throttle: FailureRecorder> {
    var throttle = Throttle()
    var now: UInt64 = 0
    var next = 0
    let attackers: [PeerKey]

    init(filledWith peers: Int) {
        attackers = (0..<100_000).map { key(prefix: "2001:db9", $0) }
        for i in 0..<peers { record(key(prefix: "2001:db8", i)) }
    }

    func record(_ key: PeerKey) {
        now += 1000
        throttle.recordFailure(key, now: now)
    }

    func fail(_ count: Int) {
        for _ in 0..<count {
            record(attackers[next % attackers.count])
            next += 1
        }
        blackHole(throttle.trackedPeers)
    }
}

func key(prefix: String, _ i: Int) -> PeerKey {
    PeerKey(peer: "[\(prefix):\(String(i >> 16, radix: 16)):\(String(i & 0xFFFF, radix: 16))::1]:4000")
}

/// The throttle before issue 9 (scan-and-copy eviction), kept here only as the baseline.
struct LegacyThrottle: Sendable {
    let limit: Int
    let windowSeconds: Double
    let maxPeers: Int
    private var buckets: [PeerKey: Entry] = [:]

    private struct Entry {
        var bucket: TokenBucket
        var lastFailure: UInt64
    }

    /// `limit` 0 turns throttling off.
    init(limit: Int, windowSeconds: Double, maxPeers: Int = 65_536) {
        precondition(limit >= 0 && windowSeconds > 0 && maxPeers >= 1)
        self.limit = limit
        self.windowSeconds = windowSeconds
        self.maxPeers = maxPeers
    }

    var isEnabled: Bool { limit > 0 }
    /// Peers currently remembered.
    var trackedPeers: Int { buckets.count }

    /// Whether `peer` has no failure left: its AUTH must be answered RATE_LIMITED unchecked.
    mutating func isThrottled(_ peer: PeerKey, now: UInt64) -> Bool {
        guard isEnabled, var entry = buckets[peer] else { return false }
        let throttled = !entry.bucket.hasToken(now: now)
        buckets[peer] = entry
        return throttled
    }

    /// Counts one failed authentication from `peer`.
    mutating func recordFailure(_ peer: PeerKey, now: UInt64) {
        guard isEnabled else { return }
        if var entry = buckets[peer] {
            _ = entry.bucket.take(now: now)
            entry.lastFailure = now
            buckets[peer] = entry
            return
        }
        if buckets.count >= maxPeers { makeRoom(now: now) }
        var bucket = TokenBucket(capacity: limit, refillPerSecond: Double(limit) / windowSeconds, now: now)
        _ = bucket.take(now: now)
        buckets[peer] = Entry(bucket: bucket, lastFailure: now)
    }

    /// Forgets peers whose bucket has refilled; if none has, the one whose last failure is oldest.
    private mutating func makeRoom(now: UInt64) {
        for (key, var entry) in buckets where entry.bucket.isFull(now: now) { buckets[key] = nil }
        if buckets.count >= maxPeers, let oldest = buckets.min(by: { $0.value.lastFailure < $1.value.lastFailure }) {
            buckets[oldest.key] = nil
        }
    }
}
