import DequeModule
import GatehouseProtocol
import GatehouseSystem

/// A message to send: its bytes (without LF) and how to name it to the user (`message 3`, `line 7`).
public struct OutgoingMessage: Sendable {
    public var text: [UInt8]
    public var label: String

    public init(text: [UInt8], label: String) {
        self.text = text
        self.label = label
    }
}

/// Where messages come from: a list, or a descriptor read as it becomes readable.
///
/// Not thread-safe: used by the thread running the sender.
public protocol MessageSource: AnyObject {
    /// A descriptor to wait on for more input, or nil when nothing needs waiting for.
    var waitDescriptor: Int32? { get }
    /// Called when `waitDescriptor` is readable: read what is there (one read, never blocking).
    func readAvailable()
    /// Up to `max` messages available now; empty when none is available yet.
    func take(max: Int) -> [OutgoingMessage]
    /// True once every message has been taken.
    var isExhausted: Bool { get }
}

/// Re-authenticates a long send before its credential expires (an access token that
/// `--token-command` fetches). The sender asks when it is due, sends the `AUTH` line it gives in
/// its place among the messages (replies come in order), and hands it the server's reply.
///
/// Not thread-safe: used by the thread running the sender.
public protocol Reauthenticator: AnyObject {
    /// When to re-authenticate (`Process.monotonicNanoseconds()`), or nil for never.
    var dueAt: UInt64? { get }
    /// The `AUTH` line to send now, or nil when none could be made (it moves `dueAt` on).
    func authLine() -> String?
    /// The server's reply to the last line `authLine` gave.
    func replied(_ reply: String)
}

/// What happened to one message.
public enum MessageOutcome: Sendable {
    /// `ACK n`: stored by the server.
    case acknowledged(Int)
    /// `ERR ...`: refused; not stored.
    case refused(ClientError)
}

/// The result of a pipelined send.
public struct SendSummary: Sendable {
    public var acknowledged = 0
    public var refused = 0
    /// Messages written whose reply never came: the server may or may not have stored them.
    public var unanswered: [OutgoingMessage] = []
    /// Why the connection ended early, or nil when every message was answered.
    public var connectionError: ClientError?
}

/// Sends `MSG` lines over an authenticated connection keeping at most `window` unanswered, and
/// matches each reply to its message by order (the protocol answers every line, in order).
///
/// Not thread-safe; blocks its caller until the source is exhausted and answered, or the
/// connection ends.
public struct PipelinedSender {
    public let window: Int
    public let replyTimeoutMs: Int
    /// A descriptor that becomes readable when the user interrupts (an eventfd a SIGINT handler
    /// signals): the send stops and reports what was and was not acknowledged.
    public var interruptFD: Int32?
    /// Sends `AUTH` again when due (an expiring access token); nil: never.
    public var reauthenticator: (any Reauthenticator)?

    public init(window: Int, replyTimeoutMs: Int = 30_000, interruptFD: Int32? = nil) {
        self.window = max(1, window)
        self.replyTimeoutMs = replyTimeoutMs
        self.interruptFD = interruptFD
    }

    /// Runs the send. `onOutcome` is called for each answered message, in order.
    public func run(
        connection: LineConnection,
        source: some MessageSource,
        scratch: ReadScratch,
        onOutcome: (OutgoingMessage, MessageOutcome) -> Void
    ) -> SendSummary {
        var summary = SendSummary()
        var inFlight = Deque<InFlight>()
        var authInFlight = false
        var buffered: [OutgoingMessage] = []
        var lines: [String] = []
        var ready: [Int32] = []
        var lastProgress = Process.monotonicNanoseconds()
        outer: while true {
            if buffered.isEmpty && inFlight.count < window { buffered = source.take(max: window - inFlight.count) }
            if !authInFlight, let reauthenticator, let due = reauthenticator.dueAt,
                Process.monotonicNanoseconds() >= due, let line = reauthenticator.authLine()
            {
                connection.queueLine(line)
                inFlight.append(.auth)
                authInFlight = true
            }
            for message in buffered {
                var line: [UInt8] = Array("MSG ".utf8)
                line.append(contentsOf: message.text)
                connection.queueLine(line)
                inFlight.append(.message(message))
            }
            buffered.removeAll()
            if source.isExhausted && inFlight.isEmpty { break }
            let needInput = inFlight.count < window && !source.isExhausted
            var watch = needInput ? (source.waitDescriptor.map { [$0] } ?? []) : []
            if let interruptFD { watch.append(interruptFD) }
            ready.removeAll()
            var timeoutMs: Int32 = inFlight.isEmpty ? -1 : 1000
            if !authInFlight, let due = reauthenticator?.dueAt {
                let now = Process.monotonicNanoseconds()
                let untilDue = due > now ? Int32(clamping: (due - now) / 1_000_000 + 1) : 0
                timeoutMs = timeoutMs < 0 ? untilDue : min(timeoutMs, untilDue)
            }
            let outcome = connection.pump(
                lines: &lines,
                scratch: scratch,
                timeoutMs: timeoutMs,
                watch: watch,
                readyWatched: &ready
            )
            if let interruptFD, ready.contains(interruptFD) {
                summary.connectionError = ClientError(.closed, "interrupted")
                break outer
            }
            if !ready.isEmpty { source.readAvailable() }
            for line in lines {
                lastProgress = Process.monotonicNanoseconds()
                let error = ClientError.fromReply(line)
                if let error, error.isClosingNotice {
                    summary.connectionError = error
                    break outer
                }
                guard let next = inFlight.popFirst() else {
                    summary.connectionError = ClientError(.protocolViolation, "reply with no request: \(line)")
                    break outer
                }
                guard case .message(let message) = next else {
                    authInFlight = false
                    reauthenticator?.replied(line)
                    if case .server(.tooManyErrors) = error?.kind {
                        summary.connectionError = error
                        break outer
                    }
                    continue
                }
                if let error {
                    summary.refused += 1
                    onOutcome(message, .refused(error))
                } else if case .ack(let n)? = Reply(line: line) {
                    summary.acknowledged += 1
                    onOutcome(message, .acknowledged(n))
                } else {
                    inFlight.prepend(.message(message))
                    summary.connectionError = ClientError(.protocolViolation, "unexpected reply to MSG: \(line)")
                    break outer
                }
                if case .server(.tooManyErrors) = error?.kind {
                    summary.connectionError = error
                    break outer
                }
            }
            lines.removeAll(keepingCapacity: true)
            switch outcome {
            case .ended(let error):
                summary.connectionError = error ?? ClientError(.closed, "the server closed the connection")
                break outer
            case .timedOut where !inFlight.isEmpty:
                let waited = (Process.monotonicNanoseconds() - lastProgress) / 1_000_000
                if waited > UInt64(replyTimeoutMs) {
                    summary.connectionError = ClientError(.timeout, "no reply within \(replyTimeoutMs) ms")
                    break outer
                }
            default:
                break
            }
        }
        summary.unanswered = inFlight.compactMap { entry in
            if case .message(let message) = entry { return message }
            return nil
        }
        return summary
    }

    /// A line sent and not yet answered.
    private enum InFlight {
        case message(OutgoingMessage)
        case auth
    }
}
