import Foundation
import GatehouseClient
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Streams with `--store postgresql` (PROTOCOL.md, Streams): `OK STREAM` answers from the
/// table, the unique (user, stream, seq) key stores each message once whichever instance sends
/// it, and nothing is acknowledged while the database is down.
@Suite(
    "PostgreSQL streams",
    .serialized,
    .enabled(if: PostgresCluster.binDirectory != nil, "needs Debian's postgresql")
)
struct PostgresStreamTests {
    static func arguments(_ db: PostgresCluster, node: String) -> [String] {
        ["--store", "postgresql", "--postgresql", db.url, "--node-name", node]
    }

    /// A server on `db`, named `node` (the password from PGPASSWORD); `pki` shared so that one
    /// client trusts both instances.
    static func server(_ db: PostgresCluster, node: String, pki: TestPKI? = nil) throws -> ServerProcess {
        try ServerProcess(
            arguments: arguments(db, node: node),
            pki: pki,
            environment: ["PGPASSWORD": db.password]
        )
    }

    /// `(seq, text, node)` of every row of `stream`, by seq.
    static func rows(_ db: PostgresCluster, stream: String) throws -> [(seq: Int, text: String, node: String)] {
        let out = try db.query("SELECT seq, text, node FROM gatehouse_messages WHERE stream = '\(stream)' ORDER BY seq")
        return out.split(separator: "\n").map {
            let f = $0.split(separator: "|", maxSplits: 2).map(String.init)
            return (Int(f[0]) ?? -1, f.count > 1 ? f[1] : "", f.count > 2 ? f[2] : "")
        }
    }

