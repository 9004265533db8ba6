import Foundation
import GatehouseAuth
import TestSupport
import Testing

/// The tokens file on disk: permissions, atomic replacement, and that no token ever reaches it.
/// Each test works in its own `mkdtemp` folder and removes it.
@Suite struct TokenFileTests {
    /// The permission bits of `path`, or nil if it does not exist.
    static func mode(_ path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_mode & 0o777
    }

    static func write(_ text: String, to path: String, mode: mode_t) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        guard chmod(path, mode) == 0 else { throw TestSupportError("chmod \(path) failed") }
    }

    static let sampleLine = "alice sha256:\(String(repeating: "ab", count: 32))\n"

    @Test func saveWritesMode0600() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        var store = TokenStore()
        _ = try store.issueToken(for: "alice")
        let path = dir.file("tokens")
        try TokenFile.save(store, to: path)
        #expect(Self.mode(path) == 0o600)
    }

    @Test func saveReplacesAnExistingLooserFileWithMode0600() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        try Self.write("# old\n", to: path, mode: 0o644)
        var store = TokenStore()
        _ = try store.issueToken(for: "alice")
        try TokenFile.save(store, to: path)
        #expect(Self.mode(path) == 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == store.serialized())
    }

    @Test func saveLeavesNoTemporaryFileBehind() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        var store = TokenStore()
        for user in ["alice", "bob"] {
            _ = try store.issueToken(for: user)
            try TokenFile.save(store, to: path)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["tokens"])
        }
    }

    @Test func saveIntoMissingFolderThrowsAndCreatesNothing() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let error = #expect(throws: AuthError.self) {
            try TokenFile.save(TokenStore(), to: dir.file("missing/tokens"))
        }
        #expect(error?.message.contains("No such file") == true, "\(error?.message ?? "")")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func fileHoldsOnlyTheSHA256OfTheToken() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        var store = TokenStore()
        let token = try store.issueToken(for: "alice")
        try TokenFile.save(store, to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains(token))
        #expect(!text.contains(String(token.prefix(16))))

        // The hash, computed independently of Gatehouse by coreutils.
        let digest = try ProcessRunner.run("sha256sum", [], stdin: Data(token.utf8))
        try #require(digest.status == 0)
        let hex = try #require(digest.stdout.split(separator: " ").first.map(String.init))
        #expect(hex.count == 64)
        #expect(text.contains("alice sha256:\(hex)\n"))
    }

    @Test func saveThenLoadVerifiesTheSameTokens() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        var store = TokenStore()
        let alice = try store.issueToken(for: "alice")
        let bob = try store.issueToken(for: "bob")
        try TokenFile.save(store, to: path)
        let loaded = try TokenFile.load(path)
        #expect(loaded.hashes == store.hashes)
        #expect(loaded.verify(user: "alice", token: Array(alice.utf8)))
        #expect(loaded.verify(user: "bob", token: Array(bob.utf8)))
        #expect(!loaded.verify(user: "alice", token: Array(bob.utf8)))
    }

    @Test(arguments: [0o604, 0o602, 0o601, 0o606, 0o644, 0o666, 0o777] as [mode_t])
    func loadRefusesFileOtherUsersCanAccess(_ mode: mode_t) throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        try Self.write(Self.sampleLine, to: path, mode: mode)
        let error = #expect(throws: AuthError.self) { try TokenFile.load(path) }
        let message = error?.message ?? ""
        #expect(message.contains("chmod 600"), "\(message)")
        #expect(message.contains(path), "\(message)")
        #expect(message.contains(String(mode, radix: 8)), "\(message)")
    }

    @Test(arguments: [0o600, 0o400, 0o640, 0o660] as [mode_t])
    func loadAcceptsFileClosedToOtherUsers(_ mode: mode_t) throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        try Self.write(Self.sampleLine, to: path, mode: mode)
        #expect(try TokenFile.load(path).users == ["alice"])
    }

    @Test func loadReportsMalformedLineWithThePath() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        try Self.write("# header\n" + Self.sampleLine + "bob sha256:nothex\n", to: path, mode: 0o600)
        let error = #expect(throws: AuthError.self) { try TokenFile.load(path) }
        #expect(error?.message.hasPrefix("\(path):3:") == true, "\(error?.message ?? "")")
    }

    @Test func loadOfMissingFileThrows() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        #expect(throws: AuthError.self) { try TokenFile.load(dir.file("absent")) }
    }

    @Test func loadOrEmptyGivesEmptyStoreForMissingFile() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let store = try TokenFile.loadOrEmpty(dir.file("absent"))
        #expect(store.users.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir.file("absent")))
    }

    @Test func loadOrEmptyStillChecksPermissionsOfExistingFile() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        try Self.write(Self.sampleLine, to: path, mode: 0o644)
        #expect(throws: AuthError.self) { try TokenFile.loadOrEmpty(path) }
        #expect(chmod(path, 0o600) == 0)
        #expect(try TokenFile.loadOrEmpty(path).users == ["alice"])
    }

    @Test func requirePrivateNamesWhatItChecked() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("server.key")
        try Self.write("key", to: path, mode: 0o604)
        let error = #expect(throws: AuthError.self) { try FilePermissions.requirePrivate(path, what: "private key") }
        #expect(error?.message.hasPrefix("private key \(path)") == true, "\(error?.message ?? "")")
        #expect(chmod(path, 0o600) == 0)
        #expect(throws: Never.self) { try FilePermissions.requirePrivate(path, what: "private key") }
    }
}
