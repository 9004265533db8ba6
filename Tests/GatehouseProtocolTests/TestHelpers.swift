import GatehouseProtocol
import TestSupport

// Shared helpers for the GatehouseProtocol tests: byte literals, a framer driver that copies
// events out of the borrowed buffers, and a session driver (the seeded generator is TestSupport.SplitMix64).

/// The UTF-8 bytes of `s`.
func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A framing event with the line copied out of the framer's borrowed buffer.
enum Framed: Equatable, Sendable, CustomStringConvertible {
    case line([UInt8])
    case tooLong

    static func text(_ s: String) -> Framed { .line(bytes(s)) }

    var description: String {
        switch self {
        case .tooLong: return "tooLong"
        case .line(let b): return "line(\(escaped(b)))"
        }
    }
}

/// A readable rendering of bytes: printable ASCII as is, everything else as \xNN.
func escaped(_ b: [UInt8]) -> String {
    var s = "\""
    for byte in b {
        if byte >= 0x20 && byte < 0x7F && byte != 0x5C && byte != 0x22 {
            s.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            let hex = String(byte, radix: 16, uppercase: true)
            s += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return s + "\""
}

extension LineFramer {
    /// Feeds one chunk and returns the events it completed, lines copied.
    mutating func events(_ chunk: [UInt8]) -> [Framed] {
        var out: [Framed] = []
        chunk.withUnsafeBytes { buf in
            feed(buf) { event in
                switch event {
                case .line(let line): out.append(.line(Array(line)))
                case .tooLong: out.append(.tooLong)
                }
                return true
            }
        }
        return out
    }

    mutating func events(_ chunk: String) -> [Framed] { events(bytes(chunk)) }

    /// Feeds each chunk in turn and returns all events, in order.
    mutating func events(chunks: [[UInt8]]) -> [Framed] {
        chunks.flatMap { events($0) }
    }

    /// Feeds `input` one byte per read.
    mutating func eventsByteByByte(_ input: [UInt8]) -> [Framed] {
        events(chunks: input.map { [$0] })
    }
}

/// Cuts `input` into chunks of `size` bytes (the last may be shorter).
func chunked(_ input: [UInt8], size: Int) -> [[UInt8]] {
    stride(from: 0, to: input.count, by: size).map { Array(input[$0..<min($0 + size, input.count)]) }
}

extension Session {
    mutating func receive(_ line: [UInt8], now: UInt64 = 0) -> Action {
        line.withUnsafeBytes { receivedLine($0, now: now) }
    }

    mutating func receive(_ line: String, now: UInt64 = 0) -> Action { receive(bytes(line), now: now) }

    /// Drives a full AUTH exchange that the token check accepts.
    mutating func logIn(_ user: String, token: String = "secret") -> Action {
        let first = receive("AUTH \(user) \(token)")
        guard case .authenticate(let name, _) = first else { return first }
        return authenticationResult(user: name, succeeded: true)
    }
}

extension Session.Action {
    /// The reply line this action would put on the wire (journal actions as their ACK).
    var wireLine: String {
        switch self {
        case .reply(let r), .replyAndClose(let r): return r.line
        case .journal(_, let n): return Reply.ack(n).line
        case .authenticate(let user, _): return "<authenticate \(user)>"
        }
    }

    /// The user and token range of an `.authenticate` action, or nil.
    var authenticateRequest: (user: String, token: Range<Int>)? {
        if case .authenticate(let user, let token) = self { return (user, token) }
        return nil
    }

    var closes: Bool {
        if case .replyAndClose = self { return true }
        return false
    }

    /// The error code of an error reply, or nil.
    var errorCode: ErrorCode? {
        switch self {
        case .reply(.error(let code, _)), .replyAndClose(.error(let code, _)): return code
        default: return nil
        }
    }
}

/// A connection's protocol half: bytes in, framed, validated and parsed, reply lines out.
/// AUTH succeeds for any user whose token is "good"; journalled messages are recorded.
struct Pipeline {
    var framer: LineFramer
    var session: Session
    private(set) var replies: [String] = []
    private(set) var journal: [[UInt8]] = []
    private(set) var closed = false

    init(maxLine: Int = 65_536, errorBudget: Int = 10, certificateUser: String? = nil) {
        framer = LineFramer(maxLine: maxLine)
        session = Session(errorBudget: errorBudget, certificateUser: certificateUser)
    }

    mutating func send(_ s: String) { send(bytes(s)) }

    mutating func send(_ input: [UInt8]) {
        guard !closed else { return }
        var framer = self.framer
        let limit = framer.maxLine
        input.withUnsafeBytes { buf in
            framer.feed(buf) { event in
                let action: Session.Action
                switch event {
                case .tooLong:
                    action = session.lineTooLong(limit: limit)
                case .line(let line):
                    var a = session.receivedLine(line)
                    if case .authenticate(let user, let token) = a {
                        let ok = Array(UnsafeRawBufferPointer(rebasing: line[token])) == bytes("good")
                        a = session.authenticationResult(user: user, succeeded: ok)
                    }
                    if case .journal(let text, _) = a {
                        journal.append(Array(UnsafeRawBufferPointer(rebasing: line[text])))
                    }
                    action = a
                }
                replies.append(action.wireLine)
                if action.closes { closed = true }
                return !closed
            }
        }
        self.framer = framer
    }
}
