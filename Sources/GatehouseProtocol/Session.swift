/// The protocol state of one connection, as a pure state machine.
///
/// Events are the lines the framer produces and the results of work done outside (token checks);
/// each returns the action the connection must take. No I/O and no clock of its own: the server
/// drives it and passes the time where a rule needs one (the message rate).
public struct Session {
    public enum State: Equatable, Sendable {
        case unauthenticated
        case authenticated(user: String)
    }

    /// What the connection must do for one line.
    public enum Action: Equatable {
        /// Send this reply in its place in the reply order.
        case reply(Reply)
        /// Send this reply in its place, then close (BYE, TOO_MANY_ERRORS, a throttled AUTH).
        case replyAndClose(Reply)
        /// Journal the line's bytes in `text`; when stored, reply `ACK n` in its place.
        case journal(text: Range<Int>, n: Int)
        /// Check this token for this user, then report with `authenticationResult`.
        case authenticate(user: String, token: Range<Int>)
    }

    public private(set) var state: State
    /// QUIT, TOO_MANY_ERRORS or a closing notice was issued: nothing more is read.
    public private(set) var isClosed = false
    /// Units of the error budget left.
    public private(set) var errorsLeft: Int
    /// Messages accepted for the journal on this connection (the next ACK number minus one).
    public private(set) var messagesAccepted = 0
    /// `--max-msg-rate`, when there is one.
    public private(set) var messageRate: MessageRateLimit?
    /// Set by the server while the credential that authenticated the connection expires (a JWT):
    /// then an `AUTH` for the same user is re-authentication, and one for another user is SYNTAX.
    public var allowsReauthentication = false

    /// `certificateUser` is set when a client certificate already authenticated the connection;
    /// `maxMessageRate` is MSG lines per second (bursts of as many), 0 for no limit.
    public init(errorBudget: Int, certificateUser: String? = nil, maxMessageRate: Int = 0) {
        precondition(errorBudget >= 1 && maxMessageRate >= 0)
        self.errorsLeft = errorBudget
        self.state = certificateUser.map { .authenticated(user: $0) } ?? .unauthenticated
        self.messageRate = maxMessageRate > 0 ? MessageRateLimit(perSecond: maxMessageRate) : nil
    }

    /// The first line the server sends.
    public var greeting: Reply {
        if case .authenticated(let user) = state { return .hello(authenticatedUser: user) }
        return .hello(authenticatedUser: nil)
    }

    public var user: String? {
        if case .authenticated(let user) = state { return user }
        return nil
    }

    public var isAuthenticated: Bool {
        if case .authenticated = state { return true }
        return false
    }

    /// A whole line arrived (CR and LF removed) at `now` (monotonic nanoseconds; only the message
    /// rate reads it).
    public mutating func receivedLine(_ line: UnsafeRawBufferPointer, now: UInt64 = 0) -> Action {
        if let problem = LineValidator.validate(line) {
            switch problem {
            case .badUTF8: return fail(.badUTF8, "line is not valid UTF-8")
            case .badChar: return fail(.badChar, "line contains a control character")
            }
        }
        switch CommandParser.parse(line) {
        case .failure(.unknownVerb):
            return fail(.unknownCommand, "expected AUTH, MSG, PING or QUIT")
        case .failure(.syntax(let why)):
            // A second AUTH is refused for what it is, whatever its arguments.
            if isAuthVerb(line), user != nil { return fail(.syntax, "already authenticated") }
            return fail(.syntax, why)
        case .success(let command):
            switch command {
            case .ping:
                return .reply(.pong)
            case .quit:
                isClosed = true
                return .replyAndClose(.bye)
            case .auth(let userRange, let token):
                let name = String(decoding: UnsafeRawBufferPointer(rebasing: line[userRange]), as: UTF8.self)
                if let current = user {
                    guard allowsReauthentication else { return fail(.syntax, "already authenticated") }
                    guard name == current else { return fail(.syntax, "re-authenticate as \(current) only") }
                }
                return .authenticate(user: name, token: token)
            case .msg(let text):
                guard user != nil else { return fail(.noAuth, "authenticate with AUTH first") }
                guard !text.isEmpty else { return fail(.empty, "MSG needs text") }
                // Past the rate: not journalled, no number taken (the next ACK does not skip
                // one), no error budget spent; the client may resend it.
                if messageRate != nil, !messageRate!.take(now: now) {
                    return .reply(.error(.rateLimited, "too many messages per second; slow down and resend"))
                }
                messagesAccepted += 1
                return .journal(text: text, n: messagesAccepted)
            }
        }
    }

