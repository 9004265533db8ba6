import DequeModule
import GatehouseProtocol
import GatehouseSystem
import Synchronization

/// The terminal of the interactive shell: a small line editor (cursor keys, Home/End, Ctrl-A/E/
/// B/F/U/K/W/L, history with Up/Down) when standard input is a terminal, plain lines otherwise;
/// and output that another thread may print at any moment without breaking the line being typed.
///
/// Thread-safe: the edit state sits behind a mutex, which every write to the screen takes, so a
/// reply printed by the I/O thread clears the prompt, prints, and redraws the prompt and the text.
final class Terminal: Sendable {
    private struct State {
        var prompt = ""
        var text: [Character] = []
        var cursor = 0
        var editing = false
    }

    let interactive: Bool
    private let state = Mutex(State())
    /// The settings raw mode replaced, to restore at exit.
    private let saved: Mutex<TerminalMode.Saved?> = Mutex(nil)

    init() {
        interactive = TerminalMode.isTerminal(0) && TerminalMode.isTerminal(1)
    }

    /// Prints `line` above the line being edited (or plainly, when not editing).
    func printLine(_ line: String) {
        state.withLock { s in
            if s.editing {
                Console.write(1, "\r\u{1B}[K" + line + "\n" + Self.render(s))
            } else {
                Console.write(1, line + "\n")
            }
        }
    }

    private static func render(_ s: State) -> String {
        var out = "\r\u{1B}[K" + s.prompt + String(s.text)
        let back = s.text.count - s.cursor
        if back > 0 { out += "\u{1B}[\(back)D" }
        return out
    }

    /// Raw mode on standard input (see `TerminalMode.enterRaw`): the keys come to us one by one.
    func enterRawMode() {
        guard interactive, let original = TerminalMode.enterRaw(0) else { return }
        saved.withLock { $0 = original }
    }

    func restore() {
        saved.withLock { t in
            guard let original = t else { return }
            TerminalMode.restore(0, original)
            t = nil
        }
    }

    // MARK: editing

    /// What reading a line produced.
    enum Input {
        case line(String)
        case endOfInput
        /// `stop` became readable (the connection ended) while waiting.
        case stopped
    }

    /// Plain mode: input framed as the server frames lines (unbounded: the server judges
    /// length), and the lines read past the last one returned.
    private struct PlainInput {
        var framer = LineFramer(maxLine: .max)
        var lines = Deque<String>()
    }
    private let plain = Mutex(PlainInput())

    /// Reads one line, editing it in place on a terminal, or as plain text otherwise. Returns
    /// `.stopped` as soon as `stop` is readable.
    ///
    /// > Warning: blocks until a line, the end of input, or `stop`.
    func readLine(prompt: String, history: inout [String], stop: Int32) -> Input {
        if !interactive { return readPlainLine(stop: stop) }
        state.withLock { s in
            s.prompt = prompt
            s.text = []
            s.cursor = 0
            s.editing = true
            Console.write(1, Self.render(s))
        }
        defer { state.withLock { $0.editing = false } }
        var historyIndex = history.count
        var draft: [Character] = []
        while true {
            guard let key = readKey(stop: stop) else { return .stopped }
            var done: Input?
            state.withLock { s in
                switch key {
                case .enter:
                    Console.write(1, "\n")
                    done = .line(String(s.text))
                case .eof:
                    if s.text.isEmpty {
                        Console.write(1, "\n")
                        done = .endOfInput
                    } else if s.cursor < s.text.count {
                        s.text.remove(at: s.cursor)
                    }
                case .interrupt:
                    if s.text.isEmpty {
                        Console.write(1, "^C\n")
                        done = .endOfInput
                    } else {
                        s.text = []
                        s.cursor = 0
                    }
                case .char(let c):
                    s.text.insert(c, at: s.cursor)
                    s.cursor += 1
                case .backspace:
                    if s.cursor > 0 {
                        s.cursor -= 1
                        s.text.remove(at: s.cursor)
                    }
                case .delete: if s.cursor < s.text.count { s.text.remove(at: s.cursor) }
                case .left: s.cursor = max(0, s.cursor - 1)
                case .right: s.cursor = min(s.text.count, s.cursor + 1)
                case .home: s.cursor = 0
                case .end: s.cursor = s.text.count
                case .killToStart:
                    s.text.removeFirst(s.cursor)
                    s.cursor = 0
                case .killToEnd: s.text.removeLast(s.text.count - s.cursor)
                case .killWord:
                    var start = s.cursor
                    while start > 0 && s.text[start - 1] == " " { start -= 1 }
                    while start > 0 && s.text[start - 1] != " " { start -= 1 }
                    s.text.removeSubrange(start..<s.cursor)
                    s.cursor = start
                case .clearScreen: Console.write(1, "\u{1B}[H\u{1B}[2J")
                case .up, .down:
                    if historyIndex == history.count { draft = s.text }
                    historyIndex = key == .up ? max(0, historyIndex - 1) : min(history.count, historyIndex + 1)
                    s.text = historyIndex == history.count ? draft : Array(history[historyIndex])
                    s.cursor = s.text.count
                case .ignored: break
                }
                if done == nil { Console.write(1, Self.render(s)) }
            }
            if let done { return done }
        }
    }

