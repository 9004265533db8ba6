import GatehouseProtocol

/// The lifecycle of one connection as a pure state machine: events in (handshake completed,
/// bytes read, line framed, token checked, journal outcome, replies written, timer fired, peer
/// closed, drain requested, journal saturated), decisions out (what to journal, whether to read
/// on, when the timer fires, when to linger and when to close, with a `CloseReason`).
///
/// No I/O and no clock: every event carries `now` (monotonic nanoseconds) from the worker's one
/// clock, and every deadline is computed here, in `deadline`. The worker does what the machine
/// decides: it reads while `wantsToRead`, writes while `replies` holds unsent bytes, registers
/// the epoll interest that follows from both, keeps a timer at `deadline`, and acts on each
/// returned `Step`. Tests drive it event by event with a fake clock (Tests/GatehouseServerTests).
struct ConnectionStateMachine {
    enum Phase: Equatable {
        /// TLS handshake under way until `deadline`. `busy`: accepted past the connection limit,
        /// so the handshake ends in ERR BUSY instead of the greeting.
        case handshaking(deadline: UInt64, busy: Bool)
        /// Greeting sent; lines are read and answered.
        case open(Open)
        /// No more lines are read; the queued replies (ACKs still in flight included) go out
        /// until `deadline`. `reading`: input is still read and dropped, so the socket cannot
        /// spin and the peer's close is seen; false once the peer has closed.
        case closing(CloseReason, deadline: UInt64, reading: Bool)
        /// Every reply is out and close_notify and FIN are sent; input is read and dropped until
        /// the peer's EOF or `deadline`, so that closing does not reset a connection whose
        /// client has not read its last replies yet.
        case lingering(CloseReason, deadline: UInt64)
        /// The socket is closed (or about to be): nothing reads or writes it any more.
        case closed(CloseReason)
    }

    struct Open: Equatable {
        /// When a connection that has not authenticated gets AUTH_TIMEOUT; nil once authenticated.
        /// Nothing extends it.
        var authDeadline: UInt64?
        /// When the access token that authenticated the connection expires; nil for credentials
        /// that do not (tokens-file tokens, certificates). Re-authentication moves it.
        var credentialExpiry: UInt64?
        var reading: Reading = .active
    }

    enum Reading: Equatable {
        case active
        /// Over a bound (reply bytes, messages or bytes in flight): resumes once they are all
        /// back under half their bound.
        case paused
        /// The journal's queue is full: resumes when the journal catches up.
        case stalledOnJournal
        /// `STREAM` waits for another connection of the stream to resolve its messages: the
        /// lines after it are numbered only once `streamOpened` says where the stream stands.
        case awaitingStream
    }

    /// What the worker must do after an event, beyond keeping interest and timer in step.
    enum Step: Equatable {
        case none
        /// Reading may go on: read now (OpenSSL may hold plaintext that epoll will not announce).
        case resumeReading
        /// Every reply is out: send close_notify, shut the socket for writing, then read and
        /// drop input until EOF or the deadline.
        case linger
        /// Close the socket now.
        case close(CloseReason)
    }

    /// What the worker must do for one framed line.
    enum LineStep: Equatable {
        /// Nothing outside; frame the next line.
        case next
        /// Append this message to the journal batch (its ACK is already in line), then go on.
        case journal(text: Range<Int>, n: Int)
        /// Check this token, then report with `authenticationChecked`.
        case authenticate(user: String, token: Range<Int>)
        /// Find where the stream stands, fencing its other connection (`streamOpened`,
        /// `streamAwaited` or `streamRefused` report back).
        case openStream(name: String)
        /// Stop framing: the connection reads no more lines (or, awaiting a stream, reads them
        /// later: the worker keeps the unframed rest).
        case stop
    }

    /// Whether to read on after a chunk.
    enum ReadNext: Equatable {
        case more
        /// This wake-up's read budget is spent: let the other connections have their turn, submit
        /// the journal batch, and read this one again on the next turn.
        case yield
        /// Reading stops until an event resumes it (a bound, the journal, a close).
        case stop
    }

