import Foundation
import TestSupport
import Testing

/// `--config FILE` and `GATEHOUSE_SERVER_*` through apple/swift-configuration: precedence flag >
/// environment > file > default, refusals in one line, and the example file in deploy/.
@Suite("Configuration file")
struct ConfigFileTests {
    static let example = Repository.root + "/deploy/gatehouse.json"

    func write(_ json: String, in folder: TemporaryDirectory) throws -> String {
        let path = folder.file("gatehouse.json")
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Which of three line lengths a server accepts: the line limit in force, seen from outside.
    func accepted(_ server: ServerProcess) throws -> [Bool] {
        let token = server.tokens["alice"]!
        var input = "AUTH alice \(token)\n"
        for length in [150, 250, 350] { input += "MSG " + String(repeating: "x", count: length - 5) + "\n" }
        let lines = replyLines(try server.sClient(input + "QUIT\n").stdout)
        return lines.dropFirst(2).prefix(3).map { $0.hasPrefix("ACK") }
    }

    @Test func aFlagBeatsTheEnvironmentWhichBeatsTheFile() throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-config")
        defer { folder.remove() }
        let file = try write(#"{"max-line": 200}"#, in: folder)
        let fromFile = try ServerProcess(arguments: ["--config", file])
        #expect(try accepted(fromFile) == [true, false, false])
        fromFile.stop()
        let fromEnv = try ServerProcess(
            arguments: ["--config", file],
            environment: ["GATEHOUSE_SERVER_MAX_LINE": "300"]
        )
        #expect(try accepted(fromEnv) == [true, true, false])
        fromEnv.stop()
        let fromFlag = try ServerProcess(
            arguments: ["--config", file, "--max-line", "400"],
            environment: ["GATEHOUSE_SERVER_MAX_LINE": "300"]
        )
        #expect(try accepted(fromFlag) == [true, true, true])
    }

    @Test(arguments: [
        (#"{"idle-timout": 30}"#, "unknown setting 'idle-timout'"),
        (#"{"max-line": "big"}"#, "'max-line' must be a whole number"),
        (#"{"idle-timeout": 1e11}"#, "--idle-timeout must be from"),
        (#"[1, 2]"#, "is not a JSON object"),
        (#"{"port": 9999"#, "is not a JSON object"),
    ])
    func aBadFileIsRefusedInOneLine(_ json: String, _ expected: String) throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-config")
        defer { folder.remove() }
        let file = try write(json, in: folder)
        let result = try ProcessRunner.run(
            Repository.serverBinary,
            ["--config", file],
            currentDirectory: folder.path,
            timeout: 20
        )
        #expect(result.status != 0)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(expected), "\(result.stderr)")
    }

    /// The example names every option `serve --help` lists (so every flag has a key), and
    /// nothing else.
    @Test func theExampleFileHasAKeyForEveryFlag() throws {
        let help = try ProcessRunner.run(Repository.serverBinary, ["serve", "--experimental-dump-help"], timeout: 20)
        let dump = try #require(try JSONSerialization.jsonObject(with: Data(help.stdout.utf8)) as? [String: Any])
        let arguments = try #require((dump["command"] as? [String: Any])?["arguments"] as? [[String: Any]])
        var flags = Set<String>()
        for argument in arguments {
            for name in argument["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
                flags.insert(name["name"] as! String)
            }
        }
        flags.subtract(["help", "config"])
        let example = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.example)))
                as? [String: Any]
        )
        let keys = Set(example.keys.filter { !$0.hasPrefix("#") })
        #expect(keys == flags, "missing: \(flags.subtracting(keys)), extra: \(keys.subtracting(flags))")
    }

    /// check-config with the example (its paths pointed at a test PKI) passes, and loads every key.
    @Test func checkConfigAcceptsTheExampleWithRealFiles() throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-config")
        defer { folder.remove() }
        let pki = try TestPKI.make(in: folder.file("pki"))
        try pki.regenerate(["--crl"])
        let issued = try ProcessRunner.run(
            Repository.serverBinary,
            ["token", "add", "alice", "--tokens", folder.file("tokens")]
        )
        try #require(issued.status == 0)
        try Data("CN:alice alice\n".utf8).write(to: URL(fileURLWithPath: folder.file("map")))
        chmod(folder.file("map"), 0o600)
        var text = try String(contentsOfFile: Self.example, encoding: .utf8)
        for (from, to) in [
            ("/etc/gatehouse/chain.pem", pki.serverCertificate), ("/etc/gatehouse/key.pem", pki.serverKey),
            ("/etc/gatehouse/tokens", folder.file("tokens")), ("/etc/gatehouse/client-ca.pem", pki.caCertificate),
            ("/etc/gatehouse/crl.pem", pki.crlFile), ("/etc/gatehouse/client-map", folder.file("map")),
            ("/var/lib/gatehouse/journal.jsonl", folder.file("journal/journal.jsonl")), ("9999", "0"),
        ] {
            text = text.replacingOccurrences(of: from, with: to)
        }
        let file = try write(text, in: folder)
        let result = try ProcessRunner.run(Repository.serverBinary, ["check-config", "--config", file], timeout: 20)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("configuration OK"), "\(result.stdout)")
        #expect(result.stdout.contains("client-auth optional"))
    }
}