    private enum Key: Equatable {
        case char(Character)
        case enter, eof, interrupt, backspace, delete, left, right, up, down, home, end
        case killToStart, killToEnd, killWord, clearScreen, ignored
    }

    private func readKey(stop: Int32) -> Key? {
        guard let byte = readByte(stop: stop) else { return nil }
        switch byte {
        case 0x0D, 0x0A: return .enter
        case 0x04: return .eof
        case 0x03: return .interrupt
        case 0x7F, 0x08: return .backspace
        case 0x01: return .home
        case 0x05: return .end
        case 0x02: return .left
        case 0x06: return .right
        case 0x10: return .up
        case 0x0E: return .down
        case 0x15: return .killToStart
        case 0x0B: return .killToEnd
        case 0x17: return .killWord
        case 0x0C: return .clearScreen
        case 0x1B:
            guard let b1 = readByte(stop: stop), b1 == UInt8(ascii: "[") || b1 == UInt8(ascii: "O"),
                let b2 = readByte(stop: stop)
            else { return .ignored }
            switch b2 {
            case UInt8(ascii: "A"): return .up
            case UInt8(ascii: "B"): return .down
            case UInt8(ascii: "C"): return .right
            case UInt8(ascii: "D"): return .left
            case UInt8(ascii: "H"): return .home
            case UInt8(ascii: "F"): return .end
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                var last = b2
                while last != UInt8(ascii: "~"), let next = readByte(stop: stop), next != 0x1B { last = next }
                return b2 == UInt8(ascii: "3")
                    ? .delete
                    : b2 == UInt8(ascii: "1") || b2 == UInt8(ascii: "7")
                        ? .home : b2 == UInt8(ascii: "4") || b2 == UInt8(ascii: "8") ? .end : .ignored
            default: return .ignored
            }
        case 0x20...0x7E: return .char(Character(Unicode.Scalar(byte)))
        case 0xC0...0xF7:
            var bytes = [byte]
            let count = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2
            while bytes.count < count, let next = readByte(stop: stop) { bytes.append(next) }
            return String(validating: bytes, as: UTF8.self).flatMap(\.first).map(Key.char) ?? .ignored
        default: return .ignored
        }
    }

    /// One byte of standard input, or nil when `stop` became readable first or input ended.
    private func readByte(stop: Int32) -> UInt8? {
        let ready = (try? Poll.wait([(0, Poll.readable), (stop, Poll.readable)], timeoutMs: -1)) ?? [0, 0]
        if ready[1] != 0 { return nil }
        var byte: [UInt8] = [0]
        guard case .done(1)? = try? FileIO.readAvailable(0, into: &byte) else { return 0x04 }  // end of input: Ctrl-D
        return byte[0]
    }

    private func readPlainLine(stop: Int32) -> Input {
        while true {
            if let line = plain.withLock({ $0.lines.popFirst() }) { return .line(line) }
            let ready = (try? Poll.wait([(0, Poll.readable), (stop, Poll.readable)], timeoutMs: -1)) ?? [0, 0]
            if ready[1] != 0 { return .stopped }
            var chunk = [UInt8](repeating: 0, count: 4096)
            var r = 0  // a failed read ends the input, as end of file does
            if case .done(let n)? = try? FileIO.readAvailable(0, into: &chunk) { r = n }
            if r <= 0 {
                // A last line without its LF is still a line (as received: a CR stays).
                let rest = plain.withLock { $0.framer.finish() }
                return rest.map { .line(String(decoding: $0, as: UTF8.self)) } ?? .endOfInput
            }
            plain.withLock { input in
                chunk.withUnsafeBytes { bytes in
                    input.framer.feed(UnsafeRawBufferPointer(rebasing: bytes[..<r])) { event in
                        if case .line(let line) = event { input.lines.append(String(decoding: line, as: UTF8.self)) }
                        return true  // `.tooLong` cannot happen: the limit is `Int.max`
                    }
                }
            }
        }
    }
}
