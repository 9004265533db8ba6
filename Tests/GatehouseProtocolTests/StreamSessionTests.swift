import GatehouseProtocol
import Testing

/// `STREAM <name>` in every session state (PROTOCOL.md, Streams).
@Suite("Session streams")
struct StreamSessionTests {
    private func loggedIn() -> Session {
        var s = Session(errorBudget: 10)
        _ = s.logIn("alice")
        return s
    }

    @Test func streamBeforeAuthIsNoAuth() {
        var s = Session(errorBudget: 10)
        #expect(s.receive("STREAM app").errorCode == .noAuth)
        #expect(s.streamName == nil)
        // And it may still come once authenticated.
        _ = s.logIn("alice")
        #expect(s.receive("STREAM app") == .openStream(name: "app"))
    }

    @Test func streamAfterCertificateAuthenticationAsksForTheStream() {
        var s = Session(errorBudget: 10, certificateUser: "alice")
        #expect(s.receive("stream a.b_c-d:9") == .openStream(name: "a.b_c-d:9"))
        #expect(s.streamName == "a.b_c-d:9")
    }

    @Test func numbersContinueFromTheLastStoredNumber() {
        var s = loggedIn()
        #expect(s.receive("STREAM app") == .openStream(name: "app"))
        #expect(s.streamOpened(last: 41).wireLine == "OK STREAM app 41")
        #expect(s.receive("MSG one").wireLine == "ACK 42")
        #expect(s.receive("MSG two").wireLine == "ACK 43")
        #expect(s.receive("PING").wireLine == "PONG")
        #expect(s.receive("MSG three").wireLine == "ACK 44")
        #expect(s.messagesAccepted == 3)
    }

    @Test func aNewStreamStartsAtOne() {
        var s = loggedIn()
        _ = s.receive("STREAM fresh")
        #expect(s.streamOpened(last: 0).wireLine == "OK STREAM fresh 0")
        #expect(s.receive("MSG x").wireLine == "ACK 1")
    }

    @Test func secondStreamIsSyntax() {
        var s = loggedIn()
        _ = s.receive("STREAM app")
        _ = s.streamOpened(last: 0)
        #expect(s.receive("STREAM other").errorCode == .syntax)
        #expect(s.receive("STREAM app").errorCode == .syntax)
        #expect(s.streamName == "app")
        #expect(s.errorsLeft == 8)
    }

    @Test func streamAfterMsgIsSyntax() {
        var s = loggedIn()
        #expect(s.receive("MSG plain").wireLine == "ACK 1")
        #expect(s.receive("STREAM app").errorCode == .syntax)
        #expect(s.streamName == nil)
        #expect(s.receive("MSG plain").wireLine == "ACK 2")
    }

    @Test func streamAfterAnEmptyMsgIsSyntaxToo() {
        var s = loggedIn()
        #expect(s.receive("MSG").errorCode == .empty)
        #expect(s.receive("STREAM app").errorCode == .syntax)
    }

    @Test(arguments: [
        "STREAM", "STREAM ", "STREAM a b", "STREAM a/b", "STREAM a@b", "STREAM ä",
        "STREAM " + String(repeating: "x", count: 65), "STREAM  app",
    ])
    func badNamesAreSyntax(line: String) {
        var s = loggedIn()
        #expect(s.receive(line).errorCode == .syntax)
        #expect(s.streamName == nil)
        // A bad name does not use the connection's one STREAM.
        #expect(s.receive("STREAM ok") == .openStream(name: "ok"))
    }

    @Test func longestNameIsAccepted() {
        var s = loggedIn()
        let name = String(repeating: "n", count: 64)
        #expect(s.receive("STREAM " + name) == .openStream(name: name))
    }

    @Test func refusedStreamLeavesAPlainConnection() {
        var s = loggedIn()
        _ = s.receive("STREAM app")
        #expect(s.streamRefused("full").errorCode == .unavailable)
        #expect(s.streamName == nil)
        #expect(s.errorsLeft == 10)  // the server's doing: no budget spent
        #expect(s.receive("STREAM app") == .openStream(name: "app"))
    }

    @Test func supersededIsAClosingNoticeThatSpendsNothing() {
        #expect(!ErrorCode.superseded.spendsBudget)
        #expect(Reply.error(.superseded, "x").line == "ERR SUPERSEDED x")
        #expect(Reply.okStream(name: "a", last: 7).line == "OK STREAM a 7")
    }

    @Test func parserNamesTheStreamRange() {
        let line = bytes("Stream app:1")
        let parsed = line.withUnsafeBytes { CommandParser.parse($0) }
        #expect(parsed == .success(.stream(name: 7..<12)))
        #expect(CommandParser.isValidStreamName("a:b.c"))
        #expect(!CommandParser.isValidStreamName(""))
        #expect(!CommandParser.isValidStreamName("a b"))
    }
}
