import Synchronization

/// Server-wide counters, updated with relaxed atomics from any thread.
public final class ServerMetrics: Sendable {
    let connectionsOpen = Atomic<Int>(0)
    let connectionsAccepted = Atomic<Int>(0)
    let handshakesCompleted = Atomic<Int>(0)
    let handshakesFailed = Atomic<Int>(0)
    let messagesAcknowledged = Atomic<Int>(0)
    let errorsSent = Atomic<Int>(0)
    let busyRefusals = Atomic<Int>(0)
    let peerLimitRefusals = Atomic<Int>(0)
    let reloadsSucceeded = Atomic<Int>(0)
    let reloadsFailed = Atomic<Int>(0)
    let throttleRefusals = Atomic<Int>(0)
    let proxyRefusals = Atomic<Int>(0)

    init() {}

    /// A snapshot, for logs and tests.
    public var snapshot: [String: Int] {
        [
            "connections_open": connectionsOpen.load(ordering: .relaxed),
            "connections_accepted": connectionsAccepted.load(ordering: .relaxed),
            "handshakes_completed": handshakesCompleted.load(ordering: .relaxed),
            "handshakes_failed": handshakesFailed.load(ordering: .relaxed),
            "messages_acknowledged": messagesAcknowledged.load(ordering: .relaxed),
            "errors_sent": errorsSent.load(ordering: .relaxed),
            "busy_refusals": busyRefusals.load(ordering: .relaxed),
            "peer_limit_refusals": peerLimitRefusals.load(ordering: .relaxed),
            "throttle_refusals": throttleRefusals.load(ordering: .relaxed),
        ]
    }
}
