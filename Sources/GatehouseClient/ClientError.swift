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
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Classifies a reply line `ERR CODE text` as a server error, or nil if it is not one.
    public static func fromReply(_ line: String) -> ClientError? {
        guard line.hasPrefix("ERR ") else { return nil }
        let rest = line.dropFirst(4)
        let code = rest.split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
        guard let known = ErrorCode(rawValue: code) else {
            return ClientError(.protocolViolation, "unknown error reply: \(line)")
        }
        return ClientError(.server(known), line)
    }
}
