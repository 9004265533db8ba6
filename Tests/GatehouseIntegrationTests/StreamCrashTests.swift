import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The crash test of streams: `gatehouse send --stream` sends 20,000 messages while the test
/// cuts its connections (a loopback proxy), SIGKILLs and restarts the server on the same
/// journal, and the journal rotates every 64 KiB. At the end the journal holds each message
/// exactly once, in stream order, and the client exited 0.
@Suite("Stream crash test", .serialized)
struct StreamCrashTests {
    @Test func everyMessageIsStoredExactlyOnceInOrderWhateverBreaks() throws {
        let count = 20_000
        let arguments = ["--journal-max-bytes", "65536"]
        let server = try ServerProcess(arguments: arguments)
        let proxy = try CuttingProxy(targetPort: server.port)
        defer { proxy.stop() }
        let file = server.directory.file("messages.txt")
        try (1...count).map { "crash test message \($0)" }.joined(separator: "\n").appending("\n")
            .write(toFile: file, atomically: true, encoding: .utf8)

        let client = server.clientProcess(
            ["send", "--stream", "crash", "--file", file, "--quiet", "--retry-for", "30"],
            port: proxy.port
        )
        let stdout = Pipe()
        let stderr = Pipe()
        client.standardOutput = stdout
        client.standardError = stderr
        try client.run()
        defer { if client.isRunning { client.terminate() } }

        // Chaos while it sends: cuts and kills, a few hundred ms apart, until it is done.
        var random = SystemRandomNumberGenerator()
        var kills = 0
        var cuts = 0
        let deadline = Date().addingTimeInterval(50)
        var round = 0
        // Once it is sending; the first cut and kill come quickly, so that both happen however
        // fast the machine is.
        while client.isRunning && proxy.accepted == 0 && Date() < deadline { usleep(5_000) }
        while client.isRunning && Date() < deadline && round < 8 {
            usleep(UInt32.random(in: round < 2 ? 50_000...150_000 : 150_000...500_000, using: &random))
            guard client.isRunning else { break }
            if round % 3 == 1 {
                kill(server.pid, SIGKILL)
                _ = server.waitForExit(timeout: 10)
                try server.start(arguments)
                proxy.retarget(server.port)
                kills += 1
            } else {
                proxy.cutAll()
                cuts += 1
            }
            round += 1
        }
        while client.isRunning && Date() < deadline { usleep(50_000) }
        let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(!client.isRunning, "the client did not finish")
        #expect(client.terminationStatus == 0, "\(err)")
        #expect(kills >= 1 && cuts >= 1, "the send ended before the chaos (kills \(kills), cuts \(cuts))")
        // "stream crash: 20000 acknowledged, 0 refused, last 20000, N reconnects"
        let reconnects = out.split(separator: ",").last.flatMap { Int($0.split(separator: " ").first ?? "") } ?? -1
        #expect(out.contains("last \(count)"), "\(out)")
        #expect(reconnects >= 1, "\(out)")
        print("stream crash test: \(out.trimmingCharacters(in: .newlines)); kills \(kills), cuts \(cuts)")

        // Every file of the journal: rotated segments in order, then the active one.
        let names = try FileManager.default.contentsOfDirectory(atPath: server.directory.path)
            .filter { $0.hasPrefix("journal.jsonl.") && $0.dropFirst("journal.jsonl.".count).allSatisfy(\.isNumber) }
            .sorted()
        #expect(names.count >= 3, "the journal did not rotate")
        var records: [[String: Any]] = []
        for name in names + ["journal.jsonl"] {
            let text = try String(contentsOfFile: server.directory.file(name), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                if let object, object["stream"] as? String == "crash" { records.append(object) }
            }
        }
        let ids = records.compactMap { $0["id"] as? Int }
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 })
        #expect(records.compactMap { $0["seq"] as? Int } == Array(1...count))
        #expect(records.compactMap { $0["text"] as? String } == (1...count).map { "crash test message \($0)" })

        // A rerun of the same command after the fact sends nothing: the stream holds every line.
        let rerun = try ProcessRunner.run(
            Repository.clientBinary,
            client.arguments!,
            environment: client.environment!,
            timeout: 30
        )
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stdout.contains("0 acknowledged, 0 refused, last \(count), 0 reconnects"), "\(rerun.stdout)")
    }

    @Test func aRerunAfterTheClientWasKilledSendsOnlyTheLinesTheStreamLacks() throws {
        let count = 20_000
        let server = try ServerProcess()
        let file = server.directory.file("lines.txt")
        try (1...count).map { "line \($0)" }.joined(separator: "\n").appending("\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let environment = server.clientEnvironment()
        let arguments = ["send", "--stream", "lines", "--file", file, "--quiet"]
        let first = server.clientProcess(arguments)
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        // Killed once part of the file is stored.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, (try? server.journalRecords().count) ?? 0 < 2000 { usleep(20_000) }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let before = try server.journalRecords().count
        #expect(before > 0 && before < count, "the kill did not come mid-send (\(before) stored)")
        let rerun = try ProcessRunner.run(Repository.clientBinary, arguments, environment: environment, timeout: 60)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        // The server may still have stored a few lines it had read before the kill.
        let acked = Int(rerun.stdout.split(separator: ":").last?.split(separator: " ").first ?? "") ?? -1
        #expect(acked > 0 && acked <= count - before, "\(rerun.stdout)")
        #expect(rerun.stdout.contains("last \(count), 0 reconnects"), "\(rerun.stdout)")
        let records = try server.journalRecords()
        #expect(records.compactMap { $0["text"] as? String } == (1...count).map { "line \($0)" })
        #expect(records.compactMap { $0["seq"] as? Int } == Array(1...count))
        // A file shorter than the stream is refused, and nothing is sent.
        try "line 1\n".write(toFile: file, atomically: true, encoding: .utf8)
        let shorter = try ProcessRunner.run(Repository.clientBinary, arguments, environment: environment, timeout: 30)
        #expect(shorter.status == 1)
        #expect(shorter.stderr.contains("was the file changed?"), "\(shorter.stderr)")
        #expect(try server.journalRecords().count == count)
    }
}
