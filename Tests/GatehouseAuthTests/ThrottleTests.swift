import GatehouseAuth
import Testing

/// The token bucket and the per-address failure throttle, on a fake clock (nanoseconds).
@Suite struct ThrottleTests {
    static let second: UInt64 = 1_000_000_000

    @Test func bucketStartsFullAndEmptiesOneTokenAtATime() {
        var bucket = TokenBucket(capacity: 3, refillPerSecond: 1, now: 0)
        do {
            let r = bucket.take(now: 0)
            #expect(r)
        }
        do {
            let r = bucket.take(now: 0)
            #expect(r)
        }
        do {
            let r = bucket.take(now: 0)
            #expect(r)
        }
        do {
            let r = !bucket.take(now: 0)
            #expect(r)
        }
    }

    @Test func bucketRefillsAtItsRateAndNoFurtherThanCapacity() {
        var bucket = TokenBucket(capacity: 2, refillPerSecond: 4, now: 0)
        _ = bucket.take(now: 0)
        _ = bucket.take(now: 0)
        do {
            let r = !bucket.take(now: Self.second / 8)
            #expect(r)
        }  // half a token
        do {
            let r = bucket.take(now: Self.second / 4)
            #expect(r)
        }  // one token
        do {
            let r = bucket.available(now: 100 * Self.second) == 2
            #expect(r)
        }
    }

    @Test func bucketIgnoresAClockThatGoesBackwards() {
        var bucket = TokenBucket(capacity: 1, refillPerSecond: 1, now: 10 * Self.second)
        do {
            let r = bucket.take(now: 10 * Self.second)
            #expect(r)
        }
        do {
            let r = !bucket.take(now: 5 * Self.second)
            #expect(r)
        }
        do {
            let r = bucket.take(now: 11 * Self.second)
            #expect(r)
        }
    }

    @Test func peerIsThrottledAfterLimitFailuresAndRecoversAtTheRefillRate() {
        var throttle = AuthFailureThrottle(limit: 3, windowSeconds: 30)  // one failure back every 10 s
        let peer = PeerKey(peer: "192.0.2.7:5000")
        for _ in 0..<3 {
            do {
                let r = !throttle.isThrottled(peer, now: 0)
                #expect(r)
            }
            throttle.recordFailure(peer, now: 0)
        }
        do {
            let r = throttle.isThrottled(peer, now: 0)
            #expect(r)
        }
        do {
            let r = throttle.isThrottled(peer, now: 9 * Self.second)
            #expect(r)
        }
        do {
            let r = !throttle.isThrottled(peer, now: 10 * Self.second)
            #expect(r)
        }
        throttle.recordFailure(peer, now: 10 * Self.second)
        do {
            let r = throttle.isThrottled(peer, now: 10 * Self.second)
            #expect(r)
        }
    }

    @Test func throttledChecksTakeNothingSoThePeerRecovers() {
        var throttle = AuthFailureThrottle(limit: 1, windowSeconds: 1)
        let peer = PeerKey(peer: "192.0.2.7:1")
        throttle.recordFailure(peer, now: 0)
        for t in stride(from: UInt64(0), to: Self.second, by: Int(Self.second / 10)) {
            do {
                let r = throttle.isThrottled(peer, now: t)
                #expect(r)
            }
        }
        do {
            let r = !throttle.isThrottled(peer, now: Self.second)
            #expect(r)
        }
    }

    @Test func peersAreCountedApartAndPortsDoNotMatter() {
        var throttle = AuthFailureThrottle(limit: 1, windowSeconds: 60)
        throttle.recordFailure(PeerKey(peer: "192.0.2.7:1000"), now: 0)
        do {
            let r = throttle.isThrottled(PeerKey(peer: "192.0.2.7:2000"), now: 0)
            #expect(r)
        }
        do {
            let r = !throttle.isThrottled(PeerKey(peer: "192.0.2.8:1000"), now: 0)
            #expect(r)
        }
    }

    @Test func limitZeroTurnsTheThrottleOff() {
        var throttle = AuthFailureThrottle(limit: 0, windowSeconds: 60)
        let peer = PeerKey(peer: "192.0.2.7:1")
        for _ in 0..<100 { throttle.recordFailure(peer, now: 0) }
        do {
            let r = !throttle.isThrottled(peer, now: 0)
            #expect(r)
        }
        #expect(throttle.trackedPeers == 0)
    }

    @Test func tableIsBoundedForgettingRecoveredPeersFirstThenTheOldest() {
        var throttle = AuthFailureThrottle(limit: 1, windowSeconds: 10, maxPeers: 2)
        throttle.recordFailure(PeerKey(peer: "192.0.2.1:1"), now: 0)
        throttle.recordFailure(PeerKey(peer: "192.0.2.2:1"), now: 5 * Self.second)
        // At 10 s the first has refilled: it goes, the second stays throttled.
        throttle.recordFailure(PeerKey(peer: "192.0.2.3:1"), now: 10 * Self.second)
        #expect(throttle.trackedPeers == 2)
        do {
            let r = throttle.isThrottled(PeerKey(peer: "192.0.2.2:1"), now: 10 * Self.second)
            #expect(r)
        }
        // None has refilled: the oldest failure (192.0.2.2) is dropped.
        throttle.recordFailure(PeerKey(peer: "192.0.2.4:1"), now: 11 * Self.second)
        #expect(throttle.trackedPeers == 2)
        do {
            let r = !throttle.isThrottled(PeerKey(peer: "192.0.2.2:1"), now: 11 * Self.second)
            #expect(r)
        }
        do {
            let r = throttle.isThrottled(PeerKey(peer: "192.0.2.3:1"), now: 11 * Self.second)
            #expect(r)
        }
    }

