import Foundation
import TestSupport
import Testing

@Suite("gatehouse bench and shell")
struct BenchAndShellTests {
    @Test func benchMessagesCountAgreesWithTheJournal() throws {
        let server = try ServerProcess(arguments: ["--fsync", "never"])
        let result = try Client(server).run([
            "bench", "messages", "--count", "3000", "--connections", "8", "--window", "16", "--size", "32", "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try benchJSON(result)
        #expect(report["acknowledged"] as? Int == 3000)
        #expect(report["unanswered"] as? Int == 0)
        #expect((report["errors"] as? [String: Any])?.isEmpty == true)
        let latency = try #require(report["latency_us"] as? [String: Int])
        #expect(latency["count"] == 3000)
        #expect(latency["p50"]! <= latency["p99"]! && latency["p99"]! <= latency["max"]!)
        // The independent count: what the server stored.
        let records = try server.journalRecords()
        #expect(records.count == 3000)
        #expect(records.allSatisfy { ($0["text"] as? String)?.utf8.count == 32 })
    }

    @Test func benchIdleHoldsAuthenticatedConnections() throws {
        let server = try ServerProcess()
        let result = try Client(server).run([
            "bench", "idle", "--connections", "200", "--hold", "0.5", "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try benchJSON(result)
        #expect(report["authenticated"] as? Int == 200)
        #expect(report["held"] as? Int == 200)
    }

    @Test func benchIdleCountsConnectionsTheServerRefuses() throws {
        let server = try ServerProcess(arguments: ["--max-connections", "50"])
        let result = try Client(server).run(["bench", "idle", "--connections", "80", "--hold", "0.2", "--json"])
        #expect(result.status == 1)
        let report = try benchJSON(result)
        #expect(report["held"] as? Int == 50)
        #expect((report["errors"] as? [String: Int])?["BUSY"] == 30)
    }

    @Test func benchHandshakeResumesSessions() throws {
        let server = try ServerProcess()
        let full = try benchJSON(try Client(server).run(["bench", "handshake", "--count", "40", "--json"]))
        #expect(full["completed"] as? Int == 40)
        #expect(full["resumed"] as? Int == 0)
        let resumed = try benchJSON(
            try Client(server).run(["bench", "handshake", "--resume", "--connections", "1", "--count", "40", "--json"])
        )
        #expect(resumed["completed"] as? Int == 40)
        #expect(resumed["resumed"] as? Int == 39)  // all but the first
    }

    @Test func shellSendsMessagesAndCommandsAndShowsReplies() throws {
        let server = try ServerProcess()
        let result = try Client(server).run(["shell"], stdin: "hello shell\n/ping\n/raw NOPE\n/quit\n")
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdoutLines
        #expect(lines.first?.hasPrefix("connected to 127.0.0.1:") == true, "\(lines)")
        #expect(
            Array(lines.dropFirst()) == [
                "ACK 1", "PONG", "ERR UNKNOWN_COMMAND expected AUTH, MSG, PING or QUIT", "BYE",
            ]
        )
        #expect(try server.journalTexts() == ["hello shell"])
    }

    @Test func shellSaysWhenTheServerCloses() throws {
        let server = try ServerProcess(arguments: ["--idle-timeout", "0.5"])
        // Standard input stays open (a pipe nobody writes to): only the server's idle timeout ends it.
        let process = server.clientProcess(["shell"])
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!process.isRunning, "the shell did not exit when the server closed")
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        try? input.fileHandleForWriting.close()
        #expect(process.terminationStatus == 3)
        #expect(text.contains("*** the server closed the connection: ERR IDLE_TIMEOUT"), "\(text)")
    }
}
