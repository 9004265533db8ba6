public import GatehouseProtocol

/// Why a client operation failed.
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

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
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
