import Benchmark
import GatehouseAuth

/// The cost of one failed AUTH in the throttle, with a table of a few peers beside one that an
/// attacker has filled with 100,000 distinct IPv6 /64s (65,536 remembered, the rest evicted):
/// the two should cost the same (O(1) per failure), where a scan of the table would not.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .instructions, .mallocCountTotal],
        maxDuration: .seconds(2)
    )

    func keys(_ count: Int) -> [PeerKey] {
        (0..<count).map { i in
            PeerKey(peer: "[2001:db8:\(String(i >> 16, radix: 16)):\(String(i & 0xFFFF, radix: 16))::1]:4000")
        }
    }

    for (name, peers) in [("8 peers", 8), ("100,000 /64s", 100_000)] {
        Benchmark("Throttle.recordFailure, \(name)") { benchmark, state in
            var throttle = state.throttle
            var now = state.now
            for key in state.attackers {
                now += 1000
                throttle.recordFailure(key, now: now)
            }
            blackHole(throttle.trackedPeers)
        } setup: {
            var throttle = AuthFailureThrottle(limit: 3, windowSeconds: 3600)
            let filled = keys(peers)
            var now: UInt64 = 0
            for key in filled {
                now += 1000
                throttle.recordFailure(key, now: now)
            }
            // 1,000 fresh attackers per iteration, each evicting the oldest when the table is full.
            let attackers = (0..<1000).map { PeerKey(peer: "[2001:db9:\(String($0, radix: 16))::1]:1") }
            return ThrottleState(throttle: throttle, attackers: attackers, now: now)
        }
    }
}

struct ThrottleState {
    var throttle: AuthFailureThrottle
    let attackers: [PeerKey]
    let now: UInt64
}