    @Test func aStreamContinuesItsNumbersAndAStoredNumberIsAcknowledgedNotStoredAgain() throws {
        let db = try PostgresCluster()
        let server = try Self.server(db, node: "node-a")
        let first = try server.authenticatedConnection()
        #expect(try first.request("STREAM app") == "OK STREAM app 0")
        #expect(try first.request("MSG one") == "ACK 1")
        #expect(try first.request("MSG two") == "ACK 2")
        first.quit()
        let second = try server.authenticatedConnection()
        #expect(try second.request("STREAM app") == "OK STREAM app 2")
        #expect(try second.request("MSG three") == "ACK 3")
        // Another instance stores number 4 meanwhile (a row written behind this one's back):
        // this connection's 4 is a duplicate, acknowledged and not stored again; 5 follows.
        _ = try db.query(
            #"INSERT INTO gatehouse_messages (time, "user", peer, node, conn, n, stream, seq, text) "#
                + "VALUES (now(), 'alice', '192.0.2.9:1', 'elsewhere', 1, 1, 'app', 4, 'four elsewhere')"
        )
        #expect(try second.request("MSG four here") == "ACK 4")
        #expect(try second.request("MSG five") == "ACK 5")
        #expect(try second.request("MSG plain? no, still the stream") == "ACK 6")
        second.quit()
        let rows = try Self.rows(db, stream: "app")
        #expect(rows.map(\.seq) == [1, 2, 3, 4, 5, 6])
        #expect(rows.map(\.text) == ["one", "two", "three", "four elsewhere", "five", "plain? no, still the stream"])
        #expect(!server.log.contains("postgresql insert failed"), "\(server.log.suffix(600))")
        // A third connection reads the table again, not what this instance remembers.
        _ = try db.query(
            #"INSERT INTO gatehouse_messages (time, "user", peer, node, conn, n, stream, seq, text) "#
                + "VALUES (now(), 'alice', '192.0.2.9:1', 'elsewhere', 1, 2, 'app', 7, 'seven elsewhere')"
        )
        let third = try server.authenticatedConnection()
        #expect(try third.request("STREAM app") == "OK STREAM app 7")
        #expect(try third.request("MSG eight") == "ACK 8")
        third.quit()
        // Streams are per user, and plain messages sit beside them without stream fields.
        let plain = try server.authenticatedConnection()
        #expect(try plain.request("MSG plain") == "ACK 1")
        plain.quit()
        #expect(try db.query("SELECT count(*) FROM gatehouse_messages WHERE stream IS NULL AND seq IS NULL") == "1")
        #expect(
            try db.query("SELECT count(*), count(DISTINCT seq) FROM gatehouse_messages WHERE stream = 'app'") == "8|8"
        )
        // /metrics-style count: every record stored by this instance (the duplicate is not a row).
        #expect(try db.query("SELECT count(*) FROM gatehouse_messages WHERE node = 'node-a'") == "7")
    }

    /// Two instances on one database, one stream written through both at once: the second
    /// connection's `OK STREAM` reads the table, and the numbers the first instance stores after
    /// that are duplicates when the second sends them, acknowledged and stored once.
    @Test func streamsResumedThroughAnotherInstanceAreNotDuplicated() throws {
        let db = try PostgresCluster()
        let a = try Self.server(db, node: "node-a")
        let b = try Self.server(db, node: "node-b", pki: a.pki)
        let onA = try a.authenticatedConnection()
        #expect(try onA.request("STREAM shared") == "OK STREAM shared 0")
        let (firstReplies, firstError) = onA.sendMessages((1...200).map { "a-\($0)" }, window: 32)
        #expect(firstError == nil && firstReplies == (1...200).map { "ACK \($0)" })
        // The client moves to B; A's connection is still open (its instance does not know).
        let onB = try b.authenticatedConnection()
        #expect(try onB.request("STREAM shared") == "OK STREAM shared 200")
        // A stores 201…400 first; B then sends 201…500: its first 200 are in the table already.
        let (aReplies, aError) = onA.sendMessages((201...400).map { "a-\($0)" }, window: 32)
        #expect(aError == nil && aReplies == (201...400).map { "ACK \($0)" })
        let (bReplies, bError) = onB.sendMessages((201...500).map { "b-\($0)" }, window: 32)
        #expect(bError == nil && bReplies == (201...500).map { "ACK \($0)" })
        onA.quit()
        onB.quit()
        let rows = try Self.rows(db, stream: "shared")
        #expect(rows.map(\.seq) == Array(1...500))
        #expect(rows.allSatisfy { $0.text == ($0.seq <= 400 ? "a-\($0.seq)" : "b-\($0.seq)") })
        #expect(rows.allSatisfy { $0.node == ($0.seq <= 400 ? "node-a" : "node-b") })
        // The conflicts were settled by the key, not answered as failures.
        #expect(!b.log.contains("postgresql insert failed"), "\(b.log.suffix(600))")
    }

    /// `gatehouse send --stream` through a proxy to instance A, which is SIGKILLed mid-stream;
    /// the proxy then leads to instance B, where the client resends from B's `OK STREAM`.
    @Test func aStreamResumesOnAnotherInstanceAfterSigkillWithEachMessageOnce() throws {
        let count = 20_000
        let db = try PostgresCluster()
        let a = try Self.server(db, node: "node-a")
        let b = try Self.server(db, node: "node-b", pki: a.pki)
        // One token for both: B reads A's tokens file.
        try FileManager.default.removeItem(atPath: b.tokensFile)
        try FileManager.default.copyItem(atPath: a.tokensFile, toPath: b.tokensFile)
        try b.start(Self.arguments(db, node: "node-b"))
        let proxy = try CuttingProxy(targetPort: a.port)
        defer { proxy.stop() }
        let file = a.directory.file("messages.txt")
        try (1...count).map { "failover message \($0)" }.joined(separator: "\n").appending("\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let (client, stdoutFile, stderrFile) = try Self.startSend(
            a,
            proxyPort: proxy.port,
            stream: "failover",
            file: file
        )
        defer { if client.isRunning { client.terminate() } }

        // A dies once the client has some ACKs; the proxy leads to B from then on.
        var acked = 0
        let deadline = Date().addingTimeInterval(60)
        while client.isRunning && acked < 500 && Date() < deadline {
            usleep(5_000)
            acked = Self.ackNumbers(stdoutFile).count
        }
        #expect(client.isRunning, "the client finished before the kill")
        kill(a.pid, SIGKILL)
        _ = a.waitForExit(timeout: 10)
        proxy.retarget(b.port)
        proxy.cutAll()
        while client.isRunning && Date() < deadline { usleep(20_000) }
        #expect(!client.isRunning)
        let stderr = (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? ""
        #expect(client.terminationStatus == 0, "\(stderr)")
        // The messages A stored without its ACKs reaching the client are not resent: B's
        // OK STREAM counts them.
        #expect(stderr.contains("last \(count), "), "\(stderr)")
        #expect(Self.reconnects(stderr) >= 1, "\(stderr)")

        let rows = try Self.rows(db, stream: "failover")
        #expect(rows.count == count)
        #expect(rows.map(\.seq) == Array(1...count))
        #expect(rows.allSatisfy { $0.text == "failover message \($0.seq)" })
        #expect(Set(rows.map(\.node)) == ["node-a", "node-b"])
        // Every ACK the client saw is a row (exactly once, above), and B's OK STREAM covered the
        // rest: the ACKs and the numbers below it are all of 1…count.
        let acks = Self.ackNumbers(stdoutFile)
        #expect(Set(acks).count == acks.count)
        #expect(acks.allSatisfy { (1...count).contains($0) })
        #expect(acks.count > count / 2)
    }

    /// The database stops mid-stream: nothing is acknowledged while it is down, the client
    /// (`send --stream`) retries, and after the restart each message is a row exactly once.
    @Test func nothingIsAcknowledgedWhileTheDatabaseIsDownAndResendsStoreOnce() throws {
        let count = 20_000
        let db = try PostgresCluster()
        let server = try Self.server(db, node: "node-a")
        let file = server.directory.file("messages.txt")
        try (1...count).map { "outage message \($0)" }.joined(separator: "\n").appending("\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let (client, stdoutFile, stderrFile) = try Self.startSend(
            server,
            proxyPort: server.port,
            stream: "outage",
            file: file
        )
        defer { if client.isRunning { client.terminate() } }
        let deadline = Date().addingTimeInterval(90)
        while client.isRunning && Self.ackNumbers(stdoutFile).count < 500 && Date() < deadline { usleep(5_000) }
        #expect(client.isRunning, "the client finished before the outage")
        db.stop(immediate: true)
        // ACKs of groups committed just before the stop may still be on their way; then none.
        usleep(500_000)
        let before = Self.ackNumbers(stdoutFile)
        usleep(2_000_000)
        let during = Self.ackNumbers(stdoutFile)
        #expect(during.count == before.count, "ACKs while the database was down")
        try db.start()
        while client.isRunning && Date() < deadline { usleep(20_000) }
        let stderr = (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? ""
        #expect(!client.isRunning)
        #expect(client.terminationStatus == 0, "\(stderr)")
        let rows = try Self.rows(db, stream: "outage")
        #expect(rows.map(\.seq) == Array(1...count))
        #expect(rows.allSatisfy { $0.text == "outage message \($0.seq)" })
        let acks = Self.ackNumbers(stdoutFile)
        #expect(Set(acks).count == acks.count && acks.allSatisfy { (1...count).contains($0) })
        #expect(stderr.contains("last \(count), "), "\(stderr)")
        // Whether the client had to reconnect depends on a group being in flight at the instant
        // of the stop (then UNAVAILABLE, and a resend from OK STREAM); when the stop falls between
        // groups, reading just waits for the database. Either way its summary line is printed.
        #expect(Self.reconnects(stderr) >= 0, "\(stderr)")
        #expect(server.log.contains("postgresql works again"), "\(server.log.suffix(600))")
    }

    /// Starts `gatehouse send --stream NAME --file FILE` against `port` with `server`'s CA and
    /// alice's token; its ACK lines go to a file.
    static func startSend(
        _ server: ServerProcess,
        proxyPort port: Int,
        stream: String,
        file: String
    ) throws -> (
        Process, String, String
    ) {
        let client = server.clientProcess(
            ["send", "--stream", stream, "--file", file, "--retry-for", "60"],
            port: port
        )
        let out = server.directory.file("send-\(stream).out")
        let err = server.directory.file("send-\(stream).err")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        client.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        client.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        client.standardInput = FileHandle.nullDevice
        try client.run()
        return (client, out, err)
    }

    /// `N reconnects` from the client's summary line; -1 without one.
    static func reconnects(_ stderr: String) -> Int {
        guard let match = stderr.firstMatch(of: /(\d+) reconnects/) else { return -1 }
        return Int(match.1) ?? -1
    }

    /// The numbers of the `ACK n` lines the client printed so far.
    static func ackNumbers(_ path: String) -> [Int] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { $0.hasPrefix("ACK ") ? Int($0.dropFirst(4)) : nil }
    }
}
