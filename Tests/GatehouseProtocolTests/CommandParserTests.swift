import GatehouseProtocol
import Testing

private func parse(_ line: String) -> Result<Command, CommandError> {
    bytes(line).withUnsafeBytes { CommandParser.parse($0) }
}

private func isSyntax(_ r: Result<Command, CommandError>) -> Bool {
    if case .failure(.syntax) = r { return true }
    return false
}

/// The MSG text a line parses to, as a string, or nil if it is not a MSG.
private func msgText(_ line: String) -> String? {
    guard case .success(.msg(let range)) = parse(line) else { return nil }
    return String(decoding: bytes(line)[range], as: UTF8.self)
}

@Suite("CommandParser")
struct CommandParserTests {

    // MARK: - Verbs

    @Test(arguments: ["PING", "ping", "Ping", "pInG", "PINg"])
    func parsesPingInAnyCase(_ line: String) {
        #expect(parse(line) == .success(.ping))
    }

    @Test(arguments: ["QUIT", "quit", "Quit", "qUiT"])
    func parsesQuitInAnyCase(_ line: String) {
        #expect(parse(line) == .success(.quit))
    }

    @Test(arguments: ["MSG x", "msg x", "Msg x", "mSg x"])
    func parsesMsgInAnyCase(_ line: String) {
        #expect(parse(line) == .success(.msg(text: 4..<5)))
    }

    @Test(arguments: ["AUTH alice tok", "auth alice tok", "Auth alice tok", "aUtH alice tok"])
    func parsesAuthInAnyCase(_ line: String) {
        #expect(parse(line) == .success(.auth(user: 5..<10, token: 11..<14)))
    }

    @Test(arguments: [
        "", " ", "PIN", "PINGS", "PINGPONG", "QUITS", "MS", "MSGS hi", "AUTHX a b", "HELLO", "HELO",
        " PING", "  MSG hi", "PING\t", "MSG\thi", "AUTH\ta b", "P NG", "P1NG", "ping\u{0}",
        "PİNG", "ＰＩＮＧ", "MSG_ hi", "0SG hi",
    ])
    func rejectsUnknownVerbs(_ line: String) {
        #expect(parse(line) == .failure(.unknownVerb))
    }

    @Test func caseFoldingDoesNotConfuseNonLetters() {
        // OR-ing 0x20 folds only letters onto the verb letters; neighbours of those bytes must not pass.
        for (i, c) in "ping".utf8.enumerated() {
            for b in 0...255 where UInt8(b) != c && UInt8(b) != c - 0x20 {
                var line = bytes("ping")
                line[i] = UInt8(b)
                let r = line.withUnsafeBytes { CommandParser.parse($0) }
                #expect(r == .failure(.unknownVerb), "byte \(b) at \(i)")
            }
        }
    }

    @Test func emptyLineIsAnUnknownVerb() {
        #expect(parse("") == .failure(.unknownVerb))
    }

    // MARK: - MSG text

    @Test func msgTextIsEverythingAfterTheFirstSpace() {
        #expect(parse("MSG hello world") == .success(.msg(text: 4..<15)))
        #expect(msgText("MSG hello world") == "hello world")
    }

    @Test func msgTextKeepsLeadingSpaces() {
        #expect(msgText("MSG  two") == " two")
        #expect(msgText("MSG    ") == "   ")
    }

    @Test func msgTextKeepsTrailingSpacesAndTabs() {
        #expect(msgText("MSG a b  c \t") == "a b  c \t")
    }

    @Test func msgTextKeepsVerbLookalikes() {
        #expect(msgText("MSG PING") == "PING")
        #expect(msgText("msg AUTH a b") == "AUTH a b")
    }

    @Test func msgTextIsMultibyteExact() {
        let line = "MSG é漢😀"
        #expect(parse(line) == .success(.msg(text: 4..<(4 + 2 + 3 + 4))))
        #expect(msgText(line) == "é漢😀")
    }

    @Test func msgWithoutSpaceHasEmptyText() {
        #expect(parse("MSG") == .success(.msg(text: 3..<3)))
    }

