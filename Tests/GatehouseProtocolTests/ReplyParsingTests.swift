import GatehouseProtocol
import Testing

/// `Reply(line:)` is the inverse of `Reply.encode`: what the server writes, the client reads back.
@Suite("Reply parsing")
struct ReplyParsingTests {
    static let everyKind: [Reply] =
        [
            .hello(authenticatedUser: nil), .hello(authenticatedUser: "alice"), .okAuth(user: "bob.smith"),
            .okStream(name: "orders-1:eu", last: 0), .okStream(name: "s", last: 42), .ack(0), .ack(1), .ack(10),
            .ack(Int.max), .pong, .bye, .error(.busy, ""), .error(.syntax, "already authenticated"),
            .error(.badChar, "two  spaces and a trailing one "), .error(.busy, "désolé"),
        ] + ErrorCode.allCases.map { .error($0, "text for \($0.rawValue)") }

    @Test(arguments: everyKind)
    func roundTripsWithEncode(_ reply: Reply) {
        var wire: [UInt8] = []
        reply.encode(into: &wire)
        #expect(wire.last == 0x0A)
        let line = String(decoding: wire.dropLast(), as: UTF8.self)
        #expect(Reply(line: line) == reply)
        #expect(Reply(line: reply.line) == reply)
    }

    @Test func roundTripsEveryCountAroundPowersOfTen() {
        var p = 1
        for _ in 0..<18 {
            for n in [p - 1, p, p + 1] {
                #expect(Reply(line: Reply.ack(n).line) == .ack(n))
                #expect(Reply(line: Reply.okStream(name: "s", last: n).line) == .okStream(name: "s", last: n))
            }
            p *= 10
        }
    }

    /// PROTOCOL.md: "A reply may carry more space-separated tokens after the ones named here;
    /// clients ignore what they do not know."
    @Test(arguments: [
        ("ACK 5 later", Reply.ack(5)),
        ("PONG now", .pong),
        ("BYE for now", .bye),
        ("HELLO gatehouse/1 RESUMED", .hello(authenticatedUser: nil)),
        ("HELLO gatehouse/1 AUTHENTICATED carol extra", .hello(authenticatedUser: "carol")),
        ("OK AUTH dave until=123", .okAuth(user: "dave")),
        ("OK STREAM s 7 more", .okStream(name: "s", last: 7)),
        ("ERR BUSY", .error(.busy, "")),
    ])
    func ignoresTokensAfterTheNamedOnes(_ line: String, _ expected: Reply) {
        #expect(Reply(line: line) == expected)
    }

    @Test(arguments: [
        "", " ", "ACK", "ACK ", "ACK x", "ACK -1", "ACK +1", "ACK 1x", "ACK 99999999999999999999",
        "ack 1", "PONGS", "HELLO", "HELLO gatehouse/2", "HELLO gatehouse/12", "HELLO  gatehouse/1",
        "OK", "OK AUTH", "OK AUTH ", "OK STREAM", "OK STREAM s", "OK STREAM s x", "OK STREAM s -3",
        "OK QUIT x", "ERR", "ERR ", "ERR NOPE text", "ERR busy text", " ACK 1", "MSG hello", "\u{0}",
    ])
    func refusesMalformedLines(_ line: String) {
        #expect(Reply(line: line) == nil)
    }

    @Test func parsesSubstrings() {
        let text = "ACK 3\nPONG"
        let lines = text.split(separator: "\n")
        #expect(lines.map { Reply(line: $0) } == [.ack(3), .pong])
    }
}
