import GatehouseProtocol
import TestSupport
import Testing

/// The framing rules of PROTOCOL.md, written as plainly as possible: split at LF, count each
/// line as received (CR and LF included), drop one CR right before the LF. An unfinished tail
/// that already fills the limit is known to be too long, since its LF is still to come.
func referenceFrames(_ input: [UInt8], maxLine: Int) -> [Framed] {
    var out: [Framed] = []
    var segments = input.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
    let tail = segments.removeLast()  // after the last LF: an unfinished line (maybe empty)
    for segment in segments {
        if segment.count + 1 > maxLine {
            out.append(.tooLong)
        } else {
            out.append(.line(segment.last == 0x0D ? Array(segment.dropLast()) : segment))
        }
    }
    if tail.count >= maxLine { out.append(.tooLong) }
    return out
}

@Suite("LineFramer")
struct LineFramerTests {

    // MARK: - Lines and line ends

    @Test func deliversLineWithoutItsLF() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events("PING\n") == [.text("PING")])
    }

    @Test func finishHandsOverTheUnterminatedLastLineOnce() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events("one\ntwo\r") == [.text("one")])
        #expect(f.finish() == Array("two\r".utf8))  // as received: no LF, so its CR stays
        #expect(f.finish() == nil)
        #expect(!f.hasPartialLine)
        #expect(f.events("three\n") == [.text("three")])
        #expect(f.finish() == nil)
    }

    @Test func finishDropsALineBeingDiscarded() {
        var f = LineFramer(maxLine: 4)
        #expect(f.events("abcdef") == [.tooLong])
        #expect(f.finish() == nil)
        #expect(f.events("ok\n") == [.text("ok")])  // the new input starts a fresh line
    }

    @Test func dropsCRRightBeforeLF() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events("PING\r\n") == [.text("PING")])
    }

    @Test func dropsOnlyOneCRBeforeLF() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events("PING\r\r\n") == [.text("PING\r")])
    }

    @Test func keepsLoneCRInsideLine() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events("MSG a\rb\n") == [.text("MSG a\rb")])
    }

    @Test func loneCRIsNotALineEnd() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events("PING\rPING\r").isEmpty)
        #expect(f.hasPartialLine)
        #expect(f.bufferedBytes == 10)
        #expect(f.events("\n") == [.text("PING\rPING")])
    }

    @Test func keepsCRThatEndsAReadButNotTheLine() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events(chunks: [bytes("ab\r"), bytes("c\n")]) == [.text("ab\rc")])
    }

    @Test func dropsCRWhenCRAndLFArriveInSeparateReads() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events(chunks: [bytes("ab\r"), bytes("\n")]) == [.text("ab")])
        var g = LineFramer(maxLine: 100)
        #expect(g.events(chunks: [bytes("ab"), bytes("\r"), bytes("\n")]) == [.text("ab")])
    }

    @Test func deliversEmptyLines() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events("\n\r\n\n") == [.line([]), .line([]), .line([])])
    }

    @Test func lineOfOnlyCRAcrossReadsIsEmpty() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events(chunks: [bytes("\r"), bytes("\n")]) == [.line([])])
    }

    @Test func keepsLeadingAndTrailingSpaces() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events("  MSG  x  \r\n") == [.text("  MSG  x  ")])
    }

    @Test func passesNonASCIIBytesThrough() {
        let raw: [UInt8] = [0xFF, 0x00, 0xC3, 0xA9, 0x0D, 0x0D, 0x0A]
        var f = LineFramer(maxLine: 100)
        #expect(f.events(raw) == [.line([0xFF, 0x00, 0xC3, 0xA9, 0x0D])])
    }

    // MARK: - Reads and lines

    @Test func deliversManyLinesFromOneRead() {
        var f = LineFramer(maxLine: 100)
        let events = f.events("PING\r\nAUTH alice tok\nMSG one\r\n\nMSG two\nQUIT\n")
        #expect(
            events == [
                .text("PING"), .text("AUTH alice tok"), .text("MSG one"), .line([]), .text("MSG two"), .text("QUIT"),
            ]
        )
        #expect(!f.hasPartialLine)
        #expect(f.bufferedBytes == 0)
    }

    @Test func deliversThousandPipelinedLinesInOrder() {
        var input: [UInt8] = []
        for i in 1...1000 { input += bytes("MSG \(i)\r\n") }
        var f = LineFramer(maxLine: 64)
        let events = f.events(input)
        #expect(events.count == 1000)
        #expect(events == (1...1000).map { Framed.text("MSG \($0)") })
    }

    @Test func holdsUnfinishedLineUntilItsLF() {
        var f = LineFramer(maxLine: 100)
        #expect(f.events("MSG hel").isEmpty)
        #expect(f.hasPartialLine)
        #expect(f.bufferedBytes == 7)
        #expect(f.events("lo").isEmpty)
        #expect(f.bufferedBytes == 9)
        #expect(f.events(" world\nPI") == [.text("MSG hello world")])
        #expect(f.bufferedBytes == 2)
        #expect(f.events("NG\n") == [.text("PING")])
        #expect(f.bufferedBytes == 0)
        #expect(!f.hasPartialLine)
    }

    @Test func freshFramerHoldsNothing() {
        let f = LineFramer(maxLine: 10)
        #expect(f.maxLine == 10)
        #expect(f.bufferedBytes == 0)
        #expect(!f.hasPartialLine)
    }

    @Test func emptyReadProducesNothingAndChangesNothing() {
        var f = LineFramer(maxLine: 10)
        #expect(f.events([]).isEmpty)
        #expect(f.events("ab").isEmpty)
        #expect(f.events([]).isEmpty)
        #expect(f.bufferedBytes == 2)
        #expect(f.events("\n") == [.text("ab")])
    }

    static let splitSamples: [String] = [
        "PING\n",
        "MSG héllo 漢字 😀\r\n",
        "AUTH alice s3cr3t-token\nMSG a\r\nMSG  b \n\nQUIT\r\n",
        "a\rb\r\r\n\r\n",
    ]

    @Test(arguments: splitSamples)
    func lineSplitByteByByteEqualsOneRead(_ text: String) {
        var whole = LineFramer(maxLine: 100)
        var bytewise = LineFramer(maxLine: 100)
        let expected = whole.events(text)
        #expect(!expected.isEmpty)
        #expect(bytewise.eventsByteByByte(bytes(text)) == expected)
        #expect(bytewise.bufferedBytes == 0)
    }

    @Test(arguments: splitSamples, [2, 3, 5, 7])
    func lineSplitIntoFixedChunksEqualsOneRead(_ text: String, size: Int) {
        var whole = LineFramer(maxLine: 100)
        var split = LineFramer(maxLine: 100)
        #expect(split.events(chunks: chunked(bytes(text), size: size)) == whole.events(text))
    }

    @Test func lineSplitAcrossManyReadsIsReassembled() {
        let text = "MSG " + String(repeating: "0123456789", count: 50)
        var f = LineFramer(maxLine: 1000)
        var events: [Framed] = []
        for (i, chunk) in chunked(bytes(text + "\r\n"), size: 13).enumerated() {
            events += f.events(chunk)
            if events.isEmpty { #expect(f.bufferedBytes == (i + 1) * 13) }
        }
        #expect(events == [.text(text)])
    }

    // MARK: - The limit

    // For a limit L, a line of L bytes counting its LF (and CR) passes; L + 1 bytes is too long.

    @Test(arguments: [2, 3, 10, 100, 65_536])
    func acceptsLineExactlyAtLimit(_ limit: Int) {
        let body = [UInt8](repeating: 0x61, count: limit - 1)
        var f = LineFramer(maxLine: limit)
        #expect(f.events(body + [0x0A]) == [.line(body)])
    }

    @Test(arguments: [3, 10, 100, 65_536])
    func acceptsCRLFLineExactlyAtLimit(_ limit: Int) {
        let body = [UInt8](repeating: 0x61, count: limit - 2)
        var f = LineFramer(maxLine: limit)
        #expect(f.events(body + [0x0D, 0x0A]) == [.line(body)])
    }

    @Test(arguments: [2, 3, 10, 100, 65_536])
    func rejectsLineOneByteOverLimit(_ limit: Int) {
        let body = [UInt8](repeating: 0x61, count: limit)
        var f = LineFramer(maxLine: limit)
        #expect(f.events(body + [0x0A]) == [.tooLong])
    }

    @Test(arguments: [3, 10, 100, 65_536])
    func countsTheCRTowardTheLimit(_ limit: Int) {
        // The same text that passes with a bare LF is one byte over with CRLF.
        let body = [UInt8](repeating: 0x61, count: limit - 1)
        var lf = LineFramer(maxLine: limit)
        var crlf = LineFramer(maxLine: limit)
        #expect(lf.events(body + [0x0A]) == [.line(body)])
        #expect(crlf.events(body + [0x0D, 0x0A]) == [.tooLong])
    }

    @Test(arguments: [1, 2, 7, 64])
    func limitHoldsWhateverTheReadSizes(_ size: Int) {
        let limit = 64
        let atLimit = [UInt8](repeating: 0x62, count: limit - 2) + [0x0D, 0x0A]
        let over = [UInt8](repeating: 0x63, count: limit - 1) + [0x0D, 0x0A]
        var f = LineFramer(maxLine: limit)
        let events = f.events(chunks: chunked(atLimit + over + bytes("PING\n"), size: size))
        #expect(events == [.line(Array(atLimit.dropLast(2))), .tooLong, .text("PING")])
    }

    @Test func rejectsLineOneByteOverLimitFedByteByByte() {
        var f = LineFramer(maxLine: 8)
        #expect(f.eventsByteByByte(bytes("1234567\n")) == [.text("1234567")])
        #expect(f.eventsByteByByte(bytes("12345678\n")) == [.tooLong])
        #expect(f.eventsByteByByte(bytes("123456\r\n")) == [.text("123456")])
        #expect(f.eventsByteByByte(bytes("1234567\r\n")) == [.tooLong])
    }

    @Test func smallestLimitAllowsOneByteLines() {
        var f = LineFramer(maxLine: 2)
        #expect(f.events("a\n\nab\n\r\nb\n") == [.text("a"), .line([]), .tooLong, .line([]), .text("b")])
    }

    @Test func reportsTooLongAsSoonAsTheLimitIsReachedWithoutLF() {
        var f = LineFramer(maxLine: 10)
        #expect(f.events("123456789").isEmpty)  // 9 bytes: a 10th could be its LF
        #expect(f.bufferedBytes == 9)
        #expect(f.events("0") == [.tooLong])  // 10 bytes and no LF yet: it can only be longer
        #expect(f.bufferedBytes == 0)
        #expect(f.hasPartialLine)
    }

    @Test func reportsTooLongOnceForAVeryLongLine() {
        var f = LineFramer(maxLine: 16)
        var events: [Framed] = []
        for _ in 0..<500 { events += f.events(bytes("xxxxxxxxxxxxxxxxxxxxxxx")) }
        events += f.events("yy\n")
        #expect(events == [.tooLong])
    }

    // MARK: - Discarding the rest of a long line

    @Test func bufferedBytesStayBoundedWhileFeedingLongLine() {
        let limit = 1024
        var f = LineFramer(maxLine: limit)
        let chunk = [UInt8](repeating: 0x41, count: 300)
        var events: [Framed] = []
        var peak = 0
        for _ in 0..<4000 {  // about 1.2 MB of one line
            events += f.events(chunk)
            peak = max(peak, f.bufferedBytes)
            #expect(f.bufferedBytes < limit)
            if !events.isEmpty {
                #expect(f.bufferedBytes == 0)
                #expect(f.hasPartialLine)
            }
        }
        #expect(peak == 900)
        #expect(events == [.tooLong])
        events += f.events("tail of the long line\nPING\r\n")
        #expect(events == [.tooLong, .text("PING")])
        #expect(!f.hasPartialLine)
    }

    @Test func bufferedBytesStayBoundedFeedingLongLineByteByByte() {
        var f = LineFramer(maxLine: 32)
        var events: [Framed] = []
        for i in 0..<10_000 {
            events += f.events([UInt8(0x30 + i % 10)])
            #expect(f.bufferedBytes <= 31)
        }
        #expect(events == [.tooLong])
        #expect(f.events("\nQUIT\n") == [.text("QUIT")])
    }

    @Test func discardsRestOfLongLineUpToTheNextLF() {
        var f = LineFramer(maxLine: 8)
        #expect(f.events("AAAAAAAAAAAA") == [.tooLong])
        // Bytes that would look like a command are still part of the long line.
        #expect(f.events("PING\r\nPING\n") == [.text("PING")])
        #expect(f.bufferedBytes == 0)
        #expect(!f.hasPartialLine)
    }

    @Test func discardedLineEndsAtLFAtTheStartOfARead() {
        var f = LineFramer(maxLine: 8)
        #expect(f.events("AAAAAAAAAAAA") == [.tooLong])
        #expect(f.events("\n") == [])
        #expect(!f.hasPartialLine)
        #expect(f.events("PING\n") == [.text("PING")])
    }

    @Test func goesOnWithTheNextLineInTheSameRead() {
        var f = LineFramer(maxLine: 8)
        #expect(
            f.events("MSG too long for this\nPING\nMSG 1234567\nQUIT\n") == [
                .tooLong, .text("PING"), .tooLong, .text("QUIT"),
            ]
        )
    }

    @Test func nextLineAfterDiscardIsCountedFromItsOwnStart() {
        // The line after a long one gets the whole limit to itself.
        var f = LineFramer(maxLine: 8)
        #expect(f.events("AAAAAAAAAAAAAAAA") == [.tooLong])
        #expect(f.events("xx\n1234567") == [])
        #expect(f.bufferedBytes == 7)
        #expect(f.events("\n") == [.text("1234567")])
    }

    @Test func longLineThatSpansReadsAndEndsBeforeNextLine() {
        var f = LineFramer(maxLine: 8)
        #expect(f.events("12345") == [])
        #expect(f.events("6789\nPING") == [.tooLong])
        #expect(f.events("\n") == [.text("PING")])
    }

    @Test func consecutiveLongLinesAreEachReportedOnce() {
        var f = LineFramer(maxLine: 4)
        let events = f.events(chunks: chunked(bytes("aaaaaaa\nbbbbbbbb\r\nccccc\nok\n"), size: 3))
        #expect(events == [.tooLong, .tooLong, .tooLong, .text("ok")])
    }

    // MARK: - Stopping

    @Test func stopsWhenTheHandlerReturnsFalse() {
        var f = LineFramer(maxLine: 100)
        var seen: [Framed] = []
        bytes("QUIT\nPING\nPING\n").withUnsafeBytes { buf in
            f.feed(buf) { event in
                if case .line(let l) = event { seen.append(.line(Array(l))) }
                return false
            }
        }
        #expect(seen == [.text("QUIT")])
    }

    @Test func stopsAfterTooLongWhenTheHandlerReturnsFalse() {
        var f = LineFramer(maxLine: 4)
        var count = 0
        bytes("toolong\nPING\n").withUnsafeBytes { buf in
            f.feed(buf) { _ in
                count += 1
                return false
            }
        }
        #expect(count == 1)
    }

    @Test func handlerSeesEachEventInOrderWhileReturningTrue() {
        var f = LineFramer(maxLine: 4)
        var seen: [Framed] = []
        bytes("a\nlong!\nb\r\n").withUnsafeBytes { buf in
            f.feed(buf) { event in
                switch event {
                case .line(let l): seen.append(.line(Array(l)))
                case .tooLong: seen.append(.tooLong)
                }
                return true
            }
        }
        #expect(seen == [.text("a"), .tooLong, .text("b")])
    }

    // MARK: - Any cut of the stream gives the same events

    /// A random stream rich in line ends, CRs, long runs and non-ASCII bytes.
    static func randomStream(_ rng: inout SplitMix64, length: Int, maxLine: Int) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < length {
            switch rng.next() % 10 {
            case 0, 1: out.append(0x0A)
            case 2: out += [0x0D, 0x0A]
            case 3: out.append(0x0D)
            case 4:  // a run around the limit, to hit it from both sides
                let n = maxLine - 3 + Int(rng.next() % 6)
                out += [UInt8](repeating: 0x78, count: max(0, n))
            case 5: out.append(UInt8(truncatingIfNeeded: rng.next()))
            default: out += bytes(["PING", "MSG hi", "AUTH a b", "é", " "][Int(rng.next() % 5)])
            }
        }
        return out
    }

    /// Cuts `input` at random points (empty reads included) into consecutive chunks.
    static func randomCuts(_ input: [UInt8], _ rng: inout SplitMix64) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var i = 0
        while i < input.count {
            let n = rng.next() % 4 == 0 ? Int(rng.next() % 3) : Int(rng.next() % 40)
            let end = min(input.count, i + n)
            chunks.append(Array(input[i..<end]))
            i = end
        }
        return chunks
    }

    @Test(arguments: 0..<40)
    func randomCutsYieldSameEventsAsOneRead(_ seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed) &* 0x1234_5678_9ABC_DEF1 &+ 7)
        let maxLine = [2, 3, 5, 16, 50][seed % 5]
        let input = Self.randomStream(&rng, length: 200 + Int(rng.next() % 2000), maxLine: maxLine)

        var whole = LineFramer(maxLine: maxLine)
        let expected = whole.events(input)
        #expect(expected == referenceFrames(input, maxLine: maxLine))

        for _ in 0..<5 {
            let chunks = Self.randomCuts(input, &rng)
            #expect(chunks.joined().elementsEqual(input))
            var split = LineFramer(maxLine: maxLine)
            var events: [Framed] = []
            for chunk in chunks {
                events += split.events(chunk)
                #expect(split.bufferedBytes < maxLine)
            }
            #expect(events == expected)
            #expect(split.bufferedBytes == whole.bufferedBytes)
            #expect(split.hasPartialLine == whole.hasPartialLine)
        }
        var bytewise = LineFramer(maxLine: maxLine)
        #expect(bytewise.eventsByteByByte(input) == expected)
    }

    @Test func referenceModelAgreesOnHandPickedCases() {
        // Guard against a reference that is wrong in the same way as the framer.
        #expect(referenceFrames(bytes("ab\r\n\nabcd\n"), maxLine: 4) == [.text("ab"), .line([]), .tooLong])
        #expect(referenceFrames(bytes("abcd"), maxLine: 4) == [.tooLong])
        #expect(referenceFrames(bytes("abc"), maxLine: 4) == [])
    }
}