    private let sharedLimits: ConnectionLimits.Shared
    var limits: ConnectionLimits { sharedLimits.value }
    private(set) var phase: Phase
    private(set) var session: Session
    private(set) var replies = ReplyQueue()
    /// The last complete line or written reply: the idle timer runs from here.
    private(set) var lastActivity: UInt64
    /// When the unfinished line the framer holds began; nil when it holds none.
    private(set) var lineStartedAt: UInt64?
    /// A line completed since the last `bytesRead`: a partial line left now is a new one.
    private var lineCompleted = false
    /// Plaintext read in the current read turn (`beginReadTurn`).
    private(set) var readThisTurn = 0
    private var readTurn: UInt64 = 0
    private(set) var messagesAcked = 0
    private(set) var messagesFailed = 0
    private(set) var errorsSent = 0
    /// ERR replies by code (`ErrorCode.allCases` order), for the metrics; empty until the first
    /// one, so a connection that never errs holds no array.
    private(set) var errorsByCode: [UInt32] = []
    /// The handshake completed (the client got a greeting or ERR BUSY).
    private(set) var greeted = false
    /// The stream registry was told this connection let go of its stream.
    private(set) var streamLetGo = false
    /// While the worker holds the handshake in its queue (`handshakeQueued`): the handshake
    /// time it had left.
    private var handshakeTimeLeft: UInt64 = 0

    init(limits: ConnectionLimits, now: UInt64, busy: Bool = false) {
        self.init(limits: ConnectionLimits.Shared(limits), now: now, busy: busy)
    }

    /// A machine whose limits are `limits`, shared with the worker's other connections.
    init(limits shared: ConnectionLimits.Shared, now: UInt64, busy: Bool = false) {
        self.sharedLimits = shared
        let limits = shared.value
        self.phase = .handshaking(deadline: now &+ limits.handshakeTimeout, busy: busy)
        self.session = Session(errorBudget: limits.errorBudget)
        self.lastActivity = now
    }

    // MARK: handshake

    /// The worker queued the handshake's next step (this turn's handshake work is spent). Time
    /// spent waiting for the server is not the client's: the handshake timer stops until
    /// `handshakeDequeued`, so that under a reconnect storm a handshake is not closed for the
    /// server's own backlog (the clients would only come back and add to it).
    mutating func handshakeQueued(now: UInt64) {
        guard case .handshaking(let deadline, let busy) = phase, deadline != .max else { return }
        handshakeTimeLeft = deadline > now ? deadline - now : 0
        phase = .handshaking(deadline: .max, busy: busy)
    }

    /// The worker takes the handshake out of its queue: the timer runs again with the time left.
    mutating func handshakeDequeued(now: UInt64) {
        guard case .handshaking(.max, let busy) = phase else { return }
        phase = .handshaking(deadline: now &+ handshakeTimeLeft, busy: busy)
    }

    /// The TLS handshake finished. `certificateUser`: the user a verified client certificate
    /// names. `draining`: the server is shutting down.
    mutating func handshakeCompleted(now: UInt64, certificateUser: String?, draining: Bool) {
        guard case .handshaking(_, let busy) = phase else { return }
        lastActivity = now
        greeted = true
        if busy {
            replies.push(session.closeNotice(.busy, "server at its connection limit; try later"))
            beginClosing(.busy, now: now)
            return
        }
        session = Session(
            errorBudget: limits.errorBudget,
            certificateUser: certificateUser,
            maxMessageRate: limits.maxMessageRate
        )
        phase = .open(Open(authDeadline: certificateUser == nil ? now &+ limits.authTimeout : nil))
        replies.push(session.greeting)
        if draining { _ = drainRequested(now: now) }
    }

    // MARK: reading

    /// A read turn starts (one per connection per loop turn; a second call in the same turn
    /// goes on with what is left of the budget).
    mutating func beginReadTurn(_ turn: UInt64) {
        guard turn != readTurn else { return }
        readTurn = turn
        readThisTurn = 0
    }

    /// Whether this turn's read budget has room left.
    var hasReadBudget: Bool { readThisTurn < limits.readBudget }

    /// `count` bytes were read (and, while open, framed: `linePending` says whether the framer
    /// now holds part of a line).
    mutating func bytesRead(_ count: Int, linePending: Bool, now: UInt64) -> ReadNext {
        readThisTurn += count
        if case .open(var open) = phase {
            if !linePending {
                lineStartedAt = nil
            } else if lineStartedAt == nil || lineCompleted {
                lineStartedAt = now
            }
            lineCompleted = false
            if open.reading == .active && isOverBounds {
                open.reading = .paused
                phase = .open(open)
                return .stop
            }
        }
        guard wantsToRead else { return .stop }
        return hasReadBudget ? .more : .yield
    }

    /// A whole line arrived.
    @inline(__always)
    mutating func lineFramed(_ line: UnsafeRawBufferPointer, now: UInt64) -> LineStep {
        guard case .open = phase else { return .stop }
        lastActivity = now
        lineCompleted = true
        let action = session.receivedLine(line, now: now)
        return apply(action, now: now)
    }

    /// The current line went past the line limit (its rest is dropped as it arrives; the line
    /// deadline still runs for it).
    mutating func lineTooLong(now: UInt64) -> LineStep {
        guard case .open = phase else { return .stop }
        return apply(session.lineTooLong(limit: limits.maxLine), now: now)
    }

