import Foundation
import TestSupport
import Testing

@Suite("gatehouse send")
struct SendTests {
    @Test func sendsArgumentsAndPrintsEachACK() throws {
        let server = try ServerProcess()
        let result = try Client(server).run(["send", "hello", "second message"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutLines == ["ACK 1", "ACK 2"])
        #expect(try server.journalTexts() == ["hello", "second message"])
    }

    @Test func sendsStandardInputOneMessagePerLine() throws {
        let server = try ServerProcess()
        let result = try Client(server).run(["send"], stdin: "one\r\ntwo\n\nthree")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutLines == ["ACK 1", "ACK 2", "ACK 3"])
        #expect(try server.journalTexts() == ["one", "two", "three"])
    }

    @Test func quietPrintsOnlyASummary() throws {
        let server = try ServerProcess()
        let lines = (1...500).map { "message \($0)" }.joined(separator: "\n") + "\n"
        let result = try Client(server).run(["send", "--quiet", "--window", "32"], stdin: lines)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutLines == ["500 acknowledged, 0 refused"])
        #expect(try server.journalRecords().count == 500)
    }

    @Test func sendsAFile() throws {
        let server = try ServerProcess()
        let file = server.directory.file("messages.txt")
        try "from a file\nsecond line\n".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try Client(server).run(["send", "--file", file])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try server.journalTexts() == ["from a file", "second line"])
    }

    @Test func refusedMessagesMakeANonZeroExitAndAreNamed() throws {
        let server = try ServerProcess(arguments: ["--max-line", "100"])
        var input = Array("good\n".utf8)
        input += [0x62, 0x61, 0x64, 0xFF, 0xFE, 0x0A]  // "bad" + invalid UTF-8
        input += Array((String(repeating: "y", count: 200) + "\nalso good\n").utf8)
        let result = try Client(server).run(["send"], stdinBytes: input)
        #expect(result.status == 1)
        #expect(result.stdoutLines == ["ACK 1", "ACK 2"])
        #expect(result.stderr.contains("line 2 refused: ERR BAD_UTF8"), "\(result.stderr)")
        #expect(result.stderr.contains("line 3 refused: ERR TOO_LONG"), "\(result.stderr)")
        #expect(result.stderr.contains("2 acknowledged, 2 refused (line 2, line 3)"), "\(result.stderr)")
        #expect(try server.journalTexts() == ["good", "also good"])
    }

    @Test func wrongTokenFailsClearly() throws {
        let server = try ServerProcess()
        var client = Client(server)
        client.token = "not-the-token"
        let result = try client.run(["send", "hello"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("authentication failed for user 'alice'"), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(try server.journalRecords().isEmpty)
    }

    @Test func tokenComesFromATokenFile() throws {
        let server = try ServerProcess()
        let file = server.directory.file("alice.token")
        try (server.tokens["alice"]! + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
        var client = Client(server)
        client.token = nil
        let missing = try client.run(["send", "hello"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no token"), "\(missing.stderr)")
        let result = try client.run(["send", "--token-file", file, "hello"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutLines == ["ACK 1"])
    }

    @Test func brokenConnectionReportsWhatWasNotAcknowledged() throws {
        // The third refusal spends the error budget: the server closes the connection, and the
        // messages after it are never acknowledged.
        let server = try ServerProcess(arguments: ["--error-budget", "3"])
        let lines = ["ok 1", "MSG\u{1}1", "ok 2", "MSG\u{1}2", "MSG\u{1}3", "after 1", "after 2"]
        let result = try Client(server).run(["send", "--window", "1"], stdin: lines.joined(separator: "\n") + "\n")
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stdoutLines == ["ACK 1", "ACK 2"])
        #expect(result.stderr.contains("TOO_MANY_ERRORS"), "\(result.stderr)")
        #expect(result.stderr.contains("2 acknowledged, 3 refused; last acknowledged: line 3"), "\(result.stderr)")
        #expect(result.stderr.contains("not sent: line 6, line 7"), "\(result.stderr)")
        #expect(try server.journalTexts() == ["ok 1", "ok 2"])
    }

    @Test func interruptReportsWhatWasAndWasNotAcknowledged() throws {
        let server = try ServerProcess()
        let process = server.clientProcess(["send"])
        let input = Pipe()
        let outFile = server.directory.file("send.out")
        let errFile = server.directory.file("send.err")
        _ = FileManager.default.createFile(atPath: outFile, contents: nil)
        _ = FileManager.default.createFile(atPath: errFile, contents: nil)
        process.standardInput = input
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outFile))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errFile))
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // Two lines, then the input stays open: the send waits for more until Ctrl-C.
        try input.fileHandleForWriting.write(contentsOf: Data("first\nsecond\n".utf8))
        let deadline = Date().addingTimeInterval(20)
        var out = ""
        while Date() < deadline && !out.contains("ACK 2") {
            usleep(20_000)
            out = (try? String(contentsOfFile: outFile, encoding: .utf8)) ?? ""
        }
        #expect(out.split(separator: "\n") == ["ACK 1", "ACK 2"])
        kill(process.processIdentifier, SIGINT)
        let exitBy = Date().addingTimeInterval(10)
        while process.isRunning && Date() < exitBy { usleep(10_000) }
        try #require(!process.isRunning, "gatehouse send did not stop on SIGINT")
        #expect(process.terminationStatus == 130)
        let err = (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? ""
        #expect(err.contains("gatehouse: interrupted"), "\(err)")
        #expect(err.contains("2 acknowledged, 0 refused; last acknowledged: line 2"), "\(err)")
        #expect(err.contains("not sent: all input after line 2"), "\(err)")
        #expect(try server.journalTexts() == ["first", "second"])
    }
}
