import GatehouseClient
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
    private var pending: [UInt8] = []
    private var ready: [OutgoingMessage] = []
    private var readyStart = 0
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
    var waitDescriptor: Int32? { atEOF || ready.count - readyStart > 4096 ? nil : fd }
    var isExhausted: Bool { atEOF && readyStart == ready.count }
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
            if !pending.isEmpty { emit(pending) }
            pending.removeAll()
            return
        }
        var start = 0
        for i in 0..<n where chunk[i] == 0x0A {
            if pending.isEmpty {
                emit(Array(chunk[start..<i]))
            } else {
                pending.append(contentsOf: chunk[start..<i])
                emit(pending)
                pending.removeAll(keepingCapacity: true)
            }
            start = i + 1
        }
        pending.append(contentsOf: chunk[start..<n])
    }

    private func emit(_ line: [UInt8]) {
        lineNumber += 1
        var text = line
        if text.last == 0x0D { text.removeLast() }
        guard !text.isEmpty else { return }
        ready.append(OutgoingMessage(text: text, label: name.map { "\($0):\(lineNumber)" } ?? "line \(lineNumber)"))
    }

    func take(max: Int) -> [OutgoingMessage] {
        let end = min(ready.count, readyStart + Swift.min(max, ready.count))
        let out = Array(ready[readyStart..<end])
        readyStart = end
        if readyStart > 4096 && readyStart == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyStart = 0
        }
        return out
    }
}
