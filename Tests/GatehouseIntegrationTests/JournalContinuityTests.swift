import Foundation
import GatehouseClient
import TestSupport
import Testing

/// Ids that never go back, whatever a rotation tool does to the files, and a journal that
/// `gatehouse-server journal verify` can check.
@Suite("Journal continuity")
struct JournalContinuityTests {
    func send(_ server: ServerProcess, _ texts: [String]) throws {
        let conn = try server.authenticatedConnection()
        #expect(conn.sendMessages(texts, window: 16).replies == (1...texts.count).map { "ACK \($0)" })
        conn.quit()
    }

    func lastID(_ server: ServerProcess) throws -> Int {
        try server.allJournalRecords().last?["id"] as? Int ?? 0
    }

    @Test func externalRotationAndDeletedSegmentsThenRestartContinueTheIDs() throws {
        let server = try ServerProcess(arguments: ["--journal-max-bytes", "4096"])
        try send(server, (1...100).map { "before rotation \($0)" })
        #expect(server.signal(SIGTERM) == 0)
        #expect(try server.journalFiles().count >= 3)
        // A rotation tool moves the active file to a name the server does not know, and an
        // operator deletes the old segments.
        try FileManager.default.moveItem(atPath: server.journalFile, toPath: server.journalFile + "-20261201")
        for file in try server.journalFiles() { try FileManager.default.removeItem(atPath: file) }

        try server.start(["--journal-max-bytes", "4096"])
        try send(server, ["after rotation"])
        #expect(try lastID(server) == 101)
        #expect(try server.verifyJournal().status == 0)
    }

    @Test func aFileRenamedAwayBeforeACrashNeverHasItsIDsReused() throws {
        let server = try ServerProcess()
        try send(server, (1...5).map { "first \($0)" })
        // Renamed without SIGHUP: the server goes on writing into the moved file, then crashes.
        let moved = server.journalFile + ".1.gz"
        try FileManager.default.moveItem(atPath: server.journalFile, toPath: moved)
        try send(server, (1...5).map { "second \($0)" })
        server.stop()
        let movedIDs = try String(contentsOfFile: moved, encoding: .utf8).split(separator: "\n").map { line in
            (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["id"] as? Int ?? 0
        }
        #expect(movedIDs == Array(1...10))

        try server.start()
        try send(server, ["after the crash"])
        #expect(try lastID(server) > 10)
        #expect(server.log.contains("ids continue after the reservation"))
    }

    @Test func aJournalOlderThanTheStateIsRefused() throws {
        let server = try ServerProcess()
        try send(server, ["one", "two", "three"])
        #expect(server.signal(SIGTERM) == 0)
        let backup = server.directory.file("backup.jsonl")
        try FileManager.default.copyItem(atPath: server.journalFile, toPath: backup)
        try server.start()
        try send(server, ["four", "five"])
        #expect(server.signal(SIGTERM) == 0)
        // An operator restores yesterday's journal over today's.
        try FileManager.default.removeItem(atPath: server.journalFile)
        try FileManager.default.copyItem(atPath: backup, toPath: server.journalFile)
        let error = #expect(throws: TestSupportError.self) { try server.start() }
        let message = error?.description ?? ""
        #expect(message.contains("ends at id 3"), "\(message)")
        #expect(message.contains("id 5 was already stored"), "\(message)")
        #expect(message.contains("older"), "\(message)")
    }

    enum Damage: String, CaseIterable, Sendable {
        case flippedByte, removedRecord, reorderedPair
    }

    @Test(arguments: Damage.allCases)
    func verifyFindsDamageInTheMiddleOfASegment(_ damage: Damage) throws {
        let server = try ServerProcess(arguments: ["--journal-max-bytes", "4096"])
        try send(server, (1...80).map { "verify me \($0)" })
        #expect(server.signal(SIGTERM) == 0)
        let clean = try server.verifyJournal()
        #expect(clean.status == 0, "\(clean.stdout) \(clean.stderr)")
        #expect(clean.stdout.contains("OK 80 records"), "\(clean.stdout)")
        #expect(clean.stdout.contains("last id 80"), "\(clean.stdout)")

        let segment = try #require(try server.journalFiles().dropFirst().first)  // the second file
        var lines = try String(contentsOfFile: segment, encoding: .utf8).split(separator: "\n").map(String.init)
        try #require(lines.count >= 6)
        let k = lines.count / 2
        let offset = lines[..<k].reduce(0) { $0 + $1.utf8.count + 1 }  // where line k starts
        switch damage {
        case .flippedByte:
            let at = lines[k].range(of: "verify me")!.lowerBound
            lines[k].replaceSubrange(at...at, with: "V")
        case .removedRecord:
            lines.remove(at: k)
        case .reorderedPair:
            lines.swapAt(k, k + 1)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: segment, atomically: false, encoding: .utf8)

        let result = try server.verifyJournal()
        #expect(result.status == 1)
        #expect(result.stdout.contains("BAD \(segment): byte offset \(offset)"), "\(result.stdout)")
        // The server refuses to start on damage before the tail: it is in a segment here, so
        // the start goes on; the damage stays for the operator, and verify keeps finding it.
        try server.start(["--journal-max-bytes", "4096"])
        #expect(try server.verifyJournal().status == 1)
    }
}
