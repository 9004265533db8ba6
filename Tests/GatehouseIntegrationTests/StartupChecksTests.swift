import Foundation
import TestSupport
import Testing

/// What the server refuses before it serves anyone: numeric flags out of their range (each with
/// one line naming the flag and the range) and secret files others could read or change.
@Suite("Start-up checks")
struct StartupChecksTests {
    /// Values that once passed and crashed later (1e11 s overflowed the nanosecond deadlines;
    /// an infinite window tripped a precondition at the first failed AUTH), and each flag's edges.
    @Test(arguments: [
        ("--idle-timeout", "1e11"), ("--handshake-timeout", "1e11"), ("--auth-failure-window", "inf"),
        ("--drain-timeout", "nan"), ("--idle-timeout", "0"), ("--handshake-timeout", "-1"),
        ("--port", "65536"), ("--workers", "257"), ("--max-line", "15"), ("--max-line", "16777217"),
        ("--error-budget", "0"), ("--max-connections", "0"), ("--max-connections", "1000001"),
        ("--max-connections-per-peer", "-1"), ("--journal-queue", "0"), ("--journal-max-bytes", "100"),
        ("--auth-failure-limit", "-1"), ("--auth-failure-window", "0"), ("--session-tickets", "11"),
        ("--max-msg-rate", "2000000"),
    ])
    func aNumberOutOfRangeIsRefusedInOneLine(_ flag: String, _ value: String) throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-flags")
        defer { folder.remove() }
        let result = try ProcessRunner.run(
            Repository.serverBinary,
            ["\(flag)=\(value)"],
            currentDirectory: folder.path,
            timeout: 20
        )
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("\(flag) must be"), "\(result.stderr)")
        #expect(result.stderr.contains(" to "), "\(result.stderr)")
        // Refused before anything was made: no development certificates, no journal.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test(arguments: [0o640, 0o660, 0o604, 0o644] as [mode_t])
    func aPrivateKeyItsGroupOrOthersCanAccessKeepsTheServerFromStarting(_ mode: mode_t) throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-key")
        defer { folder.remove() }
        let pki = try TestPKI.make(in: folder.file("pki"))
        #expect(chmod(pki.serverKey, mode) == 0)
        #expect {
            _ = try ServerProcess(pki: pki)
        } throws: { error in
            "\(error)".contains("private key \(pki.serverKey) is accessible") && "\(error)".contains("chmod")
        }
    }

    /// `--allow-group-read` is the operator's opt-in for a key shared with a group (0640), and
    /// nothing more: group write is still refused.
    @Test func allowGroupReadAcceptsMode0640Only() throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-key")
        defer { folder.remove() }
        let pki = try TestPKI.make(in: folder.file("pki"))
        #expect(chmod(pki.serverKey, 0o640) == 0)
        let server = try ServerProcess(arguments: ["--allow-group-read"], pki: pki)
        let result = try server.sClient("PING\nQUIT\n")
        #expect(replyLines(result.stdout) == ["HELLO gatehouse/1", "PONG", "BYE"])
        server.stop()
        #expect(chmod(pki.serverKey, 0o660) == 0)
        #expect(throws: (any Error).self) { try server.start(["--allow-group-read"]) }
    }

    @Test func aTokensFileOwnedByAnotherUserKeepsTheServerFromStarting() throws {
        try #require(geteuid() == 0, "needs root to give the file away (CI runs as root)")
        let folder = try TemporaryDirectory(prefix: "gatehouse-owner")
        defer { folder.remove() }
        let pki = try TestPKI.make(in: folder.file("pki"))
        let server = try ServerProcess(pki: pki)
        server.stop()
        #expect(chown(server.tokensFile, 65534, 65534) == 0)
        #expect {
            try server.start()
        } throws: { error in
            "\(error)".contains("owned by uid 65534")
        }
    }
}
