/// Splits a byte stream into LF-terminated lines of bounded length.
///
/// Lines wholly inside one input chunk are handed out in place, without copying; only a line
/// that spans chunks is accumulated, and never beyond `maxLine` bytes. A line longer than
/// `maxLine` (counting its CR and LF) is reported once, as soon as it is known to be too long,
/// and the rest of it is skipped up to the next LF without being buffered.
///
/// Pure: no I/O. Owned by one connection.
public struct LineFramer {
    /// One framing event.
    public enum Event {
        /// A whole line, without its LF and without a CR right before the LF.
        case line(UnsafeRawBufferPointer)
        /// The current line has exceeded the limit; its remaining bytes will be discarded.
        case tooLong
    }

    public let maxLine: Int
    /// Bytes of a line that has started but not ended.
    private var partial: [UInt8] = []
    private var discarding = false

    public init(maxLine: Int) {
        precondition(maxLine >= 2, "a line needs room for at least one byte and its LF")
        self.maxLine = maxLine
    }

    /// Bytes of the unfinished line currently held.
    public var bufferedBytes: Int { partial.count }
    /// Whether a line has started and not yet ended (or is being discarded).
    public var hasPartialLine: Bool { !partial.isEmpty || discarding }

    /// Ends the input: the bytes of a last line that never got its LF (a CR kept, as received),
    /// or nil when there are none or they were being discarded as too long. The framer is
    /// empty afterwards. For inputs that may end mid-line (a file, standard input); a
    /// connection closed mid-line drops it instead.
    public mutating func finish() -> [UInt8]? {
        defer {
            partial = []
            discarding = false
        }
        return discarding || partial.isEmpty ? nil : partial
    }

    /// Feeds `input` and calls `body` for every event it completes, in order. When `body`
    /// returns false, framing stops and the rest of `input` is dropped (the connection is closing).
    /// Returns the offset in `input` where framing stopped (`input.count` when it did not).
    @discardableResult
    public mutating func feed(_ input: UnsafeRawBufferPointer, _ body: (Event) -> Bool) -> Int {
        var start = 0
        let count = input.count
        while start < count {
            // Find the next LF in the rest of the chunk.
            let lf = SWAR.firstIndex(of: 0x0A, in: input, from: start)

            if discarding {
                guard let lf else { return count }  // still inside the long line: drop it all
                discarding = false
                start = lf + 1
                continue
            }

            guard let lf else {
                // No end in this chunk: keep what fits, or give up on the line.
                let tail = count - start
                if partial.count + tail >= maxLine {
                    partial = []
                    discarding = true
                    if !body(.tooLong) { return count }
                } else {
                    partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start...]))
                }
                return count
            }

            let lineLength = partial.count + (lf - start) + 1  // counted as received, LF included
            if lineLength > maxLine {
                partial = []
                start = lf + 1
                if !body(.tooLong) { return start }
                continue
            }
            let keepGoing: Bool
            if partial.isEmpty {
                var end = lf
                if end > start && input[end - 1] == 0x0D { end -= 1 }
                keepGoing = body(.line(UnsafeRawBufferPointer(rebasing: input[start..<end])))
            } else {
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start..<lf]))
                if partial.last == 0x0D { partial.removeLast() }
                keepGoing = partial.withUnsafeBytes { body(.line($0)) }
                // Give the memory back: an idle connection should hold no line buffer.
                partial = []
            }
            start = lf + 1
            if !keepGoing { return start }
        }
        return count
    }
}
