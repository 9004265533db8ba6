import Foundation
import TestSupport
import Testing

/// `--log-format json`: every line the server logs is one JSON object with time, level and
/// message; the lines about a connection carry its `conn`; no token ever appears.
@Suite("Log format")
struct LogFormatTests {
    @Test func jsonLogsAreOneObjectPerLineWithConnOnConnectionLines() throws {
        let server = try ServerProcess(arguments: ["--log-format", "json"])
        let token = server.tokens["alice"]!
        let result = try server.sClient("AUTH alice wrong-token\nAUTH alice \(token)\nMSG hi\nQUIT\n")
        #expect(replyLines(result.stdout).suffix(3) == ["OK AUTH alice", "ACK 1", "BYE"])
        #expect(server.signal(SIGTERM) == 0)
        let lines = server.log.split(separator: "\n").map(String.init)
        #expect(lines.count >= 5)
        var connectionLines = 0
        for line in lines {
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                "not a JSON object: \(line)"
            )
            #expect(object["time"] is String && object["level"] is String && object["message"] is String, "\(line)")
            let message = object["message"] as? String ?? ""
            if message.hasPrefix("connection ") || message.hasPrefix("authenticat") {
                connectionLines += 1
                #expect(object["conn"] != nil, "\(line)")
            }
            #expect(!line.contains(token))
        }
        #expect(connectionLines >= 4)  // opened, failed, authenticated, closed
    }

    @Test func anUnknownLogFormatIsRefused() throws {
        let result = try ProcessRunner.run(Repository.serverBinary, ["--log-format", "xml"], timeout: 20)
        #expect(result.status != 0)
        #expect(result.stderr.contains("--log-format must be text or json"), "\(result.stderr)")
    }
}
