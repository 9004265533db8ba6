import GatehouseProtocol
import Testing

/// RATE_LIMITED from the session's side: throttled AUTH and refused messages.
@Suite struct SessionRateLimitTests {
    @Test func throttledAuthIsRateLimitedAndSpendsNoBudget() {
        var session = Session(errorBudget: 1)
        for _ in 0..<5 {
            #expect(session.authenticationThrottled().wireLine.hasPrefix("ERR RATE_LIMITED "))
        }
        #expect(session.errorsLeft == 1)
        #expect(!session.isClosed)
        #expect(session.user == nil)
    }

    @Test func rateLimitedMessageGivesItsNumberBack() {
        var session = Session(errorBudget: 2)
        _ = session.logIn("alice")
        #expect(session.receive("MSG one").wireLine == "ACK 1")
        let second = session.receive("MSG two")
        #expect(second.wireLine == "ACK 2")
        #expect(session.messageRateLimited().wireLine.hasPrefix("ERR RATE_LIMITED "))
        #expect(session.messagesAccepted == 1)
        #expect(session.errorsLeft == 2)
        #expect(session.receive("MSG two again").wireLine == "ACK 2")
    }
}
