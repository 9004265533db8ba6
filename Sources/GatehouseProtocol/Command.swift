/// A parsed request line. Byte ranges index into the line it was parsed from.
public enum Command: Equatable, Sendable {
    case auth(user: Range<Int>, token: Range<Int>)
    /// `text` is everything after the first space; it may be empty (then the reply is EMPTY).
    case msg(text: Range<Int>)
    case ping
    case quit
    /// `STREAM <name>`: the connection's messages belong to stream `name` (PROTOCOL.md, Streams).
    case stream(name: Range<Int>)
}

/// A line whose verb is known but whose arguments are not right, or whose verb is unknown.
public enum CommandError: Error, Equatable, Sendable {
    case unknownVerb
    case syntax(String)
}

/// Parses verbs case-insensitively, with a single space between a verb and its arguments.
public enum CommandParser {
    public static let maxUserLength = 64
    /// Room for a signed JWT (the JWT verifier's own limit, 8192, is lower, so that an
    /// oversized JWT is refused as AUTH_FAILED with its reason logged, not as SYNTAX).
    public static let maxTokenLength = 16384
    public static let maxStreamNameLength = 64

    public static func parse(_ line: UnsafeRawBufferPointer) -> Result<Command, CommandError> {
        let space = line.firstIndex(of: 0x20)
        let verbEnd = space ?? line.count
        let hasArguments = space != nil

        switch verb(line, verbEnd) {
        case .msg:
            return .success(.msg(text: hasArguments ? (verbEnd + 1)..<line.count : line.count..<line.count))
        case .ping:
            return hasArguments ? .failure(.syntax("PING takes no arguments")) : .success(.ping)
        case .quit:
            return hasArguments ? .failure(.syntax("QUIT takes no arguments")) : .success(.quit)
        case .auth:
            guard hasArguments else { return .failure(.syntax("usage: AUTH <user> <token>")) }
            let userStart = verbEnd + 1
            guard let sep = line[userStart...].firstIndex(of: 0x20) else {
                return .failure(.syntax("usage: AUTH <user> <token>"))
            }
            let user = userStart..<sep
            let token = (sep + 1)..<line.count
            guard !user.isEmpty, !token.isEmpty, line[token].firstIndex(of: 0x20) == nil else {
                return .failure(.syntax("usage: AUTH <user> <token>"))
            }
            guard user.count <= maxUserLength, line[user].allSatisfy(isUserByte) else {
                return .failure(.syntax("a user name is \(userNameRule)"))
            }
            guard token.count <= maxTokenLength else { return .failure(.syntax("token too long")) }
            return .success(.auth(user: user, token: token))
        case .stream:
            let name = hasArguments ? (verbEnd + 1)..<line.count : line.count..<line.count
            guard !name.isEmpty, name.count <= maxStreamNameLength, line[name].allSatisfy(isStreamByte)
            else { return .failure(.syntax("usage: STREAM <name>, 1 to 64 of A-Z a-z 0-9 . _ - :")) }
            return .success(.stream(name: name))
        case nil:
            return .failure(.unknownVerb)
        }
    }

    private enum Verb { case msg, ping, quit, auth, stream }

    @inline(__always)
    private static func verb(_ line: UnsafeRawBufferPointer, _ end: Int) -> Verb? {
        // ASCII case folding: OR 0x20 maps A-Z onto a-z (and leaves a-z alone).
        switch end {
        case 3:
            let a = line[0] | 0x20
            let b = line[1] | 0x20
            let c = line[2] | 0x20
            return (a == 0x6D && b == 0x73 && c == 0x67) ? .msg : nil  // "msg"
        case 4:
            let a = line[0] | 0x20
            let b = line[1] | 0x20
            let c = line[2] | 0x20
            let d = line[3] | 0x20
            if a == 0x70 && b == 0x69 && c == 0x6E && d == 0x67 { return .ping }  // "ping"
            if a == 0x71 && b == 0x75 && c == 0x69 && d == 0x74 { return .quit }  // "quit"
            if a == 0x61 && b == 0x75 && c == 0x74 && d == 0x68 { return .auth }  // "auth"
            return nil
        case 6:
            // "stream"
            let isStream =
                (line[0] | 0x20) == 0x73 && (line[1] | 0x20) == 0x74 && (line[2] | 0x20) == 0x72
                && (line[3] | 0x20) == 0x65 && (line[4] | 0x20) == 0x61 && (line[5] | 0x20) == 0x6D
            return isStream ? .stream : nil
        default:
            return nil
        }
    }

    /// Bytes allowed in a user name: the same set the token tool accepts.
    @inline(__always)
    public static func isUserByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2E, 0x5F, 0x40, 0x2D: true
        default: false
        }
    }

    /// Bytes allowed in a stream name: A-Z a-z 0-9 . _ - :
    @inline(__always)
    public static func isStreamByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2E, 0x5F, 0x2D, 0x3A: true
        default: false
        }
    }

    /// Whether `name` is a valid stream name.
    public static func isValidStreamName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return !bytes.isEmpty && bytes.count <= maxStreamNameLength && bytes.allSatisfy(isStreamByte)
    }

    /// The user-name rule in words, for every message that refuses a name (`AUTH`, the tokens
    /// file, the client map, the token tool): one rule, one wording.
    public static let userNameRule = "1 to \(maxUserLength) of A-Z a-z 0-9 . _ @ -"

    /// Whether `name` is a valid user name for the protocol and the tokens file.
    public static func isValidUserName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return !bytes.isEmpty && bytes.count <= maxUserLength && bytes.allSatisfy(isUserByte)
    }
}
