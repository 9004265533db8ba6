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

/// An error opening or recovering the journal; the operator's to look at.
public struct JournalError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