    @Test(arguments: [
        ("127.0.0.1:5000", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]:5000", "0:0:0:0::/64"),
        ("[2001:db8:1:2:aaaa::1]:5000", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2:bbbb::9]:6000", "2001:db8:1:2::/64"),
        ("[::ffff:192.0.2.7]:5000", "192.0.2.7"),
        ("[fe80::1%eth0]:5000", "fe80:0:0:0::/64"),
    ])
    func peerKeysCountIPv4AddressesAndIPv6Slash64s(_ peer: String, _ key: String) {
        #expect(PeerKey(peer: peer).description == key)
    }

    /// An attacker with many /64s: each failed AUTH looks at a bounded number of entries (a
    /// lookup, the idle end of the list, one eviction), however full the table; the table never
    /// grows past its bound. (Before, each new peer past the bound scanned and copied the table.)
    @Test func aHundredThousandSlash64sCostEachFailureTheSameBoundedWork() {
        var throttle = AuthFailureThrottle(limit: 3, windowSeconds: 3600, maxPeers: 65_536)
        var maxVisits = 0
        var maxTracked = 0
        for i in 0..<100_000 {
            let peer = PeerKey(
                peer: "[2001:db8:\(String(i >> 16, radix: 16)):\(String(i & 0xFFFF, radix: 16))::1]:4000"
            )
            throttle.recordFailure(peer, now: UInt64(i) * 1000)
            maxVisits = max(maxVisits, throttle.lastCallVisits)
            maxTracked = max(maxTracked, throttle.trackedPeers)
        }
        #expect(maxTracked == 65_536)
        #expect(throttle.trackedPeers == 65_536)
        #expect(maxVisits <= 4, "visits per failure: \(maxVisits)")
        // The newest stay remembered; the oldest were evicted first.
        let newest = PeerKey(peer: "[2001:db8:1:869f::1]:1")  // i = 99_999
        throttle.recordFailure(newest, now: 100_000_000)
        throttle.recordFailure(newest, now: 100_000_001)
        do {
            let r = throttle.isThrottled(newest, now: 100_000_002)
            #expect(r)
        }
        do {
            let r = !throttle.isThrottled(PeerKey(peer: "[2001:db8:0:0::1]:1"), now: 100_000_002)
            #expect(r)
        }
    }

    @Test func refilledPeersAreForgottenAsFailuresArrive() {
        var throttle = AuthFailureThrottle(limit: 1, windowSeconds: 1, maxPeers: 1000)
        for i in 0..<500 { throttle.recordFailure(PeerKey(peer: "192.0.2.\(i % 250):1"), now: UInt64(i) * Self.second) }
        // Every earlier peer's bucket refilled within a second: at most the last few remain.
        #expect(throttle.trackedPeers <= 3)
    }
}

/// The per-address connection limit keys addresses as the throttle does.
@Suite struct PeerConnectionCountsTests {
    @Test func ipv6AddressesInOneSlash64ShareOneLimit() {
        var counts = PeerConnectionCounts(limit: 2)
        do {
            let r = counts.admit(PeerKey(peer: "2001:db8:1:2::1"))
            #expect(r)
        }
        do {
            let r = counts.admit(PeerKey(peer: "2001:db8:1:2:ffff::77"))
            #expect(r)
        }
        do {
            let r = !counts.admit(PeerKey(peer: "2001:db8:1:2:abcd::9"))
            #expect(r)
        }
        do {
            let r = counts.admit(PeerKey(peer: "2001:db8:1:3::1"))
            #expect(r)
        }  // the next /64 is another peer
        counts.release(PeerKey(peer: "2001:db8:1:2::1"))
        do {
            let r = counts.admit(PeerKey(peer: "2001:db8:1:2:abcd::9"))
            #expect(r)
        }
    }

    @Test func ipv4MappedAddressesCountAsTheirIPv4Address() {
        var counts = PeerConnectionCounts(limit: 1)
        do {
            let r = counts.admit(PeerKey(peer: "192.0.2.7"))
            #expect(r)
        }
        do {
            let r = !counts.admit(PeerKey(peer: "::ffff:192.0.2.7"))
            #expect(r)
        }
        do {
            let r = !counts.admit(PeerKey(peer: "[::ffff:192.0.2.7]:443"))
            #expect(r)
        }
        counts.release(PeerKey(peer: "::ffff:192.0.2.7"))
        #expect(counts.trackedPeers == 0)
    }
}
