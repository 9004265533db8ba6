import GatehouseAuth
import Testing

/// The in-memory token store: issuing, verifying, revoking, the file format and user names.
@Suite struct TokenStoreTests {
    static let base64URLAlphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

    // MARK: issuing and verifying

    @Test func issuedTokenIs256BitBase64URLAndVerifies() throws {
        var store = TokenStore()
        let token = try store.issueToken(for: "alice")
        // 32 random bytes in unpadded base64url: ceil(256 / 6) = 43 characters.
        #expect(token.count == 43)
        #expect(token.allSatisfy { Self.base64URLAlphabet.contains($0) })
        #expect(store.verify(user: "alice", token: Array(token.utf8)))
        #expect(store.users == ["alice"])
        #expect(store.hashes["alice"]?.count == 32)
    }

    @Test func issuedTokensAreDifferentEachTime() throws {
        var store = TokenStore()
        var seen: Set<String> = []
        for _ in 0..<50 { seen.insert(try store.issueToken(for: "alice")) }
        #expect(seen.count == 50)
    }

    @Test func reissuingReplacesTheOldToken() throws {
        var store = TokenStore()
        let old = try store.issueToken(for: "alice")
        let new = try store.issueToken(for: "alice")
        #expect(!store.verify(user: "alice", token: Array(old.utf8)))
        #expect(store.verify(user: "alice", token: Array(new.utf8)))
        #expect(store.users == ["alice"])
    }

    @Test func wrongTokenFails() throws {
        var store = TokenStore()
        let token = try store.issueToken(for: "alice")
        var flipped = Array(token.utf8)
        let last = flipped.count - 1
        flipped[last] = flipped[last] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(!store.verify(user: "alice", token: flipped))
        #expect(!store.verify(user: "alice", token: Array(token.utf8.dropLast())))
        #expect(!store.verify(user: "alice", token: Array((token + "x").utf8)))
    }

    @Test func anotherUsersTokenFails() throws {
        var store = TokenStore()
        _ = try store.issueToken(for: "alice")
        let bobToken = try store.issueToken(for: "bob")
        #expect(!store.verify(user: "alice", token: Array(bobToken.utf8)))
        #expect(store.verify(user: "bob", token: Array(bobToken.utf8)))
    }

    @Test func unknownUserFails() throws {
        var store = TokenStore()
        let token = try store.issueToken(for: "alice")
        #expect(!store.verify(user: "mallory", token: Array(token.utf8)))
        #expect(!store.verify(user: "", token: Array(token.utf8)))
        // The dummy hash used for unknown users must not be reachable with its own preimage.
        #expect(!store.verify(user: "nobody", token: Array("gatehouse-unknown-user".utf8)))
    }

    @Test func emptyTokenFails() throws {
        var store = TokenStore()
        _ = try store.issueToken(for: "alice")
        #expect(!store.verify(user: "alice", token: [UInt8]()))
        #expect(!store.verify(user: "nobody", token: [UInt8]()))
    }

    @Test func revokeRemovesTheUser() throws {
        var store = TokenStore()
        let alice = try store.issueToken(for: "alice")
        let bob = try store.issueToken(for: "bob")
        let removed = store.revoke(user: "alice")
        #expect(removed)
        #expect(!store.verify(user: "alice", token: Array(alice.utf8)))
        #expect(store.verify(user: "bob", token: Array(bob.utf8)))
        #expect(store.users == ["bob"])
        let removedAgain = store.revoke(user: "alice")
        let removedUnknown = store.revoke(user: "carol")
        #expect(!removedAgain)
        #expect(!removedUnknown)
    }

    @Test(arguments: [
        "", "has space", "colon:", "slash/", "tab\t", "élodie", "new\nline", String(repeating: "a", count: 65),
    ])
    func issueTokenRejectsInvalidUserName(_ name: String) {
        var store = TokenStore()
        #expect(throws: AuthError.self) { try store.issueToken(for: name) }
        #expect(store.users.isEmpty)
    }

    // MARK: the file format

    @Test func serializeThenParseRoundTrips() throws {
        var store = TokenStore()
        var tokens: [String: String] = [:]
        for user in ["zed", "alice", "bob.smith", "c@d", "under_score", "dash-ed"] {
            tokens[user] = try store.issueToken(for: user)
        }
        let text = store.serialized()
        let parsed = try TokenStore(parsing: text)
        #expect(parsed.hashes == store.hashes)
        #expect(parsed.users == store.users)
        for (user, token) in tokens { #expect(parsed.verify(user: user, token: Array(token.utf8))) }
        #expect(parsed.serialized() == text)
    }

    @Test func serializedFormIsSortedWithOneLinePerUser() throws {
        var store = TokenStore()
        for user in ["carol", "alice", "bob"] { _ = try store.issueToken(for: user) }
        let lines = store.serialized().split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines.map { String($0.split(separator: " ")[0]) } == ["alice", "bob", "carol"])
        for line in lines {
            let hash = line.split(separator: " ")[1]
            #expect(hash.hasPrefix("sha256:"))
            #expect(hash.dropFirst(7).count == 64)
            #expect(hash.dropFirst(7).allSatisfy { "0123456789abcdef".contains($0) })
        }
        #expect(store.serialized().hasSuffix("\n"))
    }

