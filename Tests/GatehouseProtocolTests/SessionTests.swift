import GatehouseProtocol
import Testing

/// Lines that each earn one budget-spending error, whatever the state before authentication.
private let erringLines: [(line: [UInt8], code: ErrorCode)] = [
    (bytes(""), .unknownCommand),
    (bytes("HELLO"), .unknownCommand),
    (bytes("PING now"), .syntax),
    (bytes("AUTH alice"), .syntax),
    (bytes("MSG hi"), .noAuth),
    ([0x4D, 0x53, 0x47, 0x20, 0xC0, 0x80], .badUTF8),
    (bytes("MSG \u{1}"), .badChar),
]

@Suite("Session")
struct SessionTests {

    // MARK: - Greeting and state

    @Test func greetsWithoutCertificateUser() {
        let s = Session(errorBudget: 10)
        #expect(s.greeting == .hello(authenticatedUser: nil))
        #expect(s.greeting.line == "HELLO gatehouse/1")
        #expect(s.state == .unauthenticated)
        #expect(s.user == nil)
        #expect(!s.isClosed)
        #expect(s.errorsLeft == 10)
        #expect(s.messagesAccepted == 0)
    }

    @Test func greetsCertificateUserAsAuthenticated() {
        let s = Session(errorBudget: 10, certificateUser: "alice")
        #expect(s.greeting.line == "HELLO gatehouse/1 AUTHENTICATED alice")
        #expect(s.greeting.line.hasPrefix("HELLO gatehouse/1"))
        #expect(s.state == .authenticated(user: "alice"))
        #expect(s.user == "alice")
    }

    @Test func greetingNamesUserAfterAUTHToo() {
        var s = Session(errorBudget: 10)
        _ = s.logIn("bob")
        #expect(s.greeting.line == "HELLO gatehouse/1 AUTHENTICATED bob")
    }

    // MARK: - PING and QUIT

    @Test func pingGetsPongInAnyState() {
        var s = Session(errorBudget: 10)
        #expect(s.receive("PING") == .reply(.pong))
        _ = s.logIn("alice")
        #expect(s.receive("ping") == .reply(.pong))
        #expect(s.errorsLeft == 10)
    }

    @Test func quitGetsByeAndCloses() {
        var s = Session(errorBudget: 10)
        #expect(s.receive("QUIT") == .replyAndClose(.bye))
        #expect(s.isClosed)
        #expect(s.isClosed)
        #expect(s.user == nil)
    }

    @Test func quitClosesAuthenticatedSessionToo() {
        var s = Session(errorBudget: 10, certificateUser: "alice")
        #expect(s.receive("Quit") == .replyAndClose(.bye))
        #expect(s.isClosed)
    }

    @Test func pingAndQuitWithArgumentsAreSyntaxErrors() {
        var s = Session(errorBudget: 10)
        #expect(s.receive("PING x").errorCode == .syntax)
        #expect(s.receive("QUIT now").errorCode == .syntax)
        #expect(!s.isClosed)
    }

    // MARK: - AUTH

    @Test func authAsksForTokenCheck() {
        var s = Session(errorBudget: 10)
        #expect(s.receive("AUTH alice s3cret") == .authenticate(user: "alice", token: 11..<17))
        #expect(s.state == .unauthenticated)  // nothing changes until the check is reported
    }

    @Test func successfulAuthAuthenticates() {
        var s = Session(errorBudget: 10)
        #expect(s.logIn("alice") == .reply(.okAuth(user: "alice")))
        #expect(s.logIn("x").wireLine == "ERR SYNTAX already authenticated")
        #expect(s.state == .authenticated(user: "alice"))
        #expect(Reply.okAuth(user: "alice").line == "OK AUTH alice")
    }

    @Test func failedAuthIsAuthFailedAndSpendsBudget() throws {
        var s = Session(errorBudget: 10)
        let user = try #require(s.receive("AUTH alice wrong").authenticateRequest).user
        #expect(user == "alice")
        let action = s.authenticationResult(user: user, succeeded: false)
        #expect(action.errorCode == .authFailed)
        #expect(!action.closes)
        #expect(s.state == .unauthenticated)
        #expect(s.errorsLeft == 9)
    }

    @Test(arguments: ["AUTH bob tok", "auth bob tok", "AUTH", "AUTH bob", "AUTH  bob tok", "AUTH b!d tok"])
    func secondAuthIsRefusedAsAlreadyAuthenticated(_ line: String) {
        var s = Session(errorBudget: 10)
        _ = s.logIn("alice")
        let action = s.receive(line)
        #expect(action == .reply(.error(.syntax, "already authenticated")))
        #expect(action.wireLine == "ERR SYNTAX already authenticated")
        #expect(s.user == "alice")
        #expect(s.errorsLeft == 9)
    }

