import Foundation
import GatehouseClient
import TestSupport
import Testing

/// What an ACK promises, proven against the real server: SIGKILL at random moments, a full
/// disk, rotation and reopening.
@Suite("Durability")
struct DurabilityTests {
    /// Clients that send unique messages as fast as the server takes them, recording each
    /// message the server acknowledged, until their connection breaks.
    final class Senders: @unchecked Sendable {
        private let lock = NSLock()
        private var acked: [String] = []
        private var refused: [String] = []

        func run(server: ServerProcess, clients: Int, round: Int) throws {
            let client = try server.client()
            let token = server.tokens["alice"]!
            DispatchQueue.concurrentPerform(iterations: clients) { c in
                guard let conn = try? client.connect(), (try? conn.authenticate(user: "alice", token: token)) != nil
                else {
                    return
                }
                var i = 0
                while i < 100_000 {
                    let messages = (0..<8).map { "r\(round)-c\(c)-m\(i + $0)" }
                    i += 8
                    let (replies, error) = conn.sendMessages(messages, window: 8)
                    lock.lock()
                    for (message, reply) in zip(messages, replies) {
                        if reply.hasPrefix("ACK ") { acked.append(message) } else { refused.append(message) }
                    }
                    lock.unlock()
                    if error != nil { return }
                }
            }
        }

        var acknowledged: [String] {
            lock.lock()
            defer { lock.unlock() }
            return acked
        }
    }

