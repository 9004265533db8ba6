import GatehouseProtocol
import TestSupport
import Testing

private func wire(_ reply: Reply) -> String {
    var out: [UInt8] = []
    reply.encode(into: &out)
    return String(decoding: out, as: UTF8.self)
}

private func decimal(_ n: Int) -> String {
    var out: [UInt8] = []
    Reply.appendDecimal(n, to: &out)
    return String(decoding: out, as: UTF8.self)
}

@Suite("Reply")
struct ReplyTests {

    // MARK: - Wire forms

    @Test func encodesAck() {
        #expect(wire(.ack(12345)) == "ACK 12345\n")
        #expect(wire(.ack(1)) == "ACK 1\n")
        #expect(wire(.ack(10)) == "ACK 10\n")
    }

    @Test func encodesAckOfLargestInt() {
        #expect(wire(.ack(Int.max)) == "ACK 9223372036854775807\n")
    }

    @Test func encodesError() {
        #expect(wire(.error(.tooLong, "line exceeds 65536 bytes")) == "ERR TOO_LONG line exceeds 65536 bytes\n")
        #expect(wire(.error(.syntax, "already authenticated")) == "ERR SYNTAX already authenticated\n")
    }

    @Test(arguments: ErrorCode.allCases)
    func encodesEveryErrorCodeAsErrCodeText(_ code: ErrorCode) {
        #expect(wire(.error(code, "some text")) == "ERR \(code.rawValue) some text\n")
    }

    @Test func encodesGreetings() {
        #expect(wire(.hello(authenticatedUser: nil)) == "HELLO gatehouse/1\n")
        #expect(wire(.hello(authenticatedUser: "alice")) == "HELLO gatehouse/1 AUTHENTICATED alice\n")
        #expect(Reply.protocolName == "gatehouse/1")
    }

    @Test func encodesSimpleReplies() {
        #expect(wire(.pong) == "PONG\n")
        #expect(wire(.bye) == "BYE\n")
        #expect(wire(.okAuth(user: "bob.smith")) == "OK AUTH bob.smith\n")
    }

    @Test func encodingAppendsAfterExistingBytes() {
        var out = bytes("ACK 1\n")
        Reply.ack(2).encode(into: &out)
        Reply.pong.encode(into: &out)
        Reply.error(.empty, "MSG needs text").encode(into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "ACK 1\nACK 2\nPONG\nERR EMPTY MSG needs text\n")
    }

    @Test(arguments: [
        Reply.ack(7), .pong, .bye, .hello(authenticatedUser: nil), .hello(authenticatedUser: "u"),
        .okAuth(user: "u"), .error(.busy, "full"),
    ])
    func everyReplyIsOneLineEndingInLF(_ reply: Reply) {
        var out: [UInt8] = []
        reply.encode(into: &out)
        #expect(out.last == 0x0A)
        #expect(out.filter { $0 == 0x0A }.count == 1)
        #expect(!out.contains(0x0D))
        #expect(reply.line + "\n" == String(decoding: out, as: UTF8.self))
    }

    @Test func lineIsTheReplyWithoutLF() {
        #expect(Reply.ack(42).line == "ACK 42")
        #expect(Reply.error(.idleTimeout, "no input for 300 s").line == "ERR IDLE_TIMEOUT no input for 300 s")
    }

    @Test func errorTextMayBeMultibyte() {
        #expect(wire(.error(.busy, "désolé")) == "ERR BUSY désolé\n")
    }

    // MARK: - appendDecimal

    @Test(arguments: [
        (0, "0"), (1, "1"), (9, "9"), (10, "10"), (11, "11"), (19, "19"), (99, "99"), (100, "100"),
        (101, "101"), (12345, "12345"), (65_536, "65536"), (1_000_000_007, "1000000007"),
        (Int(Int32.max), "2147483647"), (Int(UInt32.max), "4294967295"),
        (Int.max, "9223372036854775807"), (Int.max - 1, "9223372036854775806"),
    ])
    func appendsDecimalDigits(_ n: Int, _ expected: String) {
        #expect(decimal(n) == expected)
    }

    @Test func appendsEveryPowerOfTenAndItsNeighbours() {
        var p = 1
        for _ in 0..<18 {
            for n in [p - 1, p, p + 1] where n >= 0 {
                #expect(decimal(n) == String(n))
            }
            p *= 10
        }
        #expect(decimal(p) == "1000000000000000000")
    }

    @Test func appendsDecimalsForTheFirstTenThousand() {
        var mismatches: [Int] = []
        for n in 0..<10_000 where decimal(n) != String(n) { mismatches.append(n) }
        #expect(mismatches.isEmpty)
    }

    @Test func appendsDecimalsForRandomValues() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            let n = Int(truncatingIfNeeded: rng.next() >> (rng.next() % 63 + 1))
            #expect(decimal(n) == String(n))
        }
    }

    @Test func appendDecimalKeepsExistingBytes() {
        var out = bytes("n=")
        Reply.appendDecimal(5, to: &out)
        Reply.appendDecimal(0, to: &out)
        Reply.appendDecimal(123, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "n=50123")
    }

    // MARK: - Codes

    @Test func errorCodesAreThoseOfTheProtocol() {
        #expect(
            ErrorCode.allCases.map(\.rawValue) == [
                "NOAUTH", "AUTH_FAILED", "SYNTAX", "UNKNOWN_COMMAND", "EMPTY", "TOO_LONG", "BAD_UTF8", "BAD_CHAR",
                "RATE_LIMITED", "UNAVAILABLE", "TOO_MANY_ERRORS", "BUSY", "IDLE_TIMEOUT", "SHUTTING_DOWN",
                "AUTH_TIMEOUT",
                "AUTH_EXPIRED",
            ]
        )
    }

    @Test(arguments: [
        (ErrorCode.noAuth, true), (.authFailed, true), (.syntax, true), (.unknownCommand, true), (.empty, true),
        (.tooLong, true), (.badUTF8, true), (.badChar, true), (.rateLimited, false), (.unavailable, false),
        (.tooManyErrors, false), (.busy, false), (.idleTimeout, false), (.shuttingDown, false),
        (.authTimeout, false), (.authExpired, false),
    ])
    func spendsBudgetPerCode(_ code: ErrorCode, _ spends: Bool) {
        #expect(code.spendsBudget == spends)
    }
}
