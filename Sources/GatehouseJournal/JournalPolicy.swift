/// When the journal forces its writes to stable storage.
public enum FsyncPolicy: Sendable, Equatable, CustomStringConvertible {
    /// fdatasync before any ACK of the batch leaves (group commit). The default.
    case always
    /// fdatasync at least every `milliseconds`; an ACK may precede the flush by up to that long.
    case interval(milliseconds: Int)
    /// Never: the kernel writes back when it likes. An ACK means only "in the page cache".
    case never

    /// Parses `always`, `never` or `interval=<ms>`.
    public init?(parsing text: String) {
        switch text {
        case "always": self = .always
        case "never": self = .never
        default:
            guard text.hasPrefix("interval="), let ms = Int(text.dropFirst("interval=".count)), ms > 0, ms <= 60_000
            else { return nil }
            self = .interval(milliseconds: ms)
        }
    }

    public var description: String {
        switch self {
        case .always: "always"
        case .never: "never"
        case .interval(let ms): "interval=\(ms)"
        }
    }
}

/// An error opening, recovering or checking the journal; the operator's to look at.
///
/// The module's one error shape, as `TLSError`'s: a `kind` (who is at fault), our `message`
/// (exactly what the operator or user reads: `description` is the message alone), and the
/// lower-level error it wraps, if any, as `cause`.
public struct JournalError: Error, CustomStringConvertible, Sendable {
    /// What went wrong. A struct over a private enum, so new kinds can be added.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case io, corrupt, configuration
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A journal file could not be opened, read, written or synced. The system's or the operator's.
        public static let io = Kind(.io)
        /// A journal file holds records that fail their checks (digest chain, ids, format). Damage or tampering.
        public static let corrupt = Kind(.corrupt)
        /// The journal's settings or state file refuse to start (size limits, a state ahead of the file). The operator's.
        public static let configuration = Kind(.configuration)

        public var description: String {
            switch base {
            case .io: "io"
            case .corrupt: "corrupt"
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

    /// A `.io` error.
    public init(_ message: String, cause: (any Error & Sendable)? = nil) {
        self.init(.io, message, cause: cause)
    }

    public var description: String { message }
}
