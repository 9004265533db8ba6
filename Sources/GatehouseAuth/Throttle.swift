#if canImport(Glibc)
import Glibc
#endif

/// A token bucket on the caller's monotonic clock (nanoseconds): holds up to `capacity` tokens
/// and gains `refillPerSecond` of them per second. Pure: no clock of its own, so tests drive it.
public struct TokenBucket: Sendable, Equatable {
    public let capacity: Double
    public let refillPerSecond: Double
    private var stored: Double
    private var updatedAt: UInt64

    /// A full bucket at time `now`.
    public init(capacity: Int, refillPerSecond: Double, now: UInt64) {
        precondition(capacity >= 1 && refillPerSecond > 0)
        self.capacity = Double(capacity)
        self.refillPerSecond = refillPerSecond
        self.stored = Double(capacity)
        self.updatedAt = now
    }

    /// Tokens available at `now` (a clock that goes backwards adds nothing).
    public mutating func available(now: UInt64) -> Double {
        if now > updatedAt {
            stored = min(capacity, stored + Double(now - updatedAt) / 1e9 * refillPerSecond)
            updatedAt = now
        }
        return stored
    }

    /// Whether a whole token is available at `now`.
    public mutating func hasToken(now: UInt64) -> Bool { available(now: now) >= 1 - TokenBucket.slack }

    /// Takes one token if there is one.
    public mutating func take(now: UInt64) -> Bool {
        guard hasToken(now: now) else { return false }
        stored = max(0, stored - 1)
        return true
    }

    /// Whether the bucket is full again at `now` (it then holds no information worth keeping).
    public mutating func isFull(now: UInt64) -> Bool { available(now: now) >= capacity - TokenBucket.slack }

    // Refills summed over many small steps lose a little to rounding: a token that is due must
    // not be refused for a billionth of one.
    private static let slack = 1e-6
}

/// Failed authentications per peer address, each peer with a token bucket of `limit` failures
/// that refills completely over `window` seconds.
///
/// Once a peer has used up its bucket it is throttled: its AUTH attempts are answered
/// `RATE_LIMITED` without the token being checked, until a failure's worth has refilled.
/// Throttled attempts take nothing (so the peer recovers at the refill rate whatever it does)
/// and successes give nothing back. The table is bounded: peers whose bucket is full again are
/// forgotten, and past `maxPeers` the peer idle longest is dropped.
///
/// A value type with no lock: the server keeps one behind a mutex, shared by all workers (a
/// client's connections land on different workers).
public struct AuthFailureThrottle: Sendable {
    public let limit: Int
    public let windowSeconds: Double
    public let maxPeers: Int
    private var buckets: [PeerKey: Entry] = [:]

    private struct Entry {
        var bucket: TokenBucket
        var lastFailure: UInt64
    }

    /// `limit` 0 turns throttling off.
    public init(limit: Int, windowSeconds: Double, maxPeers: Int = 65_536) {
        precondition(limit >= 0 && windowSeconds > 0 && maxPeers >= 1)
        self.limit = limit
        self.windowSeconds = windowSeconds
        self.maxPeers = maxPeers
    }

    public var isEnabled: Bool { limit > 0 }
    /// Peers currently remembered.
    public var trackedPeers: Int { buckets.count }

    /// Whether `peer` has no failure left: its AUTH must be answered RATE_LIMITED unchecked.
    public mutating func isThrottled(_ peer: PeerKey, now: UInt64) -> Bool {
        guard isEnabled, var entry = buckets[peer] else { return false }
        let throttled = !entry.bucket.hasToken(now: now)
        buckets[peer] = entry
        return throttled
    }

    /// Counts one failed authentication from `peer`.
    public mutating func recordFailure(_ peer: PeerKey, now: UInt64) {
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

/// The part of a peer's address that throttling counts against: the IPv4 address, or the /64
/// of an IPv6 address (one host usually holds a whole /64, so counting /128s would let it rotate).
/// IPv4-mapped IPv6 addresses count as their IPv4 address.
public struct PeerKey: Hashable, Sendable, CustomStringConvertible {
    public let description: String

    /// From a peer as the server prints it: `192.0.2.7:5000`, `[2001:db8::1]:5000`, or a bare address.
    public init(peer: String) {
        var host = Substring(peer)
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<close]
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.lastIndex(of: ":") {
            host = host[..<colon]  // IPv4 with a port
        }
        if let zone = host.firstIndex(of: "%") { host = host[..<zone] }
        description = PeerKey.normalize(String(host))
    }

    private static func normalize(_ host: String) -> String {
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return host }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return bytes[12..<16].map(String.init).joined(separator: ".")
        }
        var groups: [String] = []
        for i in stride(from: 0, to: 8, by: 2) {
            groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
        }
        return groups.joined(separator: ":") + "::/64"
    }
}
