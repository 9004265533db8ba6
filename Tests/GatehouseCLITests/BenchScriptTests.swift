import Foundation
import TestSupport
import Testing

/// The benchmark scripts are not run by the suite (minutes of pinned load); this checks that
/// they parse and that bench.sh answers --help and refuses bad options without building.
@Suite("benchmark scripts")
struct BenchScriptTests {
    static let scripts = [
        "bench.sh", "bench-lib.sh", "bench-handshake.sh", "bench-messages.sh", "bench-idle.sh", "profile.sh",
    ]

    @Test(arguments: scripts)
    func parses(_ script: String) throws {
        let result = try ProcessRunner.run("/bin/bash", ["-n", Repository.root + "/scripts/" + script], timeout: 20)
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func benchHelpNamesEveryLineAndOption() throws {
        let result = try ProcessRunner.run("/bin/bash", [Repository.root + "/scripts/bench.sh", "--help"], timeout: 20)
        #expect(result.status == 0, "\(result.stderr)")
        for word in ["resumed handshake", "idle memory", "storm", "scaling", "--quick", "--before", "--only"] {
            #expect(result.stdout.contains(word), "\(word) missing from: \(result.stdout)")
        }
    }

    /// A script and arguments it must refuse, with a one-line message naming itself, exit 2.
    static let refused: [(script: String, arguments: [String])] = [
        ("bench.sh", ["--rounds", "x"]), ("bench.sh", ["--before", "/nonexistent/gatehouse-server"]),
        ("bench.sh", ["--frobnicate"]), ("profile.sh", []), ("profile.sh", ["sideways"]),
        ("profile.sh", ["messages", "--fsync", "sometimes"]), ("profile.sh", ["handshake", "--seconds", "x"]),
    ]

    @Test(arguments: refused)
    func refusesBadArgumentsInOneLine(_ script: String, _ arguments: [String]) throws {
        let path = Repository.root + "/scripts/" + script
        let result = try ProcessRunner.run("/bin/bash", [path] + arguments, timeout: 20)
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("\(script): "), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }
}
