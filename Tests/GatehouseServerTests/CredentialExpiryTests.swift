import GatehouseProtocol
import Testing

@testable import GatehouseServer

/// A connection authenticated by an access token (a JWT) ends at the token's expiry unless it
/// re-authenticates in time: the state machine with a fake clock.
@Suite("Credential expiry")
struct CredentialExpiryTests {
    func tokenConnection(lifetime: UInt64 = 5 * second) -> MachineDriver {
        var d = MachineDriver(limits: .testing())
        d.credentialLifetime = lifetime
        d.logIn()
        return d
    }

    @Test func atExpiryTheConnectionGetsAuthExpiredAfterItsQueuedRepliesAndCloses() {
        var d = tokenConnection()
        d.send("PING\n")
        d.advance(to: 5 * second - 1)
        #expect(d.machine.isOpen)
        d.advance(to: 5 * second)
        #expect(d.lines.suffix(2).map { String($0.prefix(16)) } == ["PONG", "ERR AUTH_EXPIRED"])
        #expect(d.machine.closeReason == .authExpired)
    }

    @Test func aLineThatArrivesAfterExpiryIsNotRead() {
        var d = tokenConnection()
        d.now = 6 * second  // the timer has not fired yet; the line comes first
        _ = d.send("MSG too late\n")
        #expect(d.journal.isEmpty)
        #expect(d.lines.last?.hasPrefix("ERR AUTH_EXPIRED") == true)
    }

    @Test func reauthenticatingForTheSameUserMovesTheExpiry() {
        var d = tokenConnection()
        d.advance(to: 3 * second)
        d.send("AUTH alice good\n")  // a fresh token: expires at 8 s now
        #expect(d.lines.last == "OK AUTH alice")
        d.advance(to: 6 * second)
        #expect(d.machine.isOpen)
        d.send("MSG still here\n")
        #expect(d.journal.map(\.text) == ["still here"])
        d.advance(to: 8 * second)
        #expect(d.machine.closeReason == .authExpired)
    }

    @Test func anotherUserCannotTakeOverAndTheExpiryStays() {
        var d = tokenConnection()
        d.send("AUTH bob good\n")
        #expect(d.lines.last?.hasPrefix("ERR SYNTAX") == true)
        d.advance(to: 5 * second)
        #expect(d.machine.closeReason == .authExpired)
    }

    @Test func aTokensFileCredentialNeverExpiresNorReauthenticates() {
        var d = MachineDriver(limits: .testing { $0.idleTimeout = 1000 * second })
        d.logIn()
        d.advance(to: 500 * second)
        #expect(d.machine.isOpen)
        d.send("AUTH alice good\n")
        #expect(d.lines.last == "ERR SYNTAX already authenticated")
    }
}
