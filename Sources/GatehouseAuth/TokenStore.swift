import GatehouseProtocol
import GatehouseTLS

/// User names and the SHA-256 hashes of their tokens, loaded once and then read-only.
///
/// Tokens are 256-bit random secrets, so a single fast hash is enough to make a stolen tokens
/// file useless for logging in (no dictionary to attack); no token is ever stored or logged.
/// `verify` does the same work for an unknown user as for a known one.
public struct TokenStore: Sendable {
    /// One entry per user: the 32-byte digest of the token.
    public private(set) var hashes: [String: [UInt8]]
    // Compared against when the user is unknown, so both paths hash and compare once.
    private static let dummyHash = Crypto.sha256(Array("gatehouse-unknown-user".utf8))

    public init(hashes: [String: [UInt8]] = [:]) {
        self.hashes = hashes
    }

    /// Whether `token` is the current token of `user`, in time independent of which part is wrong.
    public func verify(user: String, token: some Collection<UInt8>) -> Bool {
        var work = VerificationWork()
        return verify(user: user, token: token, work: &work)
    }

    /// `verify`, also telling what it did: an unknown user and a wrong token must cost the same
    /// (one hash of the token, one constant-time comparison of 32 bytes), so that timing does
    /// not tell an attacker which user names exist. Tests hold the two paths to that.
    public func verify(user: String, token: some Collection<UInt8>, work: inout VerificationWork) -> Bool {
        let stored = hashes[user]
        let digest = Crypto.sha256(token)
        work.hashes += 1
        work.hashedBytes += token.count
        let expected = stored ?? TokenStore.dummyHash
        let match = Crypto.constantTimeEquals(digest, expected)
        work.comparisons += 1
        work.comparedBytes += expected.count
        return match && stored != nil
    }

    public var users: [String] { hashes.keys.sorted() }

    // MARK: the file

    /// Parses the tokens file format: `user sha256:<64 hex>` per line; `#` comments and blank lines.
    public init(parsing text: String, source: String = "tokens file") throws(AuthError) {
        var hashes: [String: [UInt8]] = [:]
        // Swift reads CR LF as one Character, so splitting on "\n" alone would miss CRLF line ends
        // and take a whole CRLF file for one line (one comment, if it starts with one).
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (index, rawLine) in lines.enumerated() {
            let line = rawLine.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 2, fields[1].hasPrefix("sha256:"),
                let digest = Hex.decode(fields[1].dropFirst("sha256:".count)), digest.count == 32
            else {
                throw AuthError("\(source):\(index + 1): expected 'USER sha256:<64 hex digits>'")
            }
            let user = String(fields[0])
            guard UserName.isValid(user) else {
                throw AuthError("\(source):\(index + 1): invalid user name")
            }
            hashes[user] = digest
        }
        self.hashes = hashes
    }

    /// The file form of this store, sorted by user.
    public func serialized() -> String {
        var out = "# Gatehouse tokens: USER sha256:<hash of token>. Managed by 'gatehouse-server token'.\n"
        for user in users {
            out += "\(user) sha256:\(Hex.encode(hashes[user]!))\n"
        }
        return out
    }

    /// Adds or replaces `user`'s token with a new random one and returns the token, to be shown once.
    public mutating func issueToken(for user: String) throws(AuthError) -> String {
        guard UserName.isValid(user) else {
            throw AuthError(.invalidArgument, "invalid user name '\(user)': use \(CommandParser.userNameRule)")
        }
        let token = Base64URL.encode(Crypto.randomBytes(32))
        hashes[user] = Crypto.sha256(Array(token.utf8))
        return token
    }

    /// Removes `user`; returns whether there was such a user.
    @discardableResult
    public mutating func revoke(user: String) -> Bool {
        hashes.removeValue(forKey: user) != nil
    }
}

/// The operations one token check performed (see `TokenStore.verify(user:token:work:)`).
public struct VerificationWork: Equatable, Sendable {
    public var hashes = 0
    public var hashedBytes = 0
    public var comparisons = 0
    public var comparedBytes = 0
    public init() {}
}

/// The rules for user names: the protocol's own (`CommandParser.isValidUserName`), so that the
/// tokens file, the client map and `AUTH` can never disagree on what a user name is.
public enum UserName {
    public static func isValid(_ name: String) -> Bool { CommandParser.isValidUserName(name) }
}

enum Hex {
    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: Substring) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}

enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)], table[Int(v >> 6 & 63)], table[Int(v & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let v = UInt32(bytes[i]) << 16
            out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)]]
        } else if rest == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)], table[Int(v >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return s
    }
}
