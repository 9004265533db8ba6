/// Why a connection closed: one value per way a connection ends, used by the state machine, the
/// log line (`reason=…`) and, later, metrics.
enum CloseReason: String, Sendable, CaseIterable {
    // Before the greeting: a plain close, nothing was said.
    case handshakeTimeout = "handshake timeout"
    case handshakeFailed = "handshake failed"
    case peerClosedDuringHandshake = "peer closed during handshake"
    // After a last reply, closed gracefully (close_notify, FIN, then input read until EOF).
    case busy
    case quit
    case tooManyErrors = "too many errors"
    case authThrottled = "auth throttled"
    case authTimeout = "auth timeout"
    case authExpired = "access token expired"
    case idleTimeout = "idle timeout"
    case shutdown
    case clientClosed = "client closed"
    // Abrupt: nothing more can be said.
    case peerWentAway = "peer went away"
    case tlsError = "tls error"
    case serverStopped = "server stopped"
    case setupFailed = "setup failed"
    case proxyHeaderRefused = "PROXY header refused"

    /// Whether the connection was past its handshake with a reply to deliver: such a connection
    /// closes gracefully; the others close at once.
    var isGraceful: Bool {
        switch self {
        case .busy, .quit, .tooManyErrors, .authThrottled, .authTimeout, .authExpired, .idleTimeout, .shutdown,
            .clientClosed:
            true
        default: false
        }
    }

    /// The `reason` label of `gatehouse_connections_closed_total`: the log's text in snake case.
    var metricLabel: String {
        String(rawValue.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }
}