    @Test func parserSkipsCommentsBlankLinesAndSurroundingBlanks() throws {
        let hash = String(repeating: "ab", count: 32)
        let text = """
            # a comment

              alice sha256:\(hash)\t
            \t# indented comment
            bob    sha256:\(hash.uppercased())

            """
        let store = try TokenStore(parsing: text)
        #expect(store.users == ["alice", "bob"])
        #expect(store.hashes["alice"] == Array(repeating: 0xAB, count: 32))
        #expect(store.hashes["bob"] == Array(repeating: 0xAB, count: 32))
    }

    @Test func parserAcceptsCRLFLineEndings() throws {
        let hash = String(repeating: "0f", count: 32)
        let text = "# comment\r\nalice sha256:\(hash)\r\nbob sha256:\(hash)\r\n"
        let store = try TokenStore(parsing: text)
        #expect(store.users == ["alice", "bob"])
        #expect(store.hashes["bob"] == Array(repeating: 0x0F, count: 32))
    }

    @Test func parserOfEmptyTextGivesEmptyStore() throws {
        #expect(try TokenStore(parsing: "").users.isEmpty)
        #expect(try TokenStore(parsing: "\n\n# only comments\n").users.isEmpty)
    }

    static let malformedLines: [String] = [
        "alice",  // no hash
        "alice \(String(repeating: "ab", count: 32))",  // no sha256: prefix
        "alice sha1:\(String(repeating: "ab", count: 20))",  // wrong algorithm
        "alice sha256:\(String(repeating: "ab", count: 31))",  // 31 bytes
        "alice sha256:\(String(repeating: "ab", count: 33))",  // 33 bytes
        "alice sha256:\(String(repeating: "ab", count: 31))a",  // odd number of digits
        "alice sha256:\(String(repeating: "zz", count: 32))",  // not hex
        "alice sha256:",  // empty hash
        "alice sha256:\(String(repeating: "ab", count: 32)) extra",  // three fields
        "al/ice sha256:\(String(repeating: "ab", count: 32))",  // bad user name
        "\(String(repeating: "u", count: 65)) sha256:\(String(repeating: "ab", count: 32))",  // name too long
    ]

    @Test(arguments: malformedLines)
    func parserRejectsMalformedLineNamingItsNumber(_ bad: String) {
        let good = "bob sha256:\(String(repeating: "cd", count: 32))"
        let text = "# tokens\n\(good)\n\(bad)\n\(good)\n"
        let error = #expect(throws: AuthError.self) { try TokenStore(parsing: text, source: "/etc/gh/tokens") }
        #expect(error?.message.hasPrefix("/etc/gh/tokens:3:") == true, "\(error?.message ?? "")")
    }

    @Test func parserErrorUsesDefaultSourceName() {
        let error = #expect(throws: AuthError.self) { try TokenStore(parsing: "\n\nbroken\n") }
        #expect(error?.message.hasPrefix("tokens file:3:") == true, "\(error?.message ?? "")")
        #expect(error?.description == error?.message)
    }

    @Test func laterLineForTheSameUserWins() throws {
        let first = String(repeating: "11", count: 32)
        let second = String(repeating: "22", count: 32)
        let store = try TokenStore(parsing: "alice sha256:\(first)\nalice sha256:\(second)\n")
        #expect(store.hashes["alice"] == Array(repeating: 0x22, count: 32))
    }

    // MARK: user names

    @Test(arguments: [
        "a", "alice", "Alice.Smith", "bob_1", "carol@example.org", "dash-ed", "0123456789",
        String(repeating: "x", count: 64),
    ])
    func validUserNames(_ name: String) {
        #expect(UserName.isValid(name))
    }

    @Test(arguments: [
        "", " ", "al ice", "alice ", "a:b", "a/b", "a\\b", "a\"b", "a\tb", "a\nb", "a\u{0}b", "é", "ünïcode",
        "日本", "a+b", "a#b", "a,b", String(repeating: "x", count: 65),
    ])
    func invalidUserNames(_ name: String) {
        #expect(!UserName.isValid(name))
    }

    /// SECURITY.md: an unknown user and a wrong token cost the same work, so a timing probe
    /// cannot tell which user names exist. Counted, not timed: one hash of the whole token and
    /// one 32-byte constant-time comparison on every path, the right token's included.
    @Test func unknownUserAndWrongTokenDoTheSameWork() throws {
        var store = TokenStore()
        let token = try store.issueToken(for: "alice")
        let wrong = String(token.reversed())
        var unknown = VerificationWork()
        var mismatch = VerificationWork()
        var right = VerificationWork()
        #expect(!store.verify(user: "mallory", token: Array(wrong.utf8), work: &unknown))
        #expect(!store.verify(user: "alice", token: Array(wrong.utf8), work: &mismatch))
        #expect(store.verify(user: "alice", token: Array(token.utf8), work: &right))
        #expect(unknown == mismatch)
        #expect(mismatch == right)
        #expect(unknown.hashes == 1 && unknown.hashedBytes == token.utf8.count)
        #expect(unknown.comparisons == 1 && unknown.comparedBytes == 32)
    }
}
