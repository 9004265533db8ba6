/// An error that keeps the server from starting; `message` tells the operator what to fix.
///
/// The module's one error shape, as `TLSError`'s: a `kind` (who is at fault), our `message`
/// (exactly what the operator or user reads: `description` is the message alone), and the
/// lower-level error it wraps, if any, as `cause`.
public struct ServerError: Error, CustomStringConvertible, Sendable {
    /// What went wrong. A struct over a private enum, so new kinds can be added.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case startup, configuration
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Something the server needs could not be set up (a socket, the store, TLS). The system's or the operator's.
        public static let startup = Kind(.startup)
        /// The settings contradict each other or name what does not exist. The operator's.
        public static let configuration = Kind(.configuration)

        public var description: String {
            switch base {
            case .startup: "startup"
            case .configuration: "configuration"
            }
        }
    }

    public var kind: Kind
    public var message: String
    /// The error this one wraps (a `SystemError`, a `TLSError`, ...), nil when it is the origin.
    public var cause: (any Error & Sendable)?

    public init(_ kind: Kind, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.kind = kind
        self.message = message
        self.cause = cause
    }

    /// A `.startup` error.
    public init(_ message: String, cause: (any Error & Sendable)? = nil) {
        self.init(.startup, message, cause: cause)
    }

    public var description: String { message }
}