    @Test func authAfterCertificateLoginIsRefused() {
        var s = Session(errorBudget: 10, certificateUser: "alice")
        #expect(s.receive("AUTH bob tok").wireLine == "ERR SYNTAX already authenticated")
        #expect(s.user == "alice")
    }

    @Test func malformedAuthBeforeLoginGetsUsage() {
        var s = Session(errorBudget: 10)
        #expect(s.receive("AUTH alice") == .reply(.error(.syntax, "usage: AUTH <user> <token>")))
        #expect(s.receive("AUTH  alice tok").errorCode == .syntax)
        #expect(s.receive("AUTH alice tok more").errorCode == .syntax)
        #expect(s.state == .unauthenticated)
    }

    @Test func authLookalikeVerbIsUnknownEvenWhenAuthenticated() {
        var s = Session(errorBudget: 10, certificateUser: "alice")
        #expect(s.receive("AUTHX a b").errorCode == .unknownCommand)
    }

    @Test func failedAuthFromAThrottledAddressIsRateLimitedAndCloses() {
        var s = Session(errorBudget: 2)
        _ = s.receive("AUTH alice wrong")
        let action = s.authenticationResult(user: "alice", succeeded: false, addressThrottled: true)
        #expect(action.errorCode == .rateLimited)
        #expect(action.closes)
        #expect(s.errorsLeft == 1)
        #expect(s.isClosed)
    }

    // MARK: - MSG

    @Test(arguments: ["MSG hi", "MSG", "MSG ", "msg  x"])
    func msgBeforeAuthIsNoAuth(_ line: String) {
        var s = Session(errorBudget: 10)
        #expect(s.receive(line) == .reply(.error(.noAuth, "authenticate with AUTH first")))
        #expect(s.messagesAccepted == 0)
    }

    @Test(arguments: ["MSG", "MSG ", "msg", "Msg "])
    func msgWithoutTextAfterAuthIsEmpty(_ line: String) {
        var s = Session(errorBudget: 10, certificateUser: "alice")
        let action = s.receive(line)
        #expect(action.errorCode == .empty)
        #expect(action.wireLine.hasPrefix("ERR EMPTY "))
        #expect(s.messagesAccepted == 0)
    }

    @Test func msgIsJournalledWithExactText() {
        var s = Session(errorBudget: 10, certificateUser: "alice")
        let line = bytes("MSG   spaced\tout  ")
        #expect(s.receive(line) == .journal(text: 4..<line.count, n: 1))
    }

    @Test func ackNumbersCountFromOne() {
        var s = Session(errorBudget: 10)
        _ = s.logIn("alice")
        for n in 1...5 {
            #expect(s.receive("MSG m\(n)") == .journal(text: 4..<6, n: n))
            #expect(s.messagesAccepted == n)
        }
    }

    @Test func errorsAndOtherCommandsDoNotAdvanceAckNumbers() {
        var s = Session(errorBudget: 10, certificateUser: "alice")
        #expect(s.receive("MSG a") == .journal(text: 4..<5, n: 1))
        _ = s.receive("MSG")
        _ = s.receive("PING")
        _ = s.receive("BOGUS")
        #expect(s.receive("MSG b") == .journal(text: 4..<5, n: 2))
    }

    @Test func journalFailureIsUnavailableAndFree() {
        var s = Session(errorBudget: 1, certificateUser: "alice")
        _ = s.receive("MSG a")
        let reply = s.journalFailed()
        #expect(reply.line.hasPrefix("ERR UNAVAILABLE "))
        guard case .error(let code, _) = reply else {
            Issue.record("expected an error reply, got \(reply)")
            return
        }
        #expect(code == .unavailable)
        #expect(s.errorsLeft == 1)
        #expect(!s.isClosed)
    }

    // MARK: - Validation order

    @Test func badUTF8BeatsEverythingElse() {
        var s = Session(errorBudget: 10)
        #expect(s.receive([0x4D, 0x53, 0x47, 0x20, 0xED, 0xA0, 0x80]).errorCode == .badUTF8)  // not NOAUTH
        #expect(s.receive([0x00, 0x46, 0x4F, 0x4F, 0xFF]).errorCode == .badUTF8)  // not BAD_CHAR
        #expect(s.receive([0x50, 0x49, 0x4E, 0x47, 0x80]).errorCode == .badUTF8)
    }

