public import GatehouseProtocol

/// Why a client operation failed.
///
/// The module's one error shape, as `TLSError`'s: `kind`, `message` (what the user reads:
/// `description` is the message alone) and the wrapped `cause`. `Kind` is a plain enum rather
/// than a struct over a private one because `.server` carries the server's `ErrorCode`, and
/// callers (the CLI, the bench, the tests) match on it.
public struct ClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The TCP connection could not be made or broke (the network's or the server's state).
        case network
        /// TLS failed: handshake, verification, or a record error.
        case tls
        /// The server answered with `ERR <code>`.
        case server(ErrorCode)
        /// The server said something this client does not understand, or no greeting.
        case protocolViolation
        /// The server closed the connection.
        case closed
        /// The client was configured wrongly (files, names).
        case configuration
        /// The server did not answer (connect, handshake or reply) within the client's deadline.
        case timeout
    }

    public var kind: Kind
    public var message: String
    /// The error this one wraps (a `SystemError`, a `TLSError`), nil when it is the origin.
    public var cause: (any Error & Sendable)?

    public init(_ kind: Kind, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.kind = kind
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    /// One word for reports and counters: `network`, `tls`, `closed`, `timeout`, or the server's
    /// code (`AUTH_FAILED`, `BUSY`, ...).
    public var label: String {
        switch kind {
        case .network: "network"
        case .tls: "tls"
        case .server(let code): code.rawValue
        case .protocolViolation: "protocol"
        case .closed: "closed"
        case .configuration: "configuration"
        case .timeout: "timeout"
        }
    }

    /// Whether this is one of the notices a server sends as its last line before closing
    /// (`BUSY`, `IDLE_TIMEOUT`, `AUTH_TIMEOUT`, `SHUTTING_DOWN`, `AUTH_EXPIRED`): not the reply to any request.
    public var isClosingNotice: Bool {
        switch kind {
        case .server(.busy), .server(.idleTimeout), .server(.authTimeout), .server(.shuttingDown),
            .server(.authExpired), .server(.superseded):
            true
        default: false
        }
    }

    /// Classifies a reply line `ERR CODE text` as a server error, or nil if it is not one
    /// (`Reply(line:)` reads it; an `ERR` line with a code this client does not know is a
    /// protocol violation).
    public static func fromReply(_ line: String) -> ClientError? {
        guard line.hasPrefix("ERR") else { return nil }
        if case .error(let code, _)? = Reply(line: line) { return ClientError(.server(code), line) }
        guard line.hasPrefix("ERR ") else { return nil }
        return ClientError(.protocolViolation, "unknown error reply: \(line)")
    }
}
