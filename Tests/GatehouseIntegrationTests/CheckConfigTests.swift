import Foundation
import TestSupport
import Testing

/// `gatehouse-server check-config`: each broken input it claims to catch, one line each, exit 1,
/// and nothing started.
@Suite("check-config")
struct CheckConfigTests {
    final class Setup {
        let folder: TemporaryDirectory
        let pki: TestPKI
        var arguments: [String]

        init() throws {
            folder = try TemporaryDirectory(prefix: "gatehouse-check")
            pki = try TestPKI.make(in: folder.file("pki"), extraArguments: ["--client", "alice"])
            let issued = try ProcessRunner.run(
                Repository.serverBinary,
                ["token", "add", "alice", "--tokens", folder.file("tokens")]
            )
            guard issued.status == 0 else { throw TestSupportError(issued.stderr) }
            arguments = [
                "--cert", pki.serverCertificate, "--key", pki.serverKey, "--tokens", folder.file("tokens"),
                "--journal", folder.file("journal.jsonl"), "--host", "127.0.0.1", "--port", "0",
            ]
        }

        deinit { folder.remove() }

        func run(_ extra: [String] = []) throws -> ProcessResult {
            try ProcessRunner.run(Repository.serverBinary, ["check-config"] + arguments + extra, timeout: 20)
        }
    }

    @Test func aGoodConfigurationPasses() throws {
        let s = try Setup()
        let result = try s.run()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("configuration OK"))
        #expect(!FileManager.default.fileExists(atPath: s.folder.file("journal.jsonl")))
    }

    @Test func aKeyThatDoesNotMatchTheCertificate() throws {
        let s = try Setup()
        let result = try s.run(["--key", s.pki.clientKey("alice")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("does not match the certificate"), "\(result.stderr)")
    }

    @Test func anExpiredCertificate() throws {
        let s = try Setup()
        try s.pki.issueClient("old", days: -1)
        let result = try s.run(["--cert", s.pki.clientCertificate("old"), "--key", s.pki.clientKey("old")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("expired"), "\(result.stderr)")
    }

    @Test func aKeyOthersCanRead() throws {
        let s = try Setup()
        chmod(s.pki.serverKey, 0o644)
        let result = try s.run()
        #expect(result.status == 1)
        #expect(result.stderr.contains("private key") && result.stderr.contains("chmod 600"), "\(result.stderr)")
    }

    @Test func aTokensFileThatIsMissingOrOpen() throws {
        let s = try Setup()
        chmod(s.folder.file("tokens"), 0o660)
        let open = try s.run()
        #expect(open.status == 1)
        #expect(open.stderr.contains("tokens file"), "\(open.stderr)")
        let missing = try s.run(["--tokens", s.folder.file("absent")])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot open tokens file"), "\(missing.stderr)")
    }

    @Test func aBrokenClientMap() throws {
        let s = try Setup()
        try Data("CN alice\n".utf8).write(to: URL(fileURLWithPath: s.folder.file("map")))
        chmod(s.folder.file("map"), 0o600)
        let result = try s.run([
            "--client-auth", "optional", "--client-ca", s.pki.caCertificate, "--client-map", s.folder.file("map"),
        ])
        #expect(result.status == 1)
        #expect(result.stderr.contains("map:1:"), "\(result.stderr)")
    }

    @Test func aJournalFolderThatCannotBeWritten() throws {
        let s = try Setup()
        let result = try s.run(["--journal", s.folder.file("tokens") + "/journal.jsonl"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("journal folder"), "\(result.stderr)")
    }

    @Test func aPortInUse() throws {
        let s = try Setup()
        let server = try ServerProcess(pki: s.pki)
        let result = try s.run(["--port", String(server.port)])
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot listen on 127.0.0.1 port \(server.port)"), "\(result.stderr)")
    }

    @Test func everyProblemIsItsOwnLine() throws {
        let s = try Setup()
        chmod(s.pki.serverKey, 0o644)
        chmod(s.folder.file("tokens"), 0o644)
        let result = try s.run()
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 2, "\(result.stderr)")
        #expect(lines.allSatisfy { $0.hasPrefix("check-config: ") })
    }
}

/// Two servers on one port would split clients between two journals (SO_REUSEPORT lets the
/// second bind): the second one must refuse to start.
@Suite("One server per port")
struct OneServerPerPortTests {
    @Test func aSecondServerOnTheSamePortRefusesToStart() throws {
        let first = try ServerProcess()
        let second = try ServerProcess()
        #expect {
            try second.start([], port: first.port)
        } throws: { error in
            "\(error)".contains("cannot listen") && "\(error)".contains("in use")
        }
        let result = try first.sClient("PING\nQUIT\n")
        #expect(replyLines(result.stdout) == ["HELLO gatehouse/1", "PONG", "BYE"])
    }
}
