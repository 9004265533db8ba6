import GatehouseProtocol
import Testing

@testable import GatehouseServer

/// The connection lifecycle, event by event, on a fake clock.
@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    // MARK: handshake

    @Test func handshakeDeadlineClosesWithNoReply() {
        var d = MachineDriver(limits: .testing())
        #expect(d.machine.deadline == 10 * second)
        d.advance(to: 10 * second - 1)
        #expect(d.machine.isHandshaking)
        d.advance(to: 10 * second)
        #expect(d.steps == [.close(.handshakeTimeout)])
        #expect(d.phase == .closed(.handshakeTimeout))
        #expect(d.received.isEmpty)
        #expect(!d.machine.greeted)
    }

    /// Time a handshake waits in the worker's queue is the server's, not the client's: the
    /// timer stops while it waits and runs on with what was left.
    @Test func aQueuedHandshakeKeepsTheTimeItHadLeft() {
        var d = MachineDriver(limits: .testing())
        d.advance(to: 3 * second)
        d.machine.handshakeQueued(now: d.now)
        #expect(d.machine.deadline == .max)
        d.advance(to: 25 * second)  // far past the 10 s handshake timeout, all of it queued
        #expect(d.machine.isHandshaking)
        #expect(d.steps.isEmpty)
        d.machine.handshakeQueued(now: d.now)  // queued again before its turn: still 7 s left
        d.machine.handshakeDequeued(now: d.now)
        #expect(d.machine.deadline == 32 * second)
        d.machine.handshakeDequeued(now: d.now)  // not queued: nothing moves
        #expect(d.machine.deadline == 32 * second)
        d.advance(to: 32 * second - 1)
        #expect(d.machine.isHandshaking)
        d.advance(to: 32 * second)
        #expect(d.steps == [.close(.handshakeTimeout)])
    }

    @Test func aHandshakeQueuedPastItsDeadlineGetsOneStepBeforeItsTimerFires() {
        var d = MachineDriver(limits: .testing())
        d.advance(to: 9 * second)
        d.machine.handshakeQueued(now: 11 * second)  // its timer was due: nothing left
        #expect(d.machine.isHandshaking)
        d.now = 20 * second
        d.machine.handshakeDequeued(now: d.now)
        #expect(d.machine.deadline == 20 * second)
        d.advance(to: 20 * second)
        #expect(d.steps == [.close(.handshakeTimeout)])
    }

    @Test func peerClosingDuringTheHandshakeClosesAtOnce() {
        var d = MachineDriver(limits: .testing())
        d.peerClosed()
        #expect(d.steps == [.close(.peerClosedDuringHandshake)])
    }

    @Test func greetingOpensWithAnAuthenticationDeadline() {
        var d = MachineDriver(limits: .testing())
        d.now = 3 * second
        d.handshake()
        #expect(d.lines == ["HELLO gatehouse/1"])
        #expect(d.phase == .open(.init(authDeadline: 13 * second)))
        #expect(d.machine.deadline == 13 * second)
        #expect(d.machine.wantsToRead)
    }

    @Test func aCertificateUserHasNoAuthenticationDeadline() {
        var d = MachineDriver(limits: .testing())
        d.handshake(certificateUser: "alice")
        #expect(d.lines == ["HELLO gatehouse/1 AUTHENTICATED alice"])
        #expect(d.phase == .open(.init(authDeadline: nil)))
        #expect(d.machine.deadline == 30 * second)  // the idle timeout
    }

    @Test func pastTheConnectionLimitTheHandshakeEndsInBusy() {
        var d = MachineDriver(limits: .testing(), busy: true)
        #expect(d.machine.isBusyRefusal)
        d.handshake(certificateUser: "alice")
        #expect(d.lines.count == 1)
        #expect(d.lines[0].hasPrefix("ERR BUSY "))
        #expect(d.phase == .lingering(.busy, deadline: 2 * second))
        #expect(d.steps == [.linger])
    }

    @Test func aHandshakeCompletedDuringADrainGreetsThenSaysShuttingDown() {
        var d = MachineDriver(limits: .testing())
        d.handshake(draining: true)
        #expect(d.lines.count == 2)
        #expect(d.lines[0] == "HELLO gatehouse/1")
        #expect(d.lines[1].hasPrefix("ERR SHUTTING_DOWN "))
        #expect(d.machine.closeReason == .shutdown)
    }

    // MARK: the authentication deadline

    @Test func pingDoesNotExtendTheAuthenticationDeadline() {
        var d = MachineDriver(limits: .testing())
        d.handshake()
        for t in 1...9 {
            d.advance(to: UInt64(t) * second)
            d.send("PING\n")
        }
        #expect(d.lines.filter { $0 == "PONG" }.count == 9)
        #expect(d.machine.deadline == 10 * second)
        d.advance(to: 10 * second)
        #expect(d.lines.last?.hasPrefix("ERR AUTH_TIMEOUT ") == true)
        #expect(d.machine.closeReason == .authTimeout)
        #expect(d.steps == [.linger])
    }

    @Test func authenticatingInTimeLiftsTheDeadline() {
        var d = MachineDriver(limits: .testing())
        d.handshake()
        d.advance(to: 9 * second)
        d.send("AUTH alice good\n")
        #expect(d.lines.last == "OK AUTH alice")
        #expect(d.phase == .open(.init(authDeadline: nil)))
        #expect(d.machine.deadline == 39 * second)
        d.advance(to: 20 * second)
        #expect(d.machine.isOpen)
    }

    @Test func aFailedAuthDoesNotLiftTheDeadline() {
        var d = MachineDriver(limits: .testing())
        d.handshake()
        d.send("AUTH alice bad\n")
        #expect(d.lines.last?.hasPrefix("ERR AUTH_FAILED ") == true)
        #expect(d.machine.deadline == 10 * second)
        #expect(d.failuresRecorded == 1)
    }

    // MARK: the idle timer and the line deadline

    @Test func idleTimeoutAfterTheLastCompleteLine() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.advance(to: 5 * second)
        d.send("PING\n")
        #expect(d.machine.deadline == 35 * second)
        d.advance(to: 35 * second - 1)
        #expect(d.machine.isOpen)
        d.advance(to: 35 * second)
        #expect(d.lines.last == "ERR IDLE_TIMEOUT no complete line within the idle timeout")
        #expect(d.machine.closeReason == .idleTimeout)
    }

    @Test func aDribbledLineIsClosedAtTheIdleTimeoutFromItsFirstByte() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.advance(to: 1 * second)
        // One byte every 0.8 s: none of them restarts the timer.
        var t = 1 * second
        for byte in "MSG dribbled".utf8 {
            d.advance(to: t)
            d.send([byte])
            t += 800 * ms
        }
        #expect(d.machine.lineStartedAt == 1 * second)
        #expect(d.machine.deadline == 30 * second)  // since OK AUTH at 0
        d.advance(to: 30 * second)
        #expect(d.machine.closeReason == .idleTimeout)
        #expect(d.journal.isEmpty)
    }

    @Test func aReplySentMeanwhileDoesNotExtendALineBeyondItsFirstByte() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("MSG one\nMSG tw")  // "MSG tw" starts at 0
        #expect(d.machine.lineStartedAt == 0)
        d.advance(to: 20 * second)
        d.outcome(stored: true)  // ACK 1 written at 20 s: the idle timer restarts...
        #expect(d.machine.lastActivity == 20 * second)
        #expect(d.machine.deadline == 30 * second)  // ...but the line must end by 0 + 30 s
        d.advance(to: 29 * second)
        d.send("o\n")
        #expect(d.machine.lineStartedAt == nil)
        #expect(d.machine.deadline == 59 * second)
    }

    @Test func aNewLineStartedInTheSameChunkAsAnEndingOneStartsNow() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("PI")
        #expect(d.machine.lineStartedAt == 0)
        d.advance(to: 4 * second)
        d.send("NG\nPI")
        #expect(d.machine.lineStartedAt == 4 * second)
        d.advance(to: 5 * second)
        d.send("N")
        #expect(d.machine.lineStartedAt == 4 * second)
    }

    @Test func aTooLongLineStillHasToEndInTime() {
        var d = MachineDriver(limits: .testing { $0.maxLine = 16 })
        d.logIn()
        d.send("MSG " + String(repeating: "x", count: 40))
        #expect(d.lines.last?.hasPrefix("ERR TOO_LONG ") == true)
        #expect(d.machine.lineStartedAt == 0)
        d.advance(to: 25 * second)
        d.send(String(repeating: "x", count: 10))
        d.advance(to: 30 * second)
        #expect(d.machine.closeReason == .idleTimeout)
    }

    // MARK: closing: grace, linger, reasons

    @Test func quitAnswersEveryEarlierLineThenByeThenLingers() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("MSG one\nPING\nMSG two\nQUIT\nMSG after quit\nPING\n")
        // ACK 1 is in flight: nothing after it is written yet.
        #expect(d.lines == ["HELLO gatehouse/1", "OK AUTH alice"])
        #expect(d.machine.closeReason == .quit)
        #expect(d.machine.deadline == 5 * second)
        #expect(d.journal.map(\.text) == ["one", "two"])
        d.outcome(stored: true)
        #expect(d.lines.suffix(2) == ["ACK 1", "PONG"])
        #expect(d.steps.isEmpty)  // ACK 2 still in flight: no linger yet
        d.outcome(stored: true)
        #expect(d.lines.suffix(2) == ["ACK 2", "BYE"])
        #expect(d.steps == [.linger])
        #expect(d.phase == .lingering(.quit, deadline: 2 * second))
        #expect(d.machine.wantsToRead)  // input is read and dropped until EOF
        d.send("more\n")
        #expect(d.lines.last == "BYE")
        d.peerClosed()
        #expect(d.steps == [.linger, .close(.quit)])
    }

    @Test func lingeringEndsAtItsDeadlineWithoutEOF() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("QUIT\n")
        #expect(d.steps == [.linger])
        d.advance(to: 2 * second)
        #expect(d.steps == [.linger, .close(.quit)])
    }

    @Test func aClientThatDoesNotTakeItsLastRepliesIsClosedAtTheGraceDeadline() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.socketFull = true
        d.send("QUIT\n")
        #expect(d.machine.closeReason == .quit)
        d.advance(to: 5 * second - 1)
        #expect(d.steps.isEmpty)
        d.advance(to: 5 * second)
        #expect(d.steps == [.close(.quit)])
        #expect(d.machine.replies.unsentBytes > 0)
    }

    @Test func aClientThatHalfClosesGetsEveryAnswerThenTheClose() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("MSG one\nMSG two\nPING\nMSG thr")
        d.peerClosed()
        #expect(d.machine.closeReason == .clientClosed)
        #expect(!d.machine.wantsToRead)  // EOF seen: nothing more to read
        d.outcome(stored: true)
        d.outcome(stored: false)
        #expect(
            d.lines.suffix(3) == [
                "ACK 1", "ERR UNAVAILABLE the journal could not store the message; it was not acknowledged", "PONG",
            ]
        )
        #expect(d.steps == [.linger])
        #expect(d.journal.count == 2)  // the partial last line is dropped
    }

    @Test func drainSaysShuttingDownAfterTheRepliesInFlight() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("MSG one\n")
        d.drain()
        #expect(d.machine.closeReason == .shutdown)
        d.outcome(stored: true)
        #expect(d.lines.suffix(2).first == "ACK 1")
        #expect(d.lines.last?.hasPrefix("ERR SHUTTING_DOWN ") == true)
        #expect(d.steps == [.linger])
    }

    @Test func drainDuringTheHandshakeClosesAtOnce() {
        var d = MachineDriver(limits: .testing())
        d.drain()
        #expect(d.steps == [.close(.shutdown)])
    }

    @Test func anErrorAfterClosingIsAnAbruptCloseAndNothingMoreHappens() {
        var d = MachineDriver(limits: .testing())
        d.logIn()
        let first = d.machine.close(.peerWentAway)
        #expect(first == .close(.peerWentAway))
        let second = d.machine.close(.tlsError)
        #expect(second == .none)
        #expect(d.machine.isClosed)
        #expect(!d.machine.wantsToRead)
        #expect(d.machine.deadline == .max)
        let timer = d.machine.timerFired(now: .max - 1)
        #expect(timer == .none)
        let line = d.machine.lineFramed(UnsafeRawBufferPointer(start: nil, count: 0), now: 0)
        #expect(line == .stop)
        let drain = d.machine.drainRequested(now: 0)
        #expect(drain == .none)
    }

    @Test func everyCloseReasonIsReachable() {
        var seen = Set<CloseReason>()
        func final(_ d: MachineDriver) -> CloseReason? { d.machine.closeReason }
        // Handshake deadline, failure, peer close.
        var d = MachineDriver(limits: .testing())
        d.advance(to: 10 * second)
        seen.insert(final(d)!)
        d = MachineDriver(limits: .testing())
        _ = d.machine.close(.handshakeFailed)
        seen.insert(final(d)!)
        d = MachineDriver(limits: .testing())
        d.peerClosed()
        seen.insert(final(d)!)
        // BUSY.
        d = MachineDriver(limits: .testing(), busy: true)
        d.handshake()
        seen.insert(final(d)!)
        // QUIT, client close, shutdown.
        for input in ["QUIT\n"] {
            d = MachineDriver(limits: .testing())
            d.logIn()
            d.send(input)
            seen.insert(final(d)!)
        }
        d = MachineDriver(limits: .testing())
        d.logIn()
        d.peerClosed()
        seen.insert(final(d)!)
        d = MachineDriver(limits: .testing())
        d.logIn()
        d.drain()
        seen.insert(final(d)!)
        // Error budget, throttled AUTH, auth deadline, idle deadline.
        d = MachineDriver(limits: .testing { $0.errorBudget = 1 })
        d.handshake()
        d.send("NOPE\n")
        seen.insert(final(d)!)
        d = MachineDriver(limits: .testing())
        d.handshake()
        d.addressThrottled = true
        d.send("AUTH alice bad\n")
        seen.insert(final(d)!)
        d = MachineDriver(limits: .testing())
        d.handshake()
        d.advance(to: 10 * second)
        seen.insert(final(d)!)
        d = MachineDriver(limits: .testing())
        d.logIn()
        d.advance(to: 30 * second)
        seen.insert(final(d)!)
        // An access token's expiry.
        d = MachineDriver(limits: .testing())
        d.credentialLifetime = 5 * second
        d.logIn()
        d.advance(to: 6 * second)
        seen.insert(final(d)!)
        // A stream taken over by another connection.
        d = MachineDriver(limits: .testing())
        d.logIn()
        d.send("STREAM app\n")
        d.superseded()
        seen.insert(final(d)!)
        // Abrupt ones, decided by the worker's I/O.
        for reason in [CloseReason.peerWentAway, .tlsError, .serverStopped, .setupFailed, .proxyHeaderRefused] {
            d = MachineDriver(limits: .testing())
            _ = d.machine.close(reason)
            seen.insert(final(d)!)
        }
        #expect(seen == Set(CloseReason.allCases))
        // Graceful exactly where there was a last reply to deliver.
        #expect(
            Set(CloseReason.allCases.filter(\.isGraceful)) == [
                .busy, .quit, .tooManyErrors, .authThrottled, .authTimeout, .authExpired, .idleTimeout, .shutdown,
                .clientClosed, .superseded,
            ]
        )
    }
}
