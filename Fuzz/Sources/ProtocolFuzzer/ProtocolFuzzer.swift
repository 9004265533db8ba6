import GatehouseProtocol

/// libFuzzer entry point: random bytes through LineFramer and Session, as a connection would
/// see them, checking the protocol's invariants. A failed check traps, which libFuzzer reports
/// as a crash with the input that caused it.
///
/// Input layout: byte 0 picks the line limit (2...257), byte 1 the error budget (1...16),
/// byte 2 seeds how the rest is cut into chunks (1...64 bytes each, so lines span chunks), and
/// whether AUTH succeeds comes from the token's last byte. The rest is the byte stream.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 3 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let maxLine = 2 + Int(input[0])
    let budget = 1 + Int(input[1] % 16)
    var seed = UInt64(input[2]) &* 0x9E37_79B9_7F4A_7C15 | 1
    let stream = UnsafeRawBufferPointer(rebasing: input[3...])
    FuzzRun(maxLine: maxLine, budget: budget).run(stream, seed: &seed)
    return 0
}

// SwiftPM links an executable target with `main` aliased to `<target>_main`, so libFuzzer's
// own main() is never used: this is that entry point, and it hands over to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("ProtocolFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput)
}

/// What the framer must produce for a stream, computed the slow and obvious way.
enum Framed: Equatable {
    case line([UInt8])
    case tooLong
}

func referenceFraming(_ stream: UnsafeRawBufferPointer, maxLine: Int) -> [Framed] {
    var out: [Framed] = []
    var start = 0
    for i in 0..<stream.count where stream[i] == 0x0A {
        let length = i - start + 1
        if length > maxLine {
            out.append(.tooLong)
        } else {
            var line = Array(stream[start..<i])
            if line.last == 0x0D { line.removeLast() }
            out.append(.line(line))
        }
        start = i + 1
    }
    // An unfinished line is reported as soon as it cannot fit any more.
    if stream.count - start >= maxLine { out.append(.tooLong) }
    return out
}

struct FuzzRun {
    let maxLine: Int
    let budget: Int

    func run(_ stream: UnsafeRawBufferPointer, seed: inout UInt64) {
        var framer = LineFramer(maxLine: maxLine)
        var session = Session(errorBudget: budget)
        var seen: [Framed] = []
        var replies = 0
        var closed = false
        var lastN = 0
        var offset = 0
        while offset < stream.count && !closed {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let size = min(stream.count - offset, 1 + Int(seed >> 58))
            let chunk = UnsafeRawBufferPointer(rebasing: stream[offset..<(offset + size)])
            offset += size
            framer.feed(chunk) { event in
                precondition(!closed, "an event after the session closed")
                var action: Session.Action
                switch event {
                case .line(let line):
                    precondition(line.count < maxLine, "a line longer than the limit was delivered")
                    seen.append(.line(Array(line)))
                    checkValidator(line)
                    action = session.receivedLine(line)
                    if case .authenticate(let user, let token) = action {
                        precondition(CommandParser.isValidUserName(user) && !token.isEmpty && token.upperBound <= line.count)
                        let succeeded = line[token.upperBound - 1] & 1 == 1
                        let throttled = line[token.upperBound - 1] & 2 == 2
                        let budget = session.errorsLeft
                        action = session.authenticationResult(
                            user: user,
                            succeeded: succeeded,
                            addressThrottled: throttled
                        )
                        // A throttled address still authenticates a right token; a wrong one
                        // closes the connection and spends a unit, like any failed AUTH.
                        if succeeded { precondition(session.user == user && session.errorsLeft == budget) }
                        if !succeeded && throttled {
                            if case .replyAndClose = action {} else { preconditionFailure("throttled failure must close") }
                        }
                        if !succeeded { precondition(session.errorsLeft == budget - 1) }
                        precondition(session.user == (succeeded ? user : nil) || !succeeded)
                    }
                    if case .journal(let text, let n) = action {
                        precondition(session.user != nil, "a message journalled before authentication")
                        precondition(!text.isEmpty && text.lowerBound >= 4 && text.upperBound == line.count)
                        precondition(n == lastN + 1, "ACK numbers must count up by one")
                        lastN = n
                    }
                case .tooLong:
                    seen.append(.tooLong)
                    action = session.lineTooLong(limit: maxLine)
                }
                replies += 1
                switch action {
                case .reply(let reply):
                    checkReply(reply)
                case .replyAndClose(let reply):
                    checkReply(reply)
                    precondition(session.isClosed)
                    closed = true
                case .journal:
                    break
                case .authenticate:
                    preconditionFailure("authenticate must be resolved by authenticationResult")
                }
                precondition(session.errorsLeft >= 0)
                return !closed
            }
            precondition(framer.bufferedBytes < maxLine, "the framer buffered a whole line's limit")
        }
        // Exactly one reply per framed line, and the framing is independent of the chunking.
        precondition(replies == seen.count)
        let expected = referenceFraming(stream, maxLine: maxLine)
        if closed {
            precondition(Array(expected.prefix(seen.count)) == seen, "framing differs from the reference")
        } else {
            precondition(expected == seen, "framing differs from the reference")
        }
    }

    /// The validator agrees with the standard library on UTF-8 and with the protocol on controls.
    func checkValidator(_ line: UnsafeRawBufferPointer) {
        let problem = LineValidator.validate(line)
        guard let text = String(validating: line, as: UTF8.self) else {
            precondition(problem == .badUTF8, "invalid UTF-8 not reported as BAD_UTF8")
            return
        }
        let hasControl = text.unicodeScalars.contains { s in
            (s.value < 0x20 && s.value != 0x09) || (0x7F...0x9F).contains(s.value)
        }
        precondition(problem == (hasControl ? .badChar : nil), "control characters misjudged")
    }

    /// Every reply is one line: LF at the end and nowhere else, no CR.
    func checkReply(_ reply: Reply) {
        var out: [UInt8] = []
        reply.encode(into: &out)
        precondition(out.last == 0x0A && out.dropLast().allSatisfy { $0 != 0x0A && $0 != 0x0D }, "reply is not one line")
    }
}
