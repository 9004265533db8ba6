import Foundation
import GatehouseAuth
import GatehouseSystem
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

    @Test(arguments: [0o604, 0o602, 0o601, 0o606, 0o644, 0o666, 0o777, 0o640, 0o660, 0o620, 0o610] as [mode_t])
    func loadRefusesFileOthersOrItsGroupCanAccess(_ mode: mode_t) throws {
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

    @Test(arguments: [0o600, 0o400])
    func loadAcceptsFileOnlyItsOwnerCanAccess(_ mode: mode_t) throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        try Self.write(Self.sampleLine, to: path, mode: mode)
        #expect(try TokenFile.load(path).users == ["alice"])
    }

    /// With the operator's opt-in, group read (0640) passes; group write and any access for
    /// others never do.
    @Test(
        arguments: [(0o640, true), (0o440, true), (0o660, false), (0o620, false), (0o644, false), (0o604, false)]
            as [(mode_t, Bool)]
    )
    func groupReadIsAcceptedOnlyWhenAllowed(_ mode: mode_t, _ accepted: Bool) throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        try Self.write(Self.sampleLine, to: path, mode: mode)
        if accepted {
            #expect(try TokenFile.load(path, allowGroupRead: true).users == ["alice"])
        } else {
            #expect(throws: AuthError.self) { try TokenFile.load(path, allowGroupRead: true) }
        }
    }

    @Test func aFileOwnedByAnotherUserIsRefused() throws {
        try #require(geteuid() == 0, "needs root to give the file away (CI runs as root)")
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        try Self.write(Self.sampleLine, to: path, mode: 0o600)
        #expect(chown(path, 65534, 65534) == 0)
        let error = #expect(throws: AuthError.self) { try TokenFile.load(path) }
        #expect(error?.message.contains("owned by uid 65534") == true, "\(error?.message ?? "")")
    }

    /// The check is made on what was opened: a symlink is followed to the file it names, and that
    /// file's mode decides.
    @Test func theModeCheckedIsTheModeOfTheFileOpened() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let target = dir.file("real-tokens")
        try Self.write(Self.sampleLine, to: target, mode: 0o644)
        let link = dir.file("tokens")
        #expect(symlink(target, link) == 0)
        #expect(throws: AuthError.self) { try TokenFile.load(link) }
        #expect(chmod(target, 0o600) == 0)
        #expect(try TokenFile.load(link).users == ["alice"])
    }

    @Test func aFolderOrFIFOIsNotASecretFile() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let fifo = dir.file("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let error = #expect(throws: AuthError.self) { try TokenFile.load(fifo) }
        #expect(error?.message.contains("not a regular file") == true)
    }

    /// save never writes through a planted temporary file or symlink, leaves no temporary file,
    /// and the result is 0600 whatever the umask.
    @Test func saveCreatesAFreshPrivateFile() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("tokens")
        let old = umask(0)
        defer { umask(old) }
        var store = TokenStore()
        _ = try store.issueToken(for: "alice")
        try TokenFile.save(store, to: path)
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(names == ["tokens"])
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

    @Test func secretFileNamesWhatItChecked() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let path = dir.file("server.key")
        try Self.write("key", to: path, mode: 0o604)
        let error = #expect(throws: AuthError.self) {
            try SecretFile.read(path, what: "private key", allowGroupRead: false)
        }
        #expect(error?.message.hasPrefix("private key \(path)") == true, "\(error?.message ?? "")")
        #expect(chmod(path, 0o600) == 0)
        #expect(try SecretFile.read(path, what: "private key", allowGroupRead: false) == Array("key".utf8))
    }

    /// The module's error shape: the kind says who is at fault, the message is unchanged, and
    /// the system's error travels as the cause.
    @Test func secretFileErrorsCarryKindAndCause() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-auth")
        defer { dir.remove() }
        let missing = dir.file("absent.key")
        let error = #expect(throws: AuthError.self) {
            try SecretFile.read(missing, what: "private key", allowGroupRead: false)
        }
        #expect(error?.kind == .file)
        #expect(error?.message == "cannot open private key \(missing): No such file or directory")
        #expect((error?.cause as? SystemError)?.errno == ENOENT)

        let open = dir.file("open.key")
        try Self.write("key", to: open, mode: 0o644)
        let refused = #expect(throws: AuthError.self) {
            try SecretFile.read(open, what: "private key", allowGroupRead: false)
        }
        #expect(refused?.kind == .permissions)
        #expect(refused?.cause == nil)
    }
}