    @Test func badCharBeatsVerbChecks() {
        var s = Session(errorBudget: 10)
        #expect(s.receive("MSG a\u{0}b").errorCode == .badChar)  // not NOAUTH
        #expect(s.receive("NOPE \u{7F}").errorCode == .badChar)  // not UNKNOWN_COMMAND
        #expect(s.receive("PING\u{85}").errorCode == .badChar)  // a C1 control
        #expect(s.receive("PING\r").errorCode == .badChar)  // a CR the framer kept
    }

    @Test func tabIsAllowedInMessages() {
        var s = Session(errorBudget: 10, certificateUser: "alice")
        #expect(s.receive("MSG a\tb") == .journal(text: 4..<7, n: 1))
    }

    @Test func multibyteTextIsAccepted() {
        var s = Session(errorBudget: 10, certificateUser: "alice")
        let line = bytes("MSG café 漢 😀")
        #expect(s.receive(line) == .journal(text: 4..<line.count, n: 1))
    }

    @Test func emptyLineIsUnknownCommand() {
        var s = Session(errorBudget: 10, certificateUser: "alice")
        #expect(s.receive("").errorCode == .unknownCommand)
    }

    // MARK: - Error budget

    @Test(arguments: 0..<erringLines.count)
    func eachClientErrorSpendsOneUnit(_ index: Int) {
        let (line, code) = erringLines[index]
        var s = Session(errorBudget: 5)
        let action = s.receive(line)
        #expect(action.errorCode == code)
        #expect(!action.closes)
        #expect(s.errorsLeft == 4)
    }

    @Test func tooLongSpendsOneUnit() {
        var s = Session(errorBudget: 3)
        #expect(s.lineTooLong(limit: 65_536) == .reply(.error(.tooLong, "line exceeds 65536 bytes")))
        #expect(s.errorsLeft == 2)
    }

    @Test func defaultBudgetAllowsNineErrorsAndClosesOnTheTenth() {
        var s = Session(errorBudget: 10)
        for i in 1...9 {
            let action = s.receive("BOGUS \(i)")
            #expect(action.errorCode == .unknownCommand)
            #expect(!action.closes)
            #expect(s.errorsLeft == 10 - i)
        }
        let last = s.receive("BOGUS 10")
        #expect(last == .replyAndClose(.error(.tooManyErrors, "error budget spent; closing")))
        #expect(last.wireLine.hasPrefix("ERR TOO_MANY_ERRORS "))
        #expect(s.isClosed)
        #expect(s.errorsLeft == 0)
    }

    @Test(arguments: [1, 2, 3])
    func lineThatSpendsTheLastUnitGetsTooManyErrors(_ budget: Int) {
        var s = Session(errorBudget: budget)
        for _ in 0..<(budget - 1) {
            #expect(s.receive("MSG hi").errorCode == .noAuth)
        }
        #expect(!s.isClosed)
        let last = s.receive("MSG hi")
        #expect(last.errorCode == .tooManyErrors)  // instead of its own NOAUTH
        #expect(last.closes)
        #expect(s.isClosed)
    }

    @Test(arguments: 0..<erringLines.count)
    func anyClientErrorCanSpendTheLastUnit(_ index: Int) {
        var s = Session(errorBudget: 1)
        let action = s.receive(erringLines[index].line)
        #expect(action == .replyAndClose(.error(.tooManyErrors, "error budget spent; closing")))
        #expect(s.isClosed)
    }

    @Test func tooLongCanSpendTheLastUnit() {
        var s = Session(errorBudget: 2)
        #expect(s.lineTooLong(limit: 10).errorCode == .tooLong)
        #expect(s.lineTooLong(limit: 10) == .replyAndClose(.error(.tooManyErrors, "error budget spent; closing")))
        #expect(s.isClosed)
    }

    @Test func authFailedCanSpendTheLastUnit() {
        var s = Session(errorBudget: 1)
        let action = s.authenticationResult(user: "alice", succeeded: false)
        #expect(action.errorCode == .tooManyErrors)
        #expect(action.closes)
        #expect(s.isClosed)
    }

    @Test func successesRefundNothing() {
        var s = Session(errorBudget: 3)
        _ = s.receive("NOPE")
        _ = s.receive("PING")
        _ = s.logIn("alice")
        _ = s.receive("MSG ok")
        #expect(s.errorsLeft == 2)
        _ = s.receive("NOPE")
        #expect(s.receive("PING") == .reply(.pong))
        #expect(s.receive("MSG") == .replyAndClose(.error(.tooManyErrors, "error budget spent; closing")))
    }

