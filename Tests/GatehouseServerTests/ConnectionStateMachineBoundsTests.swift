import GatehouseProtocol
import Testing

@testable import GatehouseServer

/// The connection state machine's budgets, reply order and bounds, event by event.
@Suite("Connection state machine: budgets, order, bounds")
struct ConnectionStateMachineBoundsTests {
    // MARK: the error budget and throttled AUTH

    @Test func theLineThatSpendsTheBudgetIsAnsweredTooManyErrorsAndCloses() {
        var d = MachineDriver(limits: .testing { $0.errorBudget = 3 })
        d.handshake()
        d.send("NOPE\nMSG before auth\nBAD\nPING\n")
        #expect(
            d.lines.dropFirst().map { String($0.prefix(19)) } == [
                "ERR UNKNOWN_COMMAND", "ERR NOAUTH authenti", "ERR TOO_MANY_ERRORS",
            ]
        )
        #expect(d.machine.closeReason == .tooManyErrors)
        #expect(d.machine.errorsSent == 3)
    }

    @Test func aCorrectTokenFromAThrottledAddressAuthenticates() {
        var d = MachineDriver(limits: .testing())
        d.addressThrottled = true
        d.handshake()
        d.send("AUTH alice good\nMSG hello\n")
        #expect(d.lines.last == "OK AUTH alice")
        #expect(d.journal.map(\.text) == ["hello"])
        #expect(d.machine.session.errorsLeft == 10)
    }

    @Test func aFailedAuthFromAThrottledAddressIsRateLimitedAndClosesAtOnce() {
        var d = MachineDriver(limits: .testing())
        d.addressThrottled = true
        d.handshake()
        d.send("AUTH alice bad\nAUTH alice bad2\nAUTH alice good\n")
        #expect(d.lines.count == 2)
        #expect(d.lines[1].hasPrefix("ERR RATE_LIMITED "))
        #expect(d.machine.closeReason == .authThrottled)
        #expect(d.machine.session.errorsLeft == 9)  // it spends a unit, like any failed AUTH
        #expect(d.failuresRecorded == 0)  // a throttled address is not charged again
        #expect(d.steps == [.linger])
    }

    @Test func failuresBeforeTheThrottleSpendTheBudgetAndAreRecorded() {
        var d = MachineDriver(limits: .testing { $0.errorBudget = 3 })
        d.handshake()
        d.send("AUTH alice a\nAUTH alice b\n")
        #expect(d.failuresRecorded == 2)
        #expect(d.machine.session.errorsLeft == 1)
        d.addressThrottled = true
        d.send("AUTH alice c\n")
        // The last unit: TOO_MANY_ERRORS, and closed either way.
        #expect(d.lines.last?.hasPrefix("ERR TOO_MANY_ERRORS ") == true)
        #expect(d.machine.closeReason == .tooManyErrors)
    }

    // MARK: reply order

    @Test func repliesKeepTheOrderOfTheLinesWhateverOrderOutcomesAndErrorsInterleave() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("PING\nMSG a\nPING\nNOPE\nMSG b\nMSG c\nPING\n")
        #expect(d.lines.suffix(1) == ["PONG"])  // before the first MSG: out at once
        #expect(d.machine.replies.inFlight == 3)
        d.outcome(stored: true)
        #expect(d.lines.suffix(3) == ["ACK 1", "PONG", "ERR UNKNOWN_COMMAND expected AUTH, MSG, PING or QUIT"])
        d.outcome(stored: false)
        #expect(d.lines.last?.hasPrefix("ERR UNAVAILABLE ") == true)
        d.send("PING\n")  // behind ACK 3 still
        #expect(d.lines.last?.hasPrefix("ERR UNAVAILABLE ") == true)
        d.outcome(stored: true)
        #expect(d.lines.suffix(3) == ["ACK 3", "PONG", "PONG"])
        #expect(d.machine.replies.isEmpty)
        #expect(d.machine.messagesAcked == 2)
        #expect(d.machine.messagesFailed == 1)
        // The failed message kept its number: the next ACK is 4.
        d.send("MSG d\n")
        d.outcome(stored: true)
        #expect(d.lines.last == "ACK 4")
    }

    @Test func aMessagePastTheRateIsRateLimitedInItsPlaceWithoutANumber() {
        var d = MachineDriver(limits: .testing { $0.maxMessageRate = 2 })
        d.logIn()
        d.send("MSG a\nMSG b\nMSG c\nPING\n")
        d.outcome(stored: true)
        d.outcome(stored: true)
        #expect(d.lines.suffix(4).map { String($0.prefix(16)) } == ["ACK 1", "ACK 2", "ERR RATE_LIMITED", "PONG"])
        d.advance(to: 500 * ms)
        d.send("MSG d\n")
        d.outcome(stored: true)
        #expect(d.lines.last == "ACK 3")
        #expect(d.journal.map(\.text) == ["a", "b", "d"])
        #expect(d.machine.session.errorsLeft == 10)
    }

    // MARK: byte bounds and the read budget

    @Test func repliesWaitingBehindAnAckCountTowardTheBound() {
        var d = MachineDriver(limits: .testing { $0.maxQueuedReplyBytes = 1000 })
        d.logIn()
        #expect(d.send("MSG first\n") == .more)
        // 199 PONGs (995 bytes) wait behind ACK 1: under the bound.
        #expect(d.send(String(repeating: "PING\n", count: 199)) == .more)
        #expect(d.machine.replies.waitingBytes == 995)
        // Two more: over it. Reading pauses, and nothing more is taken in.
        #expect(d.send("PING\nPING\n") == .stop)
        #expect(d.phase == .open(.init(authDeadline: nil, reading: .paused)))
        #expect(!d.machine.wantsToRead)
        // The ACK arrives, but the client does not read: the bound still holds it paused.
        d.socketFull = true
        d.outcome(stored: true)
        #expect(d.machine.replies.waitingBytes == 0)
        #expect(d.machine.replies.unsentBytes == 6 + 201 * 5)  // ACK 1 and the PONGs
        #expect(!d.machine.wantsToRead)
        // The client reads: under half the bound, reading resumes.
        d.socketFull = false
        d.flush()
        #expect(d.steps == [.resumeReading])
        #expect(d.machine.wantsToRead)
        #expect(d.lines.count == 2 + 1 + 201)
    }

    @Test func journalBytesInFlightAreBounded() {
        let text = String(repeating: "m", count: 1000)
        var d = MachineDriver(limits: .testing { $0.maxInFlightBytes = 4 * (1000 + ConnectionLimits.recordOverhead) })
        d.logIn()
        for _ in 0..<4 { #expect(d.send("MSG \(text)\n") == .more) }
        #expect(d.machine.replies.inFlightBytes == 4 * (1000 + ConnectionLimits.recordOverhead))
        #expect(d.send("MSG \(text)\n") == .stop)
        #expect(!d.machine.wantsToRead)
        for _ in 0..<2 { d.outcome(stored: true) }
        #expect(!d.machine.wantsToRead)  // 3 of 5 still in flight: over half
        d.outcome(stored: true)
        #expect(d.machine.wantsToRead)
        #expect(d.steps == [.resumeReading])
    }

    @Test func messagesInFlightAreBoundedByCountToo() {
        var d = MachineDriver(limits: .testing { $0.maxInFlightMessages = 8 })
        d.logIn()
        #expect(d.send(String(repeating: "MSG x\n", count: 7)) == .more)
        #expect(d.send("MSG x\n") == .stop)
        for _ in 0..<4 { d.outcome(stored: true) }
        #expect(d.machine.wantsToRead)
    }

    @Test func theReadBudgetYieldsOncePerTurn() {
        var d = MachineDriver(limits: .testing { $0.readBudget = 1000 })
        d.logIn()
        let chunk = String(repeating: "PING\n", count: 100)  // 500 bytes
        #expect(d.send(chunk, turn: 7) == .more)
        #expect(d.machine.hasReadBudget)
        #expect(d.send(chunk, turn: 7) == .yield)
        #expect(!d.machine.hasReadBudget)
        // A second read in the same turn does not get a fresh budget...
        d.machine.beginReadTurn(7)
        #expect(!d.machine.hasReadBudget)
        // ...the next turn does.
        d.machine.beginReadTurn(8)
        #expect(d.machine.hasReadBudget)
        #expect(d.machine.readThisTurn == 0)
    }

    @Test func theJournalStallPausesAndResumesOnlyWhenItCatchesUp() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        let stalled = d.machine.journalSaturated()
        #expect(stalled)
        let again = d.machine.journalSaturated()
        #expect(!again)  // already stalled
        #expect(!d.machine.wantsToRead)
        d.flush()
        #expect(!d.machine.wantsToRead)  // draining the replies does not resume a stall
        let resumed = d.machine.journalCaughtUp()
        #expect(resumed == .resumeReading)
        #expect(d.machine.wantsToRead)
        let twice = d.machine.journalCaughtUp()
        #expect(twice == .none)
    }

    @Test func aClosingConnectionDropsWhatArrivesAndStillCountsItAgainstTheBudget() {
        var d = MachineDriver(limits: .testing { $0.readBudget = 100 })
        d.logIn()
        d.socketFull = true
        d.send("QUIT\n", turn: 1)
        #expect(d.machine.wantsToRead)
        #expect(d.send(String(repeating: "x", count: 200), turn: 1) == .yield)
        #expect(d.journal.isEmpty)
    }
}
