import DequeModule
import GatehouseClient
import GatehouseProtocol
import GatehouseSystem

/// Messages given as command-line arguments: `message 1`, `message 2`, ...
final class ArgumentSource: MessageSource {
    private var messages: [OutgoingMessage]
    private var next = 0

    init(_ arguments: [String]) {
        messages = arguments.enumerated().map { OutgoingMessage(text: Array($1.utf8), label: "message \($0 + 1)") }
    }

    var waitDescriptor: Int32? { nil }
    func readAvailable() {}
    var isExhausted: Bool { next == messages.count }

    func take(max: Int) -> [OutgoingMessage] {
        let end = min(messages.count, next + Swift.min(max, messages.count))
        defer { next = end }
        return Array(messages[next..<end])
    }
}

/// Messages read from a descriptor (standard input or a file), one per line, as they arrive:
/// `tail -f log | gatehouse send` sends each line as it comes. Bytes are sent as read (invalid
/// UTF-8 included, for the server to judge); a CR before the LF is dropped, and empty lines are
/// skipped. Messages are named by line number (`line 7`, or `FILE:7`).
final class DescriptorSource: MessageSource {
    let fd: Int32
    private let name: String?
    /// Framed as the server frames lines, but unbounded: the server judges a line's length
    /// (its --max-line is not known here), so a long line is sent and refused there, by number.
    private var framer = LineFramer(maxLine: .max)
    private var ready = Deque<OutgoingMessage>()
    private var lineNumber = 0
    private var atEOF = false
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    /// Set when reading failed; the send then ends as if the input ended, and reports it.
    private(set) var readError: String?

    init(fd: Int32, name: String?) {
        self.fd = fd
        self.name = name
    }

    // Stop reading ahead when many lines wait for the window: memory stays bounded.
    var waitDescriptor: Int32? { atEOF || ready.count > 4096 ? nil : fd }
    var isExhausted: Bool { atEOF && ready.isEmpty }
    /// Lines read so far (the next message, if any, is at least line `linesRead + 1`).
    var linesRead: Int { lineNumber }

    func readAvailable() {
        guard !atEOF else { return }
        let n: Int
        do {
            guard case .done(let count) = try FileIO.readAvailable(fd, into: &chunk) else { return }
            n = count
        } catch {
            readError = error.reason
            atEOF = true
            return
        }
        if n == 0 {
            atEOF = true
            // A last line without its LF is a message too; its CR goes as at any line's end.
            if var last = framer.finish() {
                if last.last == 0x0D { last.removeLast() }
                emit(last)
            }
            return
        }
        chunk.withUnsafeBytes { bytes in
            framer.feed(UnsafeRawBufferPointer(rebasing: bytes[..<n])) { event in
                if case .line(let line) = event { emit(line) }
                return true  // `.tooLong` cannot happen: the limit is `Int.max`
            }
        }
    }

    /// Numbers the line (empty lines count, so labels match the file's line numbers) and queues
    /// it unless it is empty. `line` comes without its line end.
    private func emit<Bytes: Collection<UInt8>>(_ line: Bytes) {
        lineNumber += 1
        guard !line.isEmpty else { return }
        ready.append(
            OutgoingMessage(text: Array(line), label: name.map { "\($0):\(lineNumber)" } ?? "line \(lineNumber)")
        )
    }

    func take(max: Int) -> [OutgoingMessage] {
        let out = Array(ready.prefix(max))
        ready.removeFirst(out.count)
        return out
    }
}