    @Test func sigkillAtRandomMomentsLosesNoAcknowledgedMessage() throws {
        let server = try ServerProcess()
        var everAcked: [String] = []
        for round in 0..<4 {
            let senders = Senders()
            let killer = Thread {
                usleep(UInt32.random(in: 150_000...700_000))
                kill(server.pid, SIGKILL)
            }
            killer.start()
            try senders.run(server: server, clients: 24, round: round)
            #expect(server.waitForExit(timeout: 10) != nil)
            everAcked += senders.acknowledged
            #expect(!senders.acknowledged.isEmpty, "round \(round) acknowledged nothing before the kill")

            try server.start()  // same journal: recovery runs first
            let records = try server.journalRecords()  // throws if any line is not JSON
            let ids = records.compactMap { $0["id"] as? Int }
            #expect(ids.count == records.count)
            #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 }, "ids are not strictly increasing")
            var counts: [String: Int] = [:]
            for record in records { counts[record["text"] as? String ?? "", default: 0] += 1 }
            #expect(counts.values.allSatisfy { $0 == 1 }, "a message is stored twice")
            let missing = everAcked.filter { counts[$0] == nil }
            #expect(missing.isEmpty, "acknowledged but not in the journal: \(missing.prefix(5))")
            let verified = try server.verifyJournal()  // recovery left a chain without a break
            #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")
            // The restarted server serves.
            let conn = try server.authenticatedConnection()
            #expect(try conn.request("MSG after restart \(round)") == "ACK 1")
            conn.quit()
            everAcked.append("after restart \(round)")
        }
    }

    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root (CI runs as root)"))
    func fullDiskAnswersUnavailableAndRecovers() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-disk")
        let mountPoint = dir.file("disk")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = try ProcessRunner.run("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mountPoint])
        try #require(mounted.status == 0, "mount failed: \(mounted.stderr)")
        defer { _ = try? ProcessRunner.run("umount", ["-l", mountPoint]) }

        let server = try ServerProcess(arguments: ["--journal", mountPoint + "/journal.jsonl"])
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("MSG before the disk fills") == "ACK 1")
        // Fill the disk, leaving less than one record of room.
        let filler = mountPoint + "/filler"
        FileManager.default.createFile(atPath: filler, contents: Data(count: 240 * 1024))
        var n = 0
        var sawUnavailable = false
        var acked: [String] = []
        while n < 2000 && !sawUnavailable {
            n += 1
            let text = "filling \(n) " + String(repeating: "x", count: 200)
            let reply = try conn.request("MSG \(text)")
            if reply.hasPrefix("ACK ") {
                acked.append(text)
            } else {
                #expect(reply.hasPrefix("ERR UNAVAILABLE "), "\(reply)")
                sawUnavailable = true
            }
        }
        #expect(sawUnavailable)
        // The connection stays open and every further message is refused, not acknowledged.
        let again = try conn.request("MSG refused too " + String(repeating: "y", count: 200))
        #expect(again.hasPrefix("ERR UNAVAILABLE"), "\(again)")
        #expect(try conn.request("PING") == "PONG")
        // Free the space: service resumes by itself.
        try FileManager.default.removeItem(atPath: filler)
        #expect(try conn.request("MSG after space was freed").hasPrefix("ACK "))
        conn.quit()
        let journal = try String(contentsOfFile: mountPoint + "/journal.jsonl", encoding: .utf8)
        let texts = try journal.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])["text"] as? String
        }
        #expect(texts == ["before the disk fills"] + acked + ["after space was freed"])
        #expect(server.log.contains("journal write failed"))
    }

    @Test func rotationKeepsEveryRecordOnceAcrossSegments() throws {
        let server = try ServerProcess(arguments: ["--journal-max-bytes", "4096"])
        let conn = try server.authenticatedConnection()
        let messages = (1...300).map { "rotating message \($0)" }
        #expect(conn.sendMessages(messages, window: 32).replies == (1...300).map { "ACK \($0)" })
        conn.quit()
        #expect(server.signal(SIGTERM) == 0)
        let segments = try FileManager.default.contentsOfDirectory(atPath: server.directory.path)
            .filter { $0.hasPrefix("journal.jsonl.") && Int($0.dropFirst("journal.jsonl.".count)) != nil }.sorted()
        #expect(segments.count >= 3, "expected several segments, got \(segments)")
        var texts: [String] = []
        var ids: [Int] = []
        for file in segments + ["journal.jsonl"] {
            let body = try String(contentsOfFile: server.directory.file(file), encoding: .utf8)
            for line in body.split(separator: "\n") {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                texts.append(object["text"] as? String ?? "")
                ids.append(object["id"] as? Int ?? 0)
            }
        }
        #expect(texts == messages)
        #expect(ids == Array(1...300))
        let verified = try server.verifyJournal()
        #expect(
            verified.stdout.contains("OK 300 records in \(segments.count + 1) file(s), last id 300"),
            "\(verified.stdout)"
        )
        // A restart continues the id sequence from the segments.
        try server.start(["--journal-max-bytes", "4096"])
        let again = try server.authenticatedConnection()
        #expect(try again.request("MSG after restart") == "ACK 1")
        again.quit()
        let last = try server.journalRecords().last
        #expect(last?["id"] as? Int == 301)
    }

    @Test func aFullJournalQueuePausesReadingWithoutLosingAnything() throws {
        // A queue of 8 messages for 16 clients with 64 in flight each: the workers stop reading
        // over and over while the journal catches up, and must resume every client each time.
        let server = try ServerProcess(arguments: ["--journal-queue", "8"])
        let client = try server.client()
        let token = server.tokens["alice"]!
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 16) { c in
            do {
                let conn = try client.connect()
                try conn.authenticate(user: "alice", token: token)
                let (replies, error) = conn.sendMessages((1...300).map { "queue \(c) \($0)" }, window: 64)
                if error != nil || replies != (1...300).map({ "ACK \($0)" }) { failures.add() }
                conn.quit()
            } catch {
                failures.add()
            }
        }
        #expect(failures.value == 0)
        let texts = try server.journalRecords().compactMap { $0["text"] as? String }
        #expect(texts.count == 16 * 300)
        #expect(Set(texts).count == 16 * 300)
    }

    @Test func sighupReopensTheJournalForExternalRotation() throws {
        let server = try ServerProcess()
        let conn = try server.authenticatedConnection()
        #expect(conn.sendMessages(["one", "two"], window: 2).replies == ["ACK 1", "ACK 2"])
        try FileManager.default.moveItem(atPath: server.journalFile, toPath: server.journalFile + ".old")
        kill(server.pid, SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while !server.log.contains("journal reopened") && Date() < deadline { usleep(10_000) }
        #expect(server.log.contains("journal reopened"))
        #expect(try conn.request("MSG three") == "ACK 3")
        conn.quit()
        let old = try String(contentsOfFile: server.journalFile + ".old", encoding: .utf8)
        #expect(old.split(separator: "\n").count == 2)
        let records = try server.journalRecords()
        #expect(records.map { $0["text"] as? String } == ["three"])
        #expect(records.first?["id"] as? Int == 3)
    }
}