    /// The current line exceeded the length limit.
    public mutating func lineTooLong(limit: Int) -> Action {
        fail(.tooLong, "line exceeds \(limit) bytes")
    }

    /// The outcome of the token check an `.authenticate` action asked for. The token is always
    /// checked first: a correct one authenticates even from a throttled address (a client behind
    /// the same NAT as a guesser is not locked out). A wrong one from an address that is
    /// throttled (`addressThrottled`) is answered RATE_LIMITED, spends a unit of the error
    /// budget like any failed AUTH, and closes the connection: each further guess costs a new
    /// TLS handshake.
    public mutating func authenticationResult(user: String, succeeded: Bool, addressThrottled: Bool = false) -> Action {
        if succeeded {
            state = .authenticated(user: user)
            return .reply(.okAuth(user: user))
        }
        guard addressThrottled else { return fail(.authFailed, "unknown user or wrong token") }
        errorsLeft -= 1
        isClosed = true
        if errorsLeft <= 0 { return .replyAndClose(.error(.tooManyErrors, "error budget spent; closing")) }
        return .replyAndClose(.error(.rateLimited, "too many failed authentications from this address; try later"))
    }

    /// The journal could not store message `n`; the client may resend it.
    public func journalFailed() -> Reply {
        .error(.unavailable, "the journal could not store the message; it was not acknowledged")
    }

    /// Answers with `code`, spending the error budget where the code does.
    public mutating func fail(_ code: ErrorCode, _ text: String) -> Action {
        guard code.spendsBudget else { return .reply(.error(code, text)) }
        errorsLeft -= 1
        if errorsLeft <= 0 {
            isClosed = true
            return .replyAndClose(.error(.tooManyErrors, "error budget spent; closing"))
        }
        return .reply(.error(code, text))
    }

    /// The server closes the session on its own (idle or authentication timeout, shutdown, busy).
    public mutating func closeNotice(_ code: ErrorCode, _ text: String) -> Reply {
        isClosed = true
        return .error(code, text)
    }

    private func isAuthVerb(_ line: UnsafeRawBufferPointer) -> Bool {
        guard line.count >= 4 else { return false }
        let isAuth =
            (line[0] | 0x20) == 0x61 && (line[1] | 0x20) == 0x75 && (line[2] | 0x20) == 0x74
            && (line[3] | 0x20) == 0x68
        return isAuth && (line.count == 4 || line[4] == 0x20)
    }
}

/// A token bucket for MSG lines on the caller's monotonic clock, in integer nanoseconds: holds
/// up to `perSecond` messages' worth of credit and regains one message's worth every
/// 1/`perSecond` s. Starts full, at the time of its first use.
public struct MessageRateLimit: Sendable, Equatable {
    public let perSecond: Int
    /// Credit one message costs: nanoseconds of refill.
    private let cost: UInt64
    private let capacity: UInt64
    private var credit: UInt64
    private var updatedAt: UInt64?

    public init(perSecond: Int) {
        precondition(perSecond >= 1 && perSecond <= 1_000_000_000)
        self.perSecond = perSecond
        cost = 1_000_000_000 / UInt64(perSecond)
        capacity = cost * UInt64(perSecond)
        credit = capacity
    }

    /// Takes one message's credit at `now` if there is one. A clock that goes back adds nothing.
    public mutating func take(now: UInt64) -> Bool {
        if let last = updatedAt {
            if now > last {
                credit = min(capacity, credit &+ (now - last))
                updatedAt = now
            }
        } else {
            updatedAt = now
        }
        guard credit >= cost else { return false }
        credit -= cost
        return true
    }
}