    /// The token check a `.authenticate` step asked for: `succeeded`, and whether the peer's
    /// address is throttled (asked only when the token was wrong).
    /// `expiresAt`: when the accepted credential expires (an access token), nil when it does not.
    mutating func authenticationChecked(
        user: String,
        succeeded: Bool,
        addressThrottled: Bool,
        now: UInt64,
        expiresAt: UInt64? = nil
    ) -> LineStep {
        guard case .open(var open) = phase else { return .stop }
        let action = session.authenticationResult(user: user, succeeded: succeeded, addressThrottled: addressThrottled)
        if succeeded {
            open.authDeadline = nil
            open.credentialExpiry = expiresAt
            session.allowsReauthentication = expiresAt != nil
            phase = .open(open)
        }
        return apply(action, now: now)
    }

    @inline(__always)
    private mutating func apply(_ action: Session.Action, now: UInt64) -> LineStep {
        switch action {
        case .journal(let text, let n):
            // What the record costs the journal: the text and the record's fixed fields.
            replies.pushMessage(n: n, journalBytes: text.count &+ ConnectionLimits.recordOverhead)
            return .journal(text: text, n: n)
        case .reply(let reply):
            if case .error(let code, _) = reply { countError(code) }
            replies.push(reply)
            return .next
        case .replyAndClose(let reply):
            let reason: CloseReason
            switch reply {
            case .bye: reason = .quit
            case .error(.rateLimited, _): reason = .authThrottled
            default: reason = .tooManyErrors
            }
            if case .error(let code, _) = reply { countError(code) }
            replies.push(reply)
            beginClosing(reason, now: now)
            return .stop
        case .authenticate(let user, let token):
            return .authenticate(user: user, token: token)
        case .openStream(let name):
            return .openStream(name: name)
        }
    }

    /// The peer ended its side (close_notify or EOF).
    mutating func peerClosed(now: UInt64) -> Step {
        switch phase {
        case .handshaking:
            return close(.peerClosedDuringHandshake)
        case .open:
            // Answer every whole line it sent (ACKs included), then close.
            beginClosing(.clientClosed, now: now, reading: false)
            return .none
        case .closing(let reason, let deadline, _):
            phase = .closing(reason, deadline: deadline, reading: false)
            return .none
        case .lingering(let reason, _):
            return close(reason)
        case .closed:
            return .none
        }
    }

    /// The journal's queue is full: stop reading until it catches up. Returns whether the
    /// connection stalled (and must be woken by `journalCaughtUp`).
    mutating func journalSaturated() -> Bool {
        guard case .open(var open) = phase, open.reading == .active else { return false }
        open.reading = .stalledOnJournal
        phase = .open(open)
        return true
    }

    /// The journal has room again.
    mutating func journalCaughtUp() -> Step {
        guard case .open(var open) = phase, open.reading == .stalledOnJournal else { return .none }
        open.reading = isOverBounds ? .paused : .active
        phase = .open(open)
        return open.reading == .active ? .resumeReading : .none
    }

    private mutating func countError(_ code: ErrorCode) {
        errorsSent &+= 1
        if errorsByCode.isEmpty { errorsByCode = Array(repeating: 0, count: ErrorCode.allCases.count) }
        errorsByCode[ErrorCode.allCases.firstIndex(of: code)!] &+= 1
    }

    // MARK: streams

    /// The stream an `.openStream` step named stands at `last`, with no message of another
    /// connection in flight: `OK STREAM`, and reading goes on if it waited.
    mutating func streamOpened(last: Int, now: UInt64) -> LineStep {
        guard case .open(var open) = phase else { return .stop }
        let step = apply(session.streamOpened(last: last), now: now)
        if open.reading == .awaitingStream {
            open.reading = isOverBounds ? .paused : .active
            phase = .open(open)
        }
        return step
    }

    /// Another connection holds the stream and still has messages in flight: stop reading
    /// until `streamOpened`.
    mutating func streamAwaited() -> LineStep {
        guard case .open(var open) = phase else { return .stop }
        open.reading = .awaitingStream
        phase = .open(open)
        return .stop
    }

    /// The stream cannot be opened (`why`: the stream limit, or a store that cannot tell where
    /// it stands); the connection stays plain, and reading goes on if it waited.
    mutating func streamRefused(_ why: String, now: UInt64) -> LineStep {
        guard case .open(var open) = phase else { return .stop }
        let step = apply(session.streamRefused(why), now: now)
        if open.reading == .awaitingStream {
            open.reading = isOverBounds ? .paused : .active
            phase = .open(open)
        }
        return step
    }

