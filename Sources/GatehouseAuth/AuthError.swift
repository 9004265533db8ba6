/// A credential source that cannot be used: a tokens file, a client map, a JWKS, a secret file.
///
/// The module's one error shape, as `TLSError`'s: a `kind` (who is at fault), our `message`
/// (exactly what the operator or user reads: `description` is the message alone), and the
/// lower-level error it wraps, if any, as `cause`.
public struct AuthError: Error, CustomStringConvertible, Sendable {
    /// What went wrong. A struct over a private enum, so new kinds can be added.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case format, file, permissions, invalidArgument
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A file's content is not what it must be (syntax, user names, keys). The operator's.
        public static let format = Kind(.format)
        /// A file could not be opened, read or written (missing, I/O). The operator's or the system's.
        public static let file = Kind(.file)
        /// A secret file others can read or change, or owned by another user. The operator's.
        public static let permissions = Kind(.permissions)
        /// A value given on the command line is refused (a user name). The caller's.
        public static let invalidArgument = Kind(.invalidArgument)

        public var description: String {
            switch base {
            case .format: "format"
            case .file: "file"
            case .permissions: "permissions"
            case .invalidArgument: "invalid argument"
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

    /// A `.format` error.
    public init(_ message: String, cause: (any Error & Sendable)? = nil) {
        self.init(.format, message, cause: cause)
    }

    public var description: String { message }
}
