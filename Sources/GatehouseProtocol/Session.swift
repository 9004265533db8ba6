/// The protocol state of one connection, as a pure state machine.
///
/// Events are the lines the framer produces and the results of work done outside (token checks);
/// each returns the action the connection must take. No I/O, no clock: the server drives it.
public struct Session {
    public enum State: Equatable, Sendable {
        case unauthenticated
        case authenticated(user: String)
    }

    /// What the connection must do for one line.
    public enum Action: Equatable {
        /// Send this reply in its place in the reply order.
        case reply(Reply)
        /// Send this reply in its place, then close (BYE, TOO_MANY_ERRORS).
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
    /// Set by the server while the credential that authenticated the connection expires (a JWT):
    /// then an `AUTH` for the same user is re-authentication, and one for another user is SYNTAX.
    public var allowsReauthentication = false

    /// `user` is set when a client certificate already authenticated the connection.
    public init(errorBudget: Int, certificateUser: String? = nil) {
        precondition(errorBudget >= 1)
        self.errorsLeft = errorBudget
        self.state = certificateUser.map { .authenticated(user: $0) } ?? .unauthenticated
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

    /// A whole line arrived (CR and LF removed).
    public mutating func receivedLine(_ line: UnsafeRawBufferPointer) -> Action {
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
                messagesAccepted += 1
                return .journal(text: text, n: messagesAccepted)
            }
        }
    }

    /// The current line exceeded the length limit.
    public mutating func lineTooLong(limit: Int) -> Action {
        fail(.tooLong, "line exceeds \(limit) bytes")
    }

    /// The outcome of the token check an `.authenticate` action asked for.
    public mutating func authenticationResult(user: String, succeeded: Bool) -> Action {
        guard succeeded else { return fail(.authFailed, "unknown user or wrong token") }
        state = .authenticated(user: user)
        return .reply(.okAuth(user: user))
    }

    /// An AUTH that the server refused to check because the peer is over its failure rate.
    public mutating func authenticationThrottled() -> Action {
        .reply(.error(.rateLimited, "too many failed authentications; try later"))
    }

    /// The message the last `.journal` action named is refused because the connection sends
    /// faster than its configured rate: it is not journalled, gives its number back (the next
    /// ACK does not skip it) and is answered RATE_LIMITED, which spends no error budget.
    public mutating func messageRateLimited() -> Action {
        precondition(messagesAccepted > 0, "messageRateLimited without a preceding .journal")
        messagesAccepted -= 1
        return .reply(.error(.rateLimited, "too many messages per second; slow down and resend"))
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

    /// The server closes the session on its own (idle timeout, shutdown, busy).
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