    /// Another connection of the same user took this connection's stream: the replies already
    /// due (ACKs in flight included) go out, then `ERR SUPERSEDED`, then the close.
    mutating func superseded(now: UInt64) {
        guard case .open = phase, let name = session.streamName else { return }
        replies.push(session.closeNotice(.superseded, "another connection took over stream \(name)"))
        beginClosing(.superseded, now: now)
    }

    /// Whether the connection has let go of its stream and none of its messages is in flight
    /// any more: then, once (`streamReleased`), the registry may give the stream's exact last
    /// number to the next connection.
    var canReleaseStream: Bool {
        guard session.streamName != nil, !streamLetGo else { return false }
        if case .open = phase { return false }
        return replies.inFlight == 0
    }

    /// The worker told the registry that the stream is free of this connection.
    mutating func streamReleased() { streamLetGo = true }

    /// A journal outcome for a message of this connection that arrived after it closed: the
    /// message is resolved (stored or not), nothing is sent.
    mutating func outcomeAfterClose() {
        replies.dropOldest()
    }

    // MARK: the journal and writing

    /// The journal's outcome for this connection's oldest message in flight.
    mutating func journalOutcome(stored: Bool) {
        guard !isClosed else { return }
        let failure = session.journalFailed()
        guard replies.resolve(stored: stored, failure: failure) != nil else { return }
        if stored { messagesAcked &+= 1 } else { messagesFailed &+= 1 }
    }

    /// `count` reply bytes were written.
    mutating func wrote(_ count: Int, now: UInt64) {
        replies.consume(count)
        if count > 0 { lastActivity = now }
    }

    /// The worker wrote all it could and nothing is left unsent.
    mutating func flushed(now: UInt64) -> Step {
        guard replies.unsentBytes == 0 else { return .none }
        switch phase {
        case .open(var open):
            guard open.reading == .paused, isUnderHalfBounds else { return .none }
            open.reading = .active
            phase = .open(open)
            return .resumeReading
        case .closing(let reason, _, _):
            guard replies.isEmpty else { return .none }  // ACKs still in flight
            phase = .lingering(reason, deadline: now &+ limits.lingerTimeout)
            return .linger
        default:
            return .none
        }
    }

    // MARK: timers, drain, close

    /// The timer fired at `now`: acts if `deadline` has passed.
    mutating func timerFired(now: UInt64) -> Step {
        guard deadline <= now else { return .none }
        switch phase {
        case .handshaking:
            return close(.handshakeTimeout)
        case .open(let open):
            if let expiry = open.credentialExpiry, expiry <= now {
                _ = expireCredentialIfDue(now: now)
            } else if let auth = open.authDeadline, auth <= now {
                let seconds = Double(limits.authTimeout) / 1e9
                replies.push(session.closeNotice(.authTimeout, "not authenticated within \(format(seconds)) s"))
                beginClosing(.authTimeout, now: now)
            } else {
                replies.push(session.closeNotice(.idleTimeout, "no complete line within the idle timeout"))
                beginClosing(.idleTimeout, now: now)
            }
            return .none
        case .closing(let reason, _, _), .lingering(let reason, _):
            // The client did not take its last replies (or close) in time.
            return close(reason)
        case .closed:
            return .none
        }
    }

    /// The access token that authenticated the connection expired without a fresh one:
    /// `ERR AUTH_EXPIRED` after the replies already queued, then close; nothing more is read.
    /// Returns whether it expired now.
    mutating func expireCredentialIfDue(now: UInt64) -> Bool {
        guard case .open(let open) = phase, let expiry = open.credentialExpiry, expiry <= now else { return false }
        replies.push(session.closeNotice(.authExpired, "the access token expired; reconnect with a fresh one"))
        beginClosing(.authExpired, now: now)
        return true
    }

    /// The server is shutting down: finish what was read, say SHUTTING_DOWN, close.
    mutating func drainRequested(now: UInt64) -> Step {
        switch phase {
        case .handshaking:
            return close(.shutdown)
        case .open:
            replies.push(session.closeNotice(.shuttingDown, "server is shutting down"))
            beginClosing(.shutdown, now: now)
            return .none
        default:
            return .none
        }
    }

    /// The connection is closed now, for `reason`, whatever its phase (I/O failure, server stop).
    /// Returns `.close(reason)`, or `.none` if it was already closed.
    mutating func close(_ reason: CloseReason) -> Step {
        guard !isClosed else { return .none }
        phase = .closed(reason)
        return .close(reason)
    }

    /// No more lines are read; queued replies go out within the grace period.
    private mutating func beginClosing(_ reason: CloseReason, now: UInt64, reading: Bool = true) {
        phase = .closing(reason, deadline: now &+ limits.closeGrace, reading: reading)
        lineStartedAt = nil
    }

    private func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}