    @Test func msgWithOnlyASpaceHasEmptyText() {
        #expect(parse("MSG ") == .success(.msg(text: 4..<4)))
    }

    // MARK: - PING and QUIT take no arguments

    @Test(arguments: ["PING ", "PING x", "ping  ", "PING PONG", "QUIT ", "QUIT now", "quit  x"])
    func rejectsArgumentsToPingAndQuit(_ line: String) {
        #expect(isSyntax(parse(line)))
    }

    // MARK: - AUTH

    @Test func authGivesUserAndTokenRanges() throws {
        let line = "AUTH bob.smith@example-1_x Zm9v+/=="
        let command = try parse(line).get()
        guard case .auth(let user, let token) = command else {
            Issue.record("expected AUTH, got \(command)")
            return
        }
        let b = bytes(line)
        #expect(String(decoding: b[user], as: UTF8.self) == "bob.smith@example-1_x")
        #expect(String(decoding: b[token], as: UTF8.self) == "Zm9v+/==")
    }

    @Test(arguments: [
        "AUTH",  // no arguments
        "AUTH ",  // empty arguments
        "AUTH alice",  // no token
        "AUTH alice ",  // empty token
        "AUTH  alice tok",  // double space before the user
        "AUTH alice  tok",  // double space before the token
        "AUTH alice tok ",  // trailing space
        "AUTH alice tok extra",  // one argument too many
        "AUTH  ",
        "AUTH   ",
    ])
    func rejectsWrongArgumentShapesForAuth(_ line: String) {
        #expect(parse(line) == .failure(.syntax("usage: AUTH <user> <token>")))
    }

    @Test(arguments: ["al!ce", "al ice", "al\tice", "alicé", "a/b", "a:b", "a+b", "a,b"])
    func rejectsUserNamesWithBytesOutsideTheSet(_ user: String) {
        #expect(isSyntax(parse("AUTH \(user) tok")))
    }

    @Test func acceptsUserNameOf64Bytes() {
        let user = String(repeating: "u", count: 64)
        #expect(parse("AUTH \(user) tok") == .success(.auth(user: 5..<69, token: 70..<73)))
    }

    @Test func rejectsUserNameOf65Bytes() {
        let user = String(repeating: "u", count: 65)
        #expect(isSyntax(parse("AUTH \(user) tok")))
    }

    @Test func acceptsTokenOf16384Bytes() {
        // A signed JWT is a long token: RS256 alone is 342 characters of signature.
        let token = String(repeating: "t", count: 16384)
        #expect(parse("AUTH a \(token)") == .success(.auth(user: 5..<6, token: 7..<16391)))
    }

    @Test func rejectsTokenOf16385Bytes() {
        let token = String(repeating: "t", count: 16385)
        #expect(parse("AUTH a \(token)") == .failure(.syntax("token too long")))
    }

    @Test func tokenMayHoldAnyNonSpaceBytes() {
        #expect(parse("AUTH a t\tok!é") == .success(.auth(user: 5..<6, token: 7..<14)))
    }

    // MARK: - User names

    @Test func userByteSetIsExactlyAlphanumericsAndDotUnderscoreAtHyphen() {
        let allowed = Set(bytes("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-"))
        for b in 0...255 {
            #expect(CommandParser.isUserByte(UInt8(b)) == allowed.contains(UInt8(b)), "byte \(b)")
        }
    }

    @Test(arguments: [
        ("alice", true), ("a", true), ("Bob_2@x.y-z", true), (String(repeating: "x", count: 64), true),
        ("", false), (String(repeating: "x", count: 65), false), ("al ice", false), ("élise", false),
        ("a\u{0}", false),
    ])
    func validatesUserNames(_ name: String, _ valid: Bool) {
        #expect(CommandParser.isValidUserName(name) == valid)
    }

    @Test func limitsMatchTheTokensFile() {
        #expect(CommandParser.maxUserLength == 64)
        #expect(CommandParser.maxTokenLength == 16384)
    }
}
