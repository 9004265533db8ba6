import Foundation
import TestSupport
import Testing

/// The bundled client resumes its TLS session when it reconnects (unless --no-resume), and
/// `gatehouse bench storm` drops and reconnects its clients, against the real server.
@Suite("gatehouse resumption and bench storm")
struct ResumptionCLITests {
    /// `gatehouse send --stream app [extra]`: one message, then the server's idle timeout closes
    /// the connection, then a second message, which the client sends on a new connection.
    /// Returns the client's result; the server's log tells whether the reconnect resumed.
    func sendAcrossAnIdleClose(_ server: ServerProcess, _ extra: [String]) throws -> (Int32, String) {
        let process = server.clientProcess(["send", "--stream", "app"] + extra)
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        input.fileHandleForWriting.write(Data("one\n".utf8))
        #expect(waitFor { (try? server.journalRecords().count) == 1 }, "the first message was not stored")
        #expect(waitFor { server.log.contains("idle timeout") }, "the server did not close the idle connection")
        input.fileHandleForWriting.write(Data("two\n".utf8))
        try input.fileHandleForWriting.close()
        #expect(waitFor { !process.isRunning }, "the client did not exit")
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.isRunning ? -1 : process.terminationStatus, text)
    }

    func waitFor(seconds: Double = 20, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() && Date() < deadline { usleep(20_000) }
        return condition()
    }

    func openedLines(_ server: ServerProcess) -> [String] {
        server.log.split(separator: "\n").map(String.init).filter { $0.contains("connection opened") }
    }

    @Test func aStreamSendResumesItsSessionWhenItReconnects() throws {
        let server = try ServerProcess(arguments: ["--idle-timeout", "0.5"])
        let (status, text) = try sendAcrossAnIdleClose(server, [])
        #expect(status == 0, "\(text)")
        #expect(text.contains("last 2, 1 reconnects"), "\(text)")
        #expect(try server.journalTexts() == ["one", "two"])
        #expect(waitFor { openedLines(server).count == 2 })
        let opened = openedLines(server)
        #expect(opened.first?.contains("resumed=false") == true, "\(opened)")
        #expect(opened.last?.contains("resumed=true") == true, "\(opened)")
    }

    @Test func noResumeMakesEveryReconnectAFullHandshake() throws {
        let server = try ServerProcess(arguments: ["--idle-timeout", "0.5"])
        let (status, text) = try sendAcrossAnIdleClose(server, ["--no-resume"])
        #expect(status == 0, "\(text)")
        #expect(text.contains("last 2, 1 reconnects"), "\(text)")
        #expect(waitFor { openedLines(server).count == 2 })
        let opened = openedLines(server)
        #expect(opened.count == 2 && opened.allSatisfy { $0.contains("resumed=false") }, "\(opened)")
    }

    @Test(arguments: [false, true])
    func benchStormReconnectsEveryClient(_ resume: Bool) throws {
        let server = try ServerProcess()
        var arguments = [
            "bench", "storm", "--connections", "60", "--messengers", "2", "--server-pid", String(server.pid),
            "--duration", "30", "--json",
        ]
        if resume { arguments.append("--resume") }
        let result = try Client(server).run(arguments)
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        let report = try benchJSON(result)
        #expect(report["complete"] as? Bool == true)
        #expect(report["reconnected"] as? Int == 60)
        #expect(report["resumed"] as? Int == (resume ? 60 : 0))
        #expect((report["errors"] as? [String: Int])?.isEmpty == true)
        #expect((report["latency_us"] as? [String: Int])?["count"] == 60)
        // The messengers sent through the quiet second before the drop (window 1, so many ACKs).
        #expect(((report["messenger_before_us"] as? [String: Int])?["count"] ?? 0) > 10)
        #expect(report["server_cpu_s"] is Double || report["server_cpu_s"] is Int)
        // Every client connected twice: 60 before the drop, 60 after, plus the 2 messengers.
        #expect(waitFor { openedLines(server).count == 122 }, "\(openedLines(server).count) connections")
        #expect(openedLines(server).filter { $0.contains("resumed=true") }.count == (resume ? 60 : 0))
    }

    @Test func benchRefusesResumeWithNoResume() throws {
        let server = try ServerProcess()
        let result = try Client(server).run(["bench", "storm", "--resume", "--no-resume"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--resume or --no-resume"), "\(result.stderr)")
    }
}
