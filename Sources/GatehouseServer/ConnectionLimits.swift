/// The limits and timers every connection of a server shares, in nanoseconds and bytes.
struct ConnectionLimits: Sendable, Equatable {
    var handshakeTimeout: UInt64 = 10_000_000_000
    var authTimeout: UInt64 = 10_000_000_000
    var idleTimeout: UInt64 = 300_000_000_000
    /// How long a closing connection has to take its last replies: min(drain timeout, 5 s).
    var closeGrace: UInt64 = 5_000_000_000
    /// After the last reply and FIN: how long input is read and dropped, waiting for EOF.
    var lingerTimeout: UInt64 = 2_000_000_000
    /// Reply bytes queued for one client, unsent or waiting behind an ACK.
    var maxQueuedReplyBytes = 256 * 1024
    /// Messages of one connection waiting for the journal.
    var maxInFlightMessages = 4096
    /// Journal bytes of one connection's messages waiting for the journal.
    var maxInFlightBytes = 1 << 20
    /// Plaintext read from one connection per loop turn before the others get theirs.
    var readBudget = 16 * 1024
    var errorBudget = 10
    var maxLine = 65_536
    /// MSG lines per second per connection; 0 for no limit.
    var maxMessageRate = 0

    /// What a journal record costs beyond its text (id, time, user, peer, conn, n, keys).
    static let recordOverhead = 128

    init() {}

    /// One copy of the limits for all the connections of a worker: each connection's state
    /// machine holds this reference (8 bytes) instead of the 96-byte struct, which every idle
    /// connection would otherwise carry.
    final class Shared: Sendable {
        let value: ConnectionLimits
        init(_ value: ConnectionLimits) { self.value = value }
    }
}

extension ConnectionLimits {
    /// The limits `config` sets, in the machine's units.
    init(_ config: ServerConfiguration) {
        self.init()
        let ms: UInt64 = 1_000_000
        handshakeTimeout = UInt64(max(1, config.handshakeTimeoutMs)) * ms
        authTimeout = UInt64(max(1, config.authTimeoutMs)) * ms
        idleTimeout = UInt64(max(1, config.idleTimeoutMs)) * ms
        closeGrace = UInt64(max(1, min(config.drainTimeoutMs, 5_000))) * ms
        lingerTimeout = UInt64(max(1, min(config.drainTimeoutMs, 2_000))) * ms
        maxQueuedReplyBytes = config.maxOutboundBytes
        maxInFlightMessages = config.maxInFlightPerConnection
        maxInFlightBytes = config.maxInFlightBytesPerConnection
        readBudget = config.readBudgetBytes
        errorBudget = config.errorBudget
        maxLine = config.maxLine
        maxMessageRate = config.maxMessageRate
    }
}