    @Test func rateLimitedAndUnavailableNeverSpendTheBudget() {
        var s = Session(errorBudget: 1, certificateUser: "alice")
        for _ in 0..<20 {
            #expect(s.fail(.rateLimited, "slow down") == .reply(.error(.rateLimited, "slow down")))
            #expect(s.fail(.unavailable, "disk") == .reply(.error(.unavailable, "disk")))
        }
        #expect(s.errorsLeft == 1)
        #expect(!s.isClosed)
        #expect(s.receive("MSG still here") == .journal(text: 4..<14, n: 1))
    }

    @Test(arguments: ErrorCode.allCases)
    func failSpendsExactlyWhenTheCodeSays(_ code: ErrorCode) {
        var s = Session(errorBudget: 5)
        let action = s.fail(code, "why")
        #expect(action == .reply(.error(code, "why")))
        #expect(s.errorsLeft == (code.spendsBudget ? 4 : 5))
    }

    @Test func budgetSpendingCodesAreTheClientErrors() {
        let spending = Set(ErrorCode.allCases.filter(\.spendsBudget))
        #expect(spending == [.noAuth, .authFailed, .syntax, .unknownCommand, .empty, .tooLong, .badUTF8, .badChar])
    }

    @Test func authSucceedingAfterCloseDoesNotReopen() throws {
        var s = Session(errorBudget: 1)
        let user = try #require(s.receive("AUTH alice tok").authenticateRequest).user
        _ = s.closeNotice(.shuttingDown, "bye")
        _ = s.authenticationResult(user: user, succeeded: true)
        #expect(s.isClosed)
    }

    // MARK: - Closing notices

    @Test(arguments: [ErrorCode.idleTimeout, .shuttingDown, .busy])
    func closeNoticeClosesWithoutSpending(_ code: ErrorCode) {
        var s = Session(errorBudget: 1, certificateUser: "alice")
        let reply = s.closeNotice(code, "goodbye")
        #expect(reply == .error(code, "goodbye"))
        #expect(reply.line == "ERR \(code.rawValue) goodbye")
        #expect(s.isClosed)
        #expect(s.errorsLeft == 1)
    }

    // MARK: - Bytes in, replies out

    @Test func pipelinedSessionGetsOneReplyPerLineInOrder() {
        var p = Pipeline()
        p.send("PING\r\nMSG early\nAUTH alice bad\nAUTH alice good\r\nMSG one\nMSG  two\r\nmsg\nQUIT\nPING\n")
        #expect(
            p.replies == [
                "PONG", "ERR NOAUTH authenticate with AUTH first", "ERR AUTH_FAILED unknown user or wrong token",
                "OK AUTH alice", "ACK 1", "ACK 2", "ERR EMPTY MSG needs text", "BYE",
            ]
        )
        #expect(p.journal == [bytes("one"), bytes(" two")])
        #expect(p.closed)
    }

    @Test func sessionGoesOnAfterTooLongLine() {
        var p = Pipeline(maxLine: 16, certificateUser: "alice")
        p.send("MSG this line is far too long for the limit\r\nMSG ok\n")
        #expect(p.replies == ["ERR TOO_LONG line exceeds 16 bytes", "ACK 1"])
        #expect(p.journal == [bytes("ok")])
        #expect(p.session.errorsLeft == 9)
    }

    @Test func sessionGoesOnAfterLongLineFedInChunks() {
        var p = Pipeline(maxLine: 64, certificateUser: "alice")
        p.send("MSG ")
        for _ in 0..<1000 { p.send(String(repeating: "z", count: 50)) }
        #expect(p.replies == ["ERR TOO_LONG line exceeds 64 bytes"])
        #expect(p.framer.bufferedBytes == 0)
        p.send("zzz\r\nMSG after\r\n")
        #expect(p.replies == ["ERR TOO_LONG line exceeds 64 bytes", "ACK 1"])
        #expect(p.journal == [bytes("after")])
    }

    @Test func loneCRIsABadCharacterOnTheWire() {
        var p = Pipeline(certificateUser: "alice")
        p.send("MSG a\rb\r\nPING\r\r\n")
        #expect(
            p.replies.map { $0.split(separator: " ").prefix(2).joined(separator: " ") } == [
                "ERR BAD_CHAR", "ERR BAD_CHAR",
            ]
        )
    }

    @Test func tooManyErrorsStopsReadingFurtherLines() {
        var p = Pipeline(errorBudget: 3)
        p.send("X\nY\nZ\nPING\nPING\n")
        #expect(
            p.replies == [
                "ERR UNKNOWN_COMMAND expected AUTH, MSG, PING or QUIT",
                "ERR UNKNOWN_COMMAND expected AUTH, MSG, PING or QUIT",
                "ERR TOO_MANY_ERRORS error budget spent; closing",
            ]
        )
        #expect(p.closed)
    }
}
