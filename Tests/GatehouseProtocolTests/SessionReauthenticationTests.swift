import GatehouseProtocol
import Testing

/// Re-authentication on a connection an expiring credential (a JWT) authenticated: the server
/// sets `allowsReauthentication`; the session then lets `AUTH` for the same user through to the
/// check, refuses another user as SYNTAX, and a failed re-authentication leaves the connection
/// authenticated as before (until its credential expires) and spends budget like any failure.
@Suite struct SessionReauthenticationTests {
    func jwtSession() -> Session {
        var s = Session(errorBudget: 10)
        _ = s.logIn("alice")
        s.allowsReauthentication = true
        return s
    }

    @Test func authForTheSameUserIsCheckedAgain() throws {
        var s = jwtSession()
        let request = try #require(s.receive("AUTH alice fresh.jwt.token").authenticateRequest)
        #expect(request.user == "alice")
        #expect(s.authenticationResult(user: "alice", succeeded: true) == .reply(.okAuth(user: "alice")))
        #expect(s.user == "alice")
        #expect(s.errorsLeft == 10)
        #expect(s.receive("MSG still numbered on") == .journal(text: 4..<21, n: 1))
    }

    @Test func authForAnotherUserIsSyntaxAndChangesNothing() {
        var s = jwtSession()
        #expect(s.receive("AUTH bob x.y.z").wireLine == "ERR SYNTAX re-authenticate as alice only")
        #expect(s.user == "alice")
        #expect(s.errorsLeft == 9)
    }

    @Test func aFailedReauthenticationKeepsTheConnectionAuthenticated() throws {
        var s = jwtSession()
        _ = try #require(s.receive("AUTH alice bad.jwt.token").authenticateRequest)
        #expect(s.authenticationResult(user: "alice", succeeded: false).errorCode == .authFailed)
        #expect(s.user == "alice")
        #expect(s.errorsLeft == 9)
    }

    @Test func withoutTheFlagASecondAuthIsStillRefused() {
        var s = Session(errorBudget: 10)
        _ = s.logIn("alice")
        #expect(s.receive("AUTH alice x.y.z").wireLine == "ERR SYNTAX already authenticated")
        var certificate = Session(errorBudget: 10, certificateUser: "alice")
        #expect(certificate.receive("AUTH alice x.y.z").wireLine == "ERR SYNTAX already authenticated")
    }

    @Test func authExpiredIsAClosingNoticeThatSpendsNoBudget() {
        var s = jwtSession()
        let reply = s.closeNotice(.authExpired, "the access token expired")
        #expect(reply.line == "ERR AUTH_EXPIRED the access token expired")
        #expect(s.isClosed)
        #expect(s.errorsLeft == 10)
    }
}
