import GatehouseSystem

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
/// Once a peer has used up its bucket it is throttled until a failure's worth has refilled
/// (what the server then does is `PROTOCOL.md`'s "Throttling"). Successes give nothing back.
///
/// Bounded, and O(1) per call whatever the table holds: peers sit in a list ordered by their
/// last failure. A new peer past `maxPeers` evicts the one idle longest, and each failure also
/// forgets up to two peers at the idle end whose buckets are full again (they hold nothing worth
/// keeping). An attacker spreading guesses over many addresses (IPv6 /64s are cheap) makes each
/// failed AUTH cost a hash lookup and a few list links, not a scan of the table.
///
/// A value type with no lock: the server keeps one behind a mutex, shared by all workers (a
/// client's connections land on different workers).
public struct AuthFailureThrottle: Sendable {
    public let limit: Int
    public let windowSeconds: Double
    public let maxPeers: Int
    private var slotOf: [PeerKey: Int] = [:]
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    /// Most recent failure first; `newest`/`oldest` are slot indices, -1 when empty.
    private var newest = -1
    private var oldest = -1
    /// Entries the last call looked at (lookups, evictions, expiries): for tests of the bound.
    public private(set) var lastCallVisits = 0

    private struct Slot {
        var key: PeerKey
        var bucket: TokenBucket
        var newer = -1
        var older = -1
    }

    /// `limit` 0 turns throttling off.
    public init(limit: Int, windowSeconds: Double, maxPeers: Int = 65_536) {
        precondition(limit >= 0 && windowSeconds > 0 && windowSeconds.isFinite && maxPeers >= 1)
        self.limit = limit
        self.windowSeconds = windowSeconds
        self.maxPeers = maxPeers
    }

    public var isEnabled: Bool { limit > 0 }
    /// Peers currently remembered.
    public var trackedPeers: Int { slotOf.count }

    /// Whether `peer` has no failure left in its allowance.
    public mutating func isThrottled(_ peer: PeerKey, now: UInt64) -> Bool {
        lastCallVisits = 1
        guard isEnabled, let slot = slotOf[peer] else { return false }
        return !slots[slot].bucket.hasToken(now: now)
    }

    /// Counts one failed authentication from `peer`.
    public mutating func recordFailure(_ peer: PeerKey, now: UInt64) {
        lastCallVisits = 1
        guard isEnabled else { return }
        if let slot = slotOf[peer] {
            _ = slots[slot].bucket.take(now: now)
            unlink(slot)
            pushNewest(slot)
            forgetRefilled(now: now)
            return
        }
        forgetRefilled(now: now)
        if slotOf.count >= maxPeers { remove(oldest) }
        var bucket = TokenBucket(capacity: limit, refillPerSecond: Double(limit) / windowSeconds, now: now)
        _ = bucket.take(now: now)
        let entry = Slot(key: peer, bucket: bucket)
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = entry
        } else {
            slot = slots.count
            slots.append(entry)
        }
        slotOf[peer] = slot
        pushNewest(slot)
    }

    /// Forgets at most two peers at the idle end whose buckets have refilled.
    private mutating func forgetRefilled(now: UInt64) {
        for _ in 0..<2 {
            guard oldest >= 0 else { return }
            lastCallVisits += 1
            guard slots[oldest].bucket.isFull(now: now) else { return }
            remove(oldest)
        }
    }

    private mutating func remove(_ slot: Int) {
        lastCallVisits += 1
        unlink(slot)
        slotOf[slots[slot].key] = nil
        freeSlots.append(slot)
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (slots[slot].newer, slots[slot].older)
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        slots[slot].newer = -1
        slots[slot].older = -1
    }

    private mutating func pushNewest(_ slot: Int) {
        slots[slot].older = newest
        slots[slot].newer = -1
        if newest >= 0 { slots[newest].newer = slot } else { oldest = slot }
        newest = slot
    }
}

/// Open connections per peer address (`--max-connections-per-peer`), keyed like the throttle:
/// an IPv4 address, an IPv6 /64, IPv4-mapped addresses as IPv4. Pure; the server keeps one
/// behind a mutex. Holds an entry only while that address has a connection open.
public struct PeerConnectionCounts: Sendable {
    public let limit: Int
    private var counts: [PeerKey: Int] = [:]

    public init(limit: Int) {
        precondition(limit >= 1)
        self.limit = limit
    }

    /// Addresses with a connection open.
    public var trackedPeers: Int { counts.count }

    /// Counts a new connection from `peer`; false (and nothing counted) when it is at its limit.
    public mutating func admit(_ peer: PeerKey) -> Bool {
        let count = counts[peer, default: 0]
        guard count < limit else { return false }
        counts[peer] = count + 1
        return true
    }

    /// Forgets one connection from `peer`.
    public mutating func release(_ peer: PeerKey) {
        let count = counts[peer, default: 0]
        if count <= 1 { counts[peer] = nil } else { counts[peer] = count - 1 }
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
        guard let bytes = IPAddress.v6(host) else { return host }
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
