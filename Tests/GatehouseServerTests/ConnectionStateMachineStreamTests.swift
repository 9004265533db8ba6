import GatehouseProtocol
import Testing

@testable import GatehouseServer

/// Streams in the connection state machine: opening at once or after the stream's other
/// connection released it (lines behind the STREAM wait, numbered from the exact last number),
/// being superseded with messages in flight, and when the stream may be released.
@Suite("Connection state machine: streams")
struct ConnectionStateMachineStreamTests {
    @Test func streamOpensAtOnceWhenNoOtherConnectionHoldsIt() {
        var d = MachineDriver(limits: .testing())
        d.streamLast = ["app": 7]
        d.logIn()
        d.send("STREAM app\nMSG a\nMSG b\n")
        #expect(d.openedStream == "app")
        #expect(d.journal.map(\.n) == [8, 9])
        d.outcome(stored: true)
        d.outcome(stored: true)
        #expect(d.lines.suffix(3) == ["OK STREAM app 7", "ACK 8", "ACK 9"])
    }

    @Test func linesBehindAWaitingStreamAreNumberedFromTheExactLast() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.streamHeldElsewhere = true
        d.send("STREAM app\nMSG a\nPING\nMSG b\n")
        // Nothing after the STREAM is framed, answered or journalled yet, and reading stops.
        #expect(d.machine.isAwaitingStream)
        #expect(!d.machine.wantsToRead)
        #expect(d.journal.isEmpty)
        #expect(d.lines.last == "OK AUTH alice")
        #expect(d.heldInput == Array("MSG a\nPING\nMSG b\n".utf8))
        // The other connection's last message was stored meanwhile: the number is exact.
        d.streamReady(last: 12)
        #expect(d.machine.wantsToRead)
        #expect(d.journal.map(\.n) == [13, 14])
        #expect(d.journal.map(\.text) == ["a", "b"])
        d.outcome(stored: true)
        d.outcome(stored: true)
        #expect(d.lines.suffix(4) == ["OK STREAM app 12", "ACK 13", "PONG", "ACK 14"])
    }

    @Test func supersededConnectionDeliversItsAcksThenSupersededThenCloses() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("STREAM app\nMSG a\nMSG b\n")
        d.superseded()
        // Still two messages in flight: the stream is not released yet, and nothing more is read.
        #expect(!d.machine.canReleaseStream)
        #expect(d.machine.closeReason == .superseded)
        d.send("MSG c\n")
        #expect(d.journal.count == 2)
        d.outcome(stored: true)
        #expect(!d.machine.canReleaseStream)
        d.outcome(stored: false)
        #expect(d.machine.canReleaseStream)
        d.machine.streamReleased()
        #expect(!d.machine.canReleaseStream)  // once
        #expect(
            d.lines.suffix(3) == [
                "ACK 1", "ERR UNAVAILABLE the journal could not store the message; it was not acknowledged",
                "ERR SUPERSEDED another connection took over stream app",
            ]
        )
        #expect(d.steps.last == .linger)
    }

    @Test func aClosedConnectionReleasesItsStreamOnlyWhenItsOutcomesAreIn() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("STREAM app\nMSG a\n")
        _ = d.machine.close(.peerWentAway)
        #expect(!d.machine.canReleaseStream)
        d.machine.outcomeAfterClose()
        #expect(d.machine.canReleaseStream)
    }

    @Test func anOpenConnectionDoesNotReleaseItsStream() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("STREAM app\n")
        #expect(!d.machine.canReleaseStream)
        // A plain connection has nothing to release.
        var plain = MachineDriver(limits: .testing())
        plain.logIn()
        plain.peerClosed()
        #expect(!plain.machine.canReleaseStream)
    }

    @Test func supersedingAPlainConnectionDoesNothing() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.superseded()
        #expect(d.machine.isOpen)
    }

    /// With a store that answers later (PostgreSQL) the connection waits as for another holder;
    /// when the store cannot answer, the STREAM is refused, reading resumes, and the lines behind
    /// it are plain messages numbered from 1.
    @Test func aStreamTheStoreCannotAnswerIsRefusedAndReadingResumes() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.streamHeldElsewhere = true
        d.send("STREAM app\nMSG a\n")
        #expect(d.machine.isAwaitingStream)
        #expect(!d.machine.wantsToRead)
        d.streamLookupFailed()
        #expect(!d.machine.isAwaitingStream)
        #expect(d.machine.wantsToRead)
        #expect(d.machine.session.streamName == nil)
        #expect(d.journal.map(\.n) == [1])
        d.outcome(stored: true)
        #expect(d.lines.suffix(2) == ["ERR UNAVAILABLE store unavailable", "ACK 1"])
        // Refused, not used up: a later STREAM may still open it.
        #expect(!d.machine.canReleaseStream)
    }
}
