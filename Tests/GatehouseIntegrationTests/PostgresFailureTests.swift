import Foundation
import GatehouseClient
import Synchronization
import TestSupport
import Testing

/// What an ACK promises with `--store postgresql` when something dies: the server (SIGKILL at
/// random moments) or the database (restarted, or stopped) during a pipelined load.
@Suite(
    "PostgreSQL failures",
    .serialized,
    .enabled(if: PostgresCluster.binDirectory != nil, "needs Debian's postgresql")
)
struct PostgresFailureTests {
    /// Clients sending unique messages, pipelined, recording each reply, until told to stop or
    /// their connection breaks.
    final class Load: @unchecked Sendable {
        private let lock = NSLock()
        private var acked: [String] = []
        private var unavailable = 0
        private var others: [String] = []
        private var stopFlag = false

        var stopped: Bool { lock.withLock { stopFlag } }
        func stop() { lock.withLock { stopFlag = true } }
        var acknowledged: [String] { lock.withLock { acked } }
        var unavailableCount: Int { lock.withLock { unavailable } }
        var otherReplies: [String] { lock.withLock { others } }

        func run(server: ServerProcess, clients: Int, tag: String, limit: Int = 1_000_000) {
            guard let client = try? server.client() else { return }
            let token = server.tokens["alice"]!
            DispatchQueue.concurrentPerform(iterations: clients) { c in
                guard let conn = try? client.connect(), (try? conn.authenticate(user: "alice", token: token)) != nil
                else { return }
                var i = 0
                while i < limit && !stopped {
                    let messages = (0..<8).map { "\(tag)-c\(c)-m\(i + $0)" }
                    i += 8
                    let (replies, error) = conn.sendMessages(messages, window: 8)
                    lock.withLock {
                        for (message, reply) in zip(messages, replies) {
                            if reply.hasPrefix("ACK ") {
                                acked.append(message)
                            } else if reply.hasPrefix("ERR UNAVAILABLE") {
                                unavailable += 1
                            } else {
                                others.append(reply)
                            }
                        }
                    }
                    if error != nil { return }
                }
                conn.quit()
            }
        }
    }

    static func arguments(_ db: PostgresCluster, node: String = "node-a") -> [String] {
        ["--store", "postgresql", "--postgresql", db.url, "--node-name", node, "--workers", "2"]
    }

    static func start(_ db: PostgresCluster, node: String = "node-a") throws -> ServerProcess {
        try ServerProcess(arguments: arguments(db, node: node), environment: ["PGPASSWORD": db.password])
    }

    /// Every acknowledged message is a row, exactly once.
    static func checkStored(_ acked: [String], in db: PostgresCluster) throws {
        let counts = try PostgresStoreTests.rowCounts(db)
        #expect(counts.values.allSatisfy { $0 == 1 }, "a message is stored twice")
        #expect(!counts.isEmpty)
        let missing = acked.filter { counts[$0] == nil }
        #expect(missing.count == 0, "acknowledged but not in the table: \(missing.prefix(5))")
    }

    @Test func sigkillAtRandomMomentsLosesNoAcknowledgedMessage() throws {
        let db = try PostgresCluster()
        let server = try Self.start(db)
        var everAcked: [String] = []
        for round in 0..<3 {
            let load = Load()
            let killer = Thread {
                usleep(UInt32.random(in: 200_000...800_000))
                kill(server.pid, SIGKILL)
            }
            killer.start()
            load.run(server: server, clients: 16, tag: "r\(round)")
            #expect(server.waitForExit(timeout: 10) != nil)
            #expect(!load.acknowledged.isEmpty, "round \(round) acknowledged nothing before the kill")
            everAcked += load.acknowledged
            try Self.checkStored(everAcked, in: db)
            try server.start(Self.arguments(db))  // the arguments again: start() alone means the journal
        }
        // ids come from the table's sequence: unique, and new rows get higher ones than old rows.
        let ids = try db.query("SELECT count(*) = count(DISTINCT id) FROM gatehouse_messages")
        #expect(ids == "t")
        // Nothing went to the local journal instead.
        #expect(try server.journalRecords().isEmpty)
    }

    @Test func aRestartOfPostgresUnderLoadLosesNoAcknowledgedMessageAndRecovers() throws {
        let db = try PostgresCluster()
        let server = try Self.start(db)
        let load = Load()
        let ackedBeforeRestart = Mutex(0)
        let chaos = Thread {
            usleep(400_000)
            db.stop(immediate: true)  // a crash: connections cut mid-transaction
            usleep(1_000_000)
            let count = load.acknowledged.count
            ackedBeforeRestart.withLock { $0 = count }
            try? db.start()
            // Run on until the server acknowledges again (it reconnects by itself), then stop.
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline && load.acknowledged.count < count + 200 { usleep(20_000) }
            load.stop()
        }
        chaos.start()
        load.run(server: server, clients: 12, tag: "load")
        let before = ackedBeforeRestart.withLock { $0 }
        #expect(load.acknowledged.count >= before + 200, "the server did not recover after the restart")
        // Whether a group was in flight at the instant of the crash (and so answered UNAVAILABLE)
        // is timing: the store may have seen the outage between two groups and stopped the
        // readers first. What must hold either way is below; that messages sent while the
        // database is down are never acknowledged is nothingIsAcknowledgedWhileTheDatabaseIsStopped.
        #expect(load.otherReplies.isEmpty, "\(load.otherReplies.prefix(3))")
        #expect(server.isRunning)
        try Self.checkStored(load.acknowledged, in: db)
        // Logged once for the outage and once for the recovery, not once per message.
        #expect(server.log.components(separatedBy: "postgresql unavailable").count == 2, "\(server.log.suffix(2000))")
        #expect(server.log.contains("postgresql works again"))
    }

    @Test func nothingIsAcknowledgedWhileTheDatabaseIsStopped() throws {
        let db = try PostgresCluster()
        let server = try Self.start(db)
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("MSG before the stop") == "ACK 1")
        let scratch = ReadScratch()
        let (probe, _) = try server.client().open(scratch: scratch)
        try probe.authenticate(user: "alice", token: server.tokens["alice"]!, scratch: scratch, timeoutMs: 10_000)
        db.stop()

        // While it is down: an UNAVAILABLE, or no answer at all (reading waits), never an ACK.
        var answers: [String] = []
        for i in 0..<5 {
            guard
                let reply = try? probe.request("MSG while down \(i)", scratch: scratch, timeoutMs: 1500, what: "reply")
            else { break }
            answers.append(reply)
        }
        #expect(answers.allSatisfy { $0.hasPrefix("ERR UNAVAILABLE") }, "\(answers)")
        probe.close()
        try db.start()
        // Back: the same connection is answered again, and what it acknowledges is stored.
        #expect(try conn.request("MSG after the start").hasPrefix("ACK "))
        conn.quit()
        let rows = try PostgresStoreTests.rowCounts(db)
        #expect(rows["before the stop"] == 1 && rows["after the start"] == 1)
        // A message answered UNAVAILABLE was never sent to the stopped database.
        for i in answers.indices { #expect(rows["while down \(i)"] == nil) }
    }
}
