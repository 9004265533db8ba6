import GatehouseProtocol

@testable import GatehouseServer

typealias Machine = ConnectionStateMachine

let ms: UInt64 = 1_000_000
let second: UInt64 = 1_000_000_000

/// Drives one `ConnectionStateMachine` the way a worker does, with no sockets: bytes go through a
/// real `LineFramer`, tokens are checked against a table, the journal is a list, the socket takes
/// what it is given (or nothing, when `socketFull`), and the clock is `now`, moved by hand.
struct MachineDriver {
    var machine: Machine
    var framer: LineFramer
    var now: UInt64 = 0
    var tokens = ["alice": "good", "bob": "good"]
    /// Whether the peer's address is throttled, as the shared throttle would answer.
    var addressThrottled = false
    /// How long an accepted credential lasts (an access token); nil: it does not expire.
    var credentialLifetime: UInt64?
    /// Failures recorded against the address (what the worker would report to the throttle).
    private(set) var failuresRecorded = 0
    /// Messages handed to the journal, in order: their number and text.
    private(set) var journal: [(n: Int, text: String)] = []
    /// Everything the client has received, as text.
    private(set) var received: [UInt8] = []
    /// Steps returned by the machine, in order (`.none` left out).
    private(set) var steps: [Machine.Step] = []
    /// The socket takes nothing (a client that does not read).
    var socketFull = false
    /// Each stream's last stored number, as the journal would answer.
    var streamLast: [String: Int] = [:]
    /// Another connection holds the stream with messages in flight: a STREAM waits.
    var streamHeldElsewhere = false
    /// Input framing stopped at while a STREAM waits, as the worker keeps it.
    private(set) var heldInput: [UInt8] = []
    /// The stream a STREAM asked for.
    private(set) var openedStream: String?

    init(limits: ConnectionLimits = ConnectionLimits(), busy: Bool = false) {
        machine = Machine(limits: limits, now: 0, busy: busy)
        framer = LineFramer(maxLine: limits.maxLine)
    }

    /// Reply lines the client has received so far.
    var lines: [String] {
        String(decoding: received, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast().map(String.init)
    }

    var phase: Machine.Phase { machine.phase }

    mutating func record(_ step: Machine.Step) {
        if step != .none { steps.append(step) }
    }

    mutating func handshake(certificateUser: String? = nil, draining: Bool = false) {
        machine.handshakeCompleted(now: now, certificateUser: certificateUser, draining: draining)
        flush()
    }

    /// One read of `text` as one chunk (a new read turn unless `sameTurn`), then a flush.
    @discardableResult
    mutating func send(_ text: String, turn: UInt64? = nil, flush doFlush: Bool = true) -> Machine.ReadNext {
        send(Array(text.utf8), turn: turn, flush: doFlush)
    }

    @discardableResult
    mutating func send(_ bytes: [UInt8], turn: UInt64? = nil, flush doFlush: Bool = true) -> Machine.ReadNext {
        machine.beginReadTurn(turn ?? (now &+ 1))
        if machine.expireCredentialIfDue(now: now) {
            if doFlush { flush() }
            return .stop
        }
        let open = machine.isOpen
        if open {
            var framer = self.framer
            bytes.withUnsafeBytes { buffer in
                let used = framer.feed(buffer) { event in
                    switch event {
                    case .line(let line): return perform(machine.lineFramed(line, now: now), line)
                    case .tooLong:
                        return perform(machine.lineTooLong(now: now), UnsafeRawBufferPointer(start: nil, count: 0))
                    }
                }
                if used < buffer.count && machine.isAwaitingStream {
                    heldInput.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[used...]))
                }
            }
            self.framer = framer
        }
        let next = machine.bytesRead(bytes.count, linePending: open && framer.hasPartialLine, now: now)
        if doFlush { flush() }
        return next
    }

    private mutating func perform(_ step: Machine.LineStep, _ line: UnsafeRawBufferPointer) -> Bool {
        switch step {
        case .next: return true
        case .stop: return false
        case .journal(let text, let n):
            journal.append((n, String(decoding: UnsafeRawBufferPointer(rebasing: line[text]), as: UTF8.self)))
            return true
        case .openStream(let name):
            openedStream = name
            if streamHeldElsewhere { return perform(machine.streamAwaited(), line) }
            return perform(machine.streamOpened(last: streamLast[name] ?? 0, now: now), line)
        case .authenticate(let user, let tokenRange):
            let token = String(decoding: UnsafeRawBufferPointer(rebasing: line[tokenRange]), as: UTF8.self)
            let ok = tokens[user] == token
            let throttled = !ok && addressThrottled
            if !ok && !throttled { failuresRecorded += 1 }
            return perform(
                machine.authenticationChecked(
                    user: user,
                    succeeded: ok,
                    addressThrottled: throttled,
                    now: now,
                    expiresAt: credentialLifetime.map { now &+ $0 }
                ),
                line
            )
        }
    }

    /// The stream's other connection released it (the registry's `streamReady`): the STREAM is
    /// answered with `last` and the held lines are framed.
    mutating func streamReady(last: Int) {
        streamHeldElsewhere = false
        _ = perform(machine.streamOpened(last: last, now: now), UnsafeRawBufferPointer(start: nil, count: 0))
        let held = heldInput
        heldInput = []
        if !held.isEmpty { send(held) } else { flush() }
    }

    /// The store could not tell where the stream stands (`Worker.streamLooked` with nil): the
    /// STREAM is refused and the held lines are framed as plain ones.
    mutating func streamLookupFailed() {
        streamHeldElsewhere = false
        _ = perform(machine.streamRefused("store unavailable", now: now), UnsafeRawBufferPointer(start: nil, count: 0))
        let held = heldInput
        heldInput = []
        if !held.isEmpty { send(held) } else { flush() }
    }

    /// Writes what the socket takes, then tells the machine it flushed.
    mutating func flush() {
        guard !machine.isClosed, !machine.isHandshaking, !machine.isLingering else { return }
        if !socketFull {
            let n = machine.replies.unsentBytes
            machine.replies.withUnsent { received.append(contentsOf: $0) }
            machine.wrote(n, now: now)
        }
        if machine.replies.unsentBytes == 0 { record(machine.flushed(now: now)) }
    }

    /// The journal's outcome for the oldest message in flight.
    mutating func outcome(stored: Bool) {
        machine.journalOutcome(stored: stored)
        flush()
    }

    /// Moves the clock and fires the timer as the worker would (when the deadline is due).
    mutating func advance(to time: UInt64) {
        now = time
        if machine.deadline <= now { record(machine.timerFired(now: now)) }
        flush()
    }

    mutating func advance(by delta: UInt64) { advance(to: now + delta) }

    mutating func peerClosed() {
        record(machine.peerClosed(now: now))
        flush()
    }

    mutating func drain() {
        record(machine.drainRequested(now: now))
        flush()
    }

    /// Another connection took this connection's stream (the worker's `supersede`).
    mutating func superseded() {
        machine.superseded(now: now)
        flush()
    }

    /// The authenticated open phase, in one call.
    mutating func logIn(_ user: String = "alice") {
        handshake()
        send("AUTH \(user) good\n")
    }
}

extension ConnectionLimits {
    /// Small, round limits for tests.
    static func testing(_ body: (inout ConnectionLimits) -> Void = { _ in }) -> ConnectionLimits {
        var limits = ConnectionLimits()
        limits.handshakeTimeout = 10 * second
        limits.authTimeout = 10 * second
        limits.idleTimeout = 30 * second
        limits.closeGrace = 5 * second
        limits.lingerTimeout = 2 * second
        body(&limits)
        return limits
    }
}
