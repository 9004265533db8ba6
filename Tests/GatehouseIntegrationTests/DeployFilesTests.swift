import Foundation
import TestSupport
import Testing

/// The files in `deploy/` that operators install as they are.
@Suite("Deploy files")
struct DeployFilesTests {
    static let unit = Repository.root + "/deploy/systemd/gatehouse.service"

    /// `[Service]` directives of the unit, continuation lines joined; a key may repeat.
    func directives() throws -> [(String, String)] {
        let text = try String(contentsOfFile: Self.unit, encoding: .utf8).replacingOccurrences(of: "\\\n", with: " ")
        return text.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), !trimmed.hasPrefix("["), let eq = trimmed.firstIndex(of: "=") else {
                return nil
            }
            return (String(trimmed[..<eq]), String(trimmed[trimmed.index(after: eq)...]))
        }
    }

    /// systemd's own checker finds no unknown key, bad value or missing binary (the ExecStart
    /// path is pointed at the built server; unknown keys only warn, so stderr must be empty).
    @Test func systemdAnalyzeVerifiesTheUnit() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "no systemd-analyze")
        let folder = try TemporaryDirectory(prefix: "gatehouse-unit")
        defer { folder.remove() }
        let text = try String(contentsOfFile: Self.unit, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/gatehouse-server", with: Repository.serverBinary)
        let copy = folder.file("gatehouse.service")
        try Data(text.utf8).write(to: URL(fileURLWithPath: copy))
        let result = try ProcessRunner.run("/usr/bin/systemd-analyze", ["verify", copy], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
    }

    @Test func theUnitIsSandboxedAndSpeaksTheNotifyProtocol() throws {
        let all = try directives()
        func value(_ key: String) -> [String] { all.filter { $0.0 == key }.map(\.1) }
        #expect(value("Type") == ["notify"])
        #expect(value("ExecReload") == ["/bin/kill -HUP $MAINPID"])
        #expect(value("User") == ["gatehouse"])
        #expect(value("NoNewPrivileges") == ["yes"])
        #expect(value("ProtectSystem") == ["strict"])
        #expect(value("ProtectHome") == ["yes"])
        #expect(value("PrivateTmp") == ["yes"])
        #expect(value("ReadWritePaths") == ["/var/lib/gatehouse"])
        #expect(value("CapabilityBoundingSet") == [""])
        #expect(value("RestrictAddressFamilies") == ["AF_INET AF_INET6 AF_UNIX"])
        #expect(value("SystemCallFilter").contains("@system-service"))
        #expect(Int(value("LimitNOFILE").first ?? "") ?? 0 > 10_000)
        // The server's drain deadline (10 s by default) fits inside systemd's stop timeout.
        #expect(Int(value("TimeoutStopSec").first ?? "0") ?? 0 > 10)
        let exec = value("ExecStart").first ?? ""
        #expect(exec.contains("--journal /var/lib/gatehouse/"), "the journal must be under ReadWritePaths")
    }
}
