import Foundation
import GatehouseClient
import TestSupport
import Testing

/// The real server on a disk that fails (faultfs, LD_PRELOAD): fdatasync, write and ftruncate
/// return EIO or ENOSPC on chosen calls, under each fsync mode, with pipelining clients.
@Suite("Fault injection")
struct FaultInjectionTests {
    struct Scenario: CustomTestStringConvertible, Sendable {
        var fsync: String
        var faults: [String: String]
        /// What the server's log must say about it.
        var logged: String
        var testDescription: String { "\(fsync) \(faults.sorted { $0.key < $1.key })" }
    }

    static let scenarios: [Scenario] = [
        // Failed flushes of groups: those messages are refused, the file is set aside.
        Scenario(fsync: "always", faults: ["GH_FAULT_FDATASYNC": "15,30-31,45"], logged: "journal fdatasync failed"),
        // Failed interval flushes: what was acknowledged since the last good one is written again.
        Scenario(fsync: "interval=5", faults: ["GH_FAULT_FDATASYNC": "4,8-9"], logged: "journal fdatasync failed"),
        // A full disk mid-write (a short write, then ENOSPC): the partial group is cut back.
        Scenario(
            fsync: "never",
            faults: ["GH_FAULT_WRITE": "20,40-41", "GH_FAULT_PARTIAL": "1", "GH_FAULT_ERRNO": "ENOSPC"],
            logged: "journal write failed"
        ),
        // A short write whose cut-back fails too: the next group sets the file aside first.
        Scenario(
            fsync: "always",
            faults: ["GH_FAULT_WRITE": "25", "GH_FAULT_PARTIAL": "1", "GH_FAULT_FTRUNCATE": "1"],
            logged: "journal write failed"
        ),
    ]

    @Test(arguments: scenarios)
    func noAcknowledgedMessageIsLostAndNoIDRepeats(_ scenario: Scenario) throws {
        let library = try FaultLibrary.path()
        let dir = try TemporaryDirectory(prefix: "gatehouse-faults")
        defer { dir.remove() }
        let faultLog = dir.file("faults.log")
        let environment = ["LD_PRELOAD": library, "GH_FAULT_PATH": "journal.jsonl", "GH_FAULT_LOG": faultLog]
            .merging(scenario.faults) { $1 }
        let server = try ServerProcess(arguments: ["--fsync", scenario.fsync], environment: environment)
        let ledger = ReplyLedger()
        try ledger.send(to: server, clients: 8, count: 150, window: 16, prefix: "f")

        let injected = (try? String(contentsOfFile: faultLog, encoding: .utf8)) ?? ""
        #expect(!injected.isEmpty, "no fault was injected: the scenario tested nothing")
        #expect(ledger.otherReplies.isEmpty, "\(ledger.otherReplies.prefix(3))")
        #expect(ledger.acked.count + ledger.refused.count == 8 * 150)
        #expect(server.log.contains(scenario.logged), "\(server.log.suffix(2000))")
        // The server kept serving through the faults.
        #expect(server.isRunning)
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("MSG after the faults").hasPrefix("ACK "))
        conn.quit()

        // A crash, then a start on a healthy disk: recovery runs first.
        server.environment = [:]
        try server.start(["--fsync", scenario.fsync])
        let records = try server.allJournalRecords()
        let ids = records.compactMap { $0["id"] as? Int }
        #expect(ids.count == records.count)
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 }, "an id repeats or goes back")
        var stored: [String: Int] = [:]
        for record in records { stored[record["text"] as? String ?? "", default: 0] += 1 }
        #expect(stored.values.allSatisfy { $0 == 1 }, "a message is stored twice")
        let missing = (ledger.acked + ["after the faults"]).filter { stored[$0] == nil }
        #expect(missing.isEmpty, "acknowledged but not in the journal: \(missing.prefix(5))")
        let refusedButStored = ledger.refused.filter { stored[$0] != nil }
        #expect(refusedButStored.isEmpty, "answered UNAVAILABLE yet stored: \(refusedButStored.prefix(5))")
        let verified = try server.verifyJournal()
        #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")
        // And it serves after the restart, with ids past every one used before.
        let again = try server.authenticatedConnection()
        #expect(try again.request("MSG after the restart") == "ACK 1")
        again.quit()
        let last = try server.allJournalRecords().last
        #expect((last?["id"] as? Int ?? 0) > (ids.last ?? 0))
    }

    func faultEnvironment(_ faults: [String: String]) throws -> [String: String] {
        ["LD_PRELOAD": try FaultLibrary.path(), "GH_FAULT_PATH": "journal.jsonl"].merging(faults) { $1 }
    }

    func waitForLog(_ server: ServerProcess, _ text: String, seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !server.log.contains(text) && Date() < deadline { usleep(20_000) }
        return server.log.contains(text)
    }

    @Test func aFailedIntervalFlushNamesTheIDsAtRiskAndWritesThemAgain() throws {
        // The first flush works (it comes with the first message); the second, the interval
        // timer's, fails with the next 50 messages acknowledged but not yet flushed.
        let server = try ServerProcess(
            arguments: ["--fsync", "interval=1000"],
            environment: try faultEnvironment(["GH_FAULT_FDATASYNC": "2"])
        )
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("MSG first") == "ACK 1")
        let texts = (2...51).map { "at risk \($0)" }
        #expect(conn.sendMessages(texts, window: 50).replies == (2...51).map { "ACK \($0)" })
        #expect(waitForLog(server, "ids_rewritten=2-51"), "\(server.log.suffix(1500))")
        #expect(server.log.contains("ids_at_risk=2-51"))
        #expect(try conn.request("MSG after").hasPrefix("ACK "))
        conn.quit()
        server.environment = [:]
        try server.start(["--fsync", "interval=1000"])  // after a crash
        let stored = try server.allJournalRecords().compactMap { $0["text"] as? String }
        #expect(stored == ["first"] + texts + ["after"])
        #expect(try server.journalFiles().count == 2, "the failed file is set aside as a segment")
        #expect(try server.verifyJournal().status == 0)
    }

    @Test func aFailedFlushOfAFileMovedAwayIsLoggedAsPossibleLoss() throws {
        // SIGHUP after an external rotation: the moved file's flush fails, and its records
        // belong to the rotation tool now; the loss is logged with the ids, not hidden.
        let server = try ServerProcess(
            arguments: ["--fsync", "interval=60000"],
            environment: try faultEnvironment(["GH_FAULT_FDATASYNC": "2-"])
        )
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("MSG first") == "ACK 1")
        #expect(conn.sendMessages(["two", "three"], window: 2).replies == ["ACK 2", "ACK 3"])
        try FileManager.default.moveItem(atPath: server.journalFile, toPath: server.journalFile + ".old")
        kill(server.pid, SIGHUP)
        #expect(waitForLog(server, "acknowledged messages may be lost"), "\(server.log.suffix(1500))")
        #expect(server.log.contains("ids=2-3"))
        conn.quit()
    }
}
