/// Every `ERR` code of protocol version 1.
public enum ErrorCode: String, Sendable, CaseIterable {
    case noAuth = "NOAUTH"
    case authFailed = "AUTH_FAILED"
    case syntax = "SYNTAX"
    case unknownCommand = "UNKNOWN_COMMAND"
    case empty = "EMPTY"
    case tooLong = "TOO_LONG"
    case badUTF8 = "BAD_UTF8"
    case badChar = "BAD_CHAR"
    case rateLimited = "RATE_LIMITED"
    case unavailable = "UNAVAILABLE"
    case tooManyErrors = "TOO_MANY_ERRORS"
    case busy = "BUSY"
    case idleTimeout = "IDLE_TIMEOUT"
    case shuttingDown = "SHUTTING_DOWN"
    case authTimeout = "AUTH_TIMEOUT"
    /// The access token (JWT) that authenticated the connection expired; a closing notice.
    case authExpired = "AUTH_EXPIRED"

    /// Whether answering with this code spends a unit of the connection's error budget.
    /// UNAVAILABLE and a MSG's RATE_LIMITED are the server's doing, not the client's (an AUTH
    /// answered RATE_LIMITED does spend one: `Session.authenticationResult` counts it).
    public var spendsBudget: Bool {
        switch self {
        case .rateLimited, .unavailable, .busy, .idleTimeout, .authTimeout, .shuttingDown, .tooManyErrors, .authExpired:
            false
        default: true
        }
    }
}

/// One line the server sends. `encode(into:)` appends it, LF included.
public enum Reply: Sendable, Equatable {
    case hello(authenticatedUser: String?)
    case okAuth(user: String)
    case ack(Int)
    case pong
    case bye
    case error(ErrorCode, String)

    public static let protocolName = "gatehouse/1"
    public static let ackPrefix: [UInt8] = Array("ACK ".utf8)

    /// Appends the wire form of this reply to `out`.
    @inlinable
    public func encode(into out: inout [UInt8]) {
        switch self {
        case .ack(let n):
            // The hot path: "ACK <n>\n" without building a String.
            out.append(contentsOf: Reply.ackPrefix)
            Reply.appendDecimal(n, to: &out)
            out.append(0x0A)
        case .pong:
            out.append(contentsOf: "PONG\n".utf8)
        case .bye:
            out.append(contentsOf: "BYE\n".utf8)
        case .hello(let user):
            out.append(contentsOf: "HELLO \(Reply.protocolName)".utf8)
            if let user { out.append(contentsOf: " AUTHENTICATED \(user)".utf8) }
            out.append(0x0A)
        case .okAuth(let user):
            out.append(contentsOf: "OK AUTH \(user)\n".utf8)
        case .error(let code, let text):
            out.append(contentsOf: "ERR \(code.rawValue) \(text)\n".utf8)
        }
    }

    /// The reply as text without its LF, for tests and logs.
    public var line: String {
        var out: [UInt8] = []
        encode(into: &out)
        return String(decoding: out.dropLast(), as: UTF8.self)
    }

    /// Appends the decimal digits of a non-negative `n`.
    @inlinable
    public static func appendDecimal(_ n: Int, to out: inout [UInt8]) {
        if n < 10 {
            out.append(0x30 &+ UInt8(truncatingIfNeeded: max(0, n)))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, no allocation
        var v = UInt64(n)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            while v > 0 {
                buf[23 - count] = 0x30 &+ UInt8(truncatingIfNeeded: v % 10)
                v /= 10
                count += 1
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[(24 - count)...]))
        }
    }
}
