import GatehouseProtocol
import Testing

/// RATE_LIMITED from the session's side: AUTH from a throttled address, and the message rate.
@Suite struct SessionRateLimitTests {
    @Test func aCorrectTokenFromAThrottledAddressStillAuthenticates() throws {
        var session = Session(errorBudget: 3)
        let user = try #require(session.receive("AUTH alice good").authenticateRequest).user
        let action = session.authenticationResult(user: user, succeeded: true, addressThrottled: true)
        #expect(action == .reply(.okAuth(user: "alice")))
        #expect(session.user == "alice")
        #expect(session.errorsLeft == 3)
        #expect(!session.isClosed)
    }

    @Test func aWrongTokenFromAThrottledAddressIsRateLimitedSpendsBudgetAndCloses() throws {
        var session = Session(errorBudget: 3)
        let user = try #require(session.receive("AUTH alice wrong").authenticateRequest).user
        let action = session.authenticationResult(user: user, succeeded: false, addressThrottled: true)
        #expect(action.closes)
        #expect(action.errorCode == .rateLimited)
        #expect(action.wireLine.hasPrefix("ERR RATE_LIMITED "))
        #expect(session.errorsLeft == 2)
        #expect(session.isClosed)
        #expect(session.user == nil)
    }

    @Test func aThrottledFailureThatSpendsTheLastUnitIsTooManyErrors() throws {
        var session = Session(errorBudget: 1)
        let user = try #require(session.receive("AUTH alice wrong").authenticateRequest).user
        let action = session.authenticationResult(user: user, succeeded: false, addressThrottled: true)
        #expect(action == .replyAndClose(.error(.tooManyErrors, "error budget spent; closing")))
        #expect(session.errorsLeft == 0)
    }

    @Test func anUnthrottledFailureIsAuthFailedAndTheConnectionStays() throws {
        var session = Session(errorBudget: 3)
        let user = try #require(session.receive("AUTH alice wrong").authenticateRequest).user
        let action = session.authenticationResult(user: user, succeeded: false, addressThrottled: false)
        #expect(action.errorCode == .authFailed)
        #expect(!action.closes)
        #expect(session.errorsLeft == 2)
    }

    @Test func messagesPastTheRateTakeNoNumberAndSpendNoBudget() {
        let second: UInt64 = 1_000_000_000
        var session = Session(errorBudget: 2, certificateUser: "alice", maxMessageRate: 5)
        for n in 1...5 { #expect(session.receive("MSG m\(n)", now: 0).wireLine == "ACK \(n)") }
        for _ in 0..<10 {
            let action = session.receive("MSG too fast", now: 0)
            #expect(action.errorCode == .rateLimited)
            #expect(!action.closes)
        }
        #expect(session.messagesAccepted == 5)
        #expect(session.errorsLeft == 2)
        // One message's worth of credit comes back every 1/5 s; the next ACK does not skip.
        #expect(session.receive("MSG later", now: second / 5).wireLine == "ACK 6")
        #expect(session.receive("MSG again", now: second / 5).errorCode == .rateLimited)
        // A full second refills the whole burst, and no more.
        for n in 7...11 { #expect(session.receive("MSG m\(n)", now: 2 * second).wireLine == "ACK \(n)") }
        #expect(session.receive("MSG over", now: 2 * second).errorCode == .rateLimited)
    }

    @Test func aClockThatGoesBackAddsNoCredit() {
        var limit = MessageRateLimit(perSecond: 1)
        let taken = [5_000_000_000, 1_000_000_000, 5_500_000_000, 6_000_000_000].map { limit.take(now: $0) }
        #expect(taken == [true, false, false, true])
    }

    @Test func withoutARateEveryMessageIsAccepted() {
        var session = Session(errorBudget: 1, certificateUser: "alice")
        for n in 1...1000 { #expect(session.receive("MSG m", now: 0).wireLine == "ACK \(n)") }
    }
}
