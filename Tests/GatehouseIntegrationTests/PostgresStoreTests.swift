import Foundation
import GatehouseClient
import TestSupport
import Testing

/// `--store postgresql` against a real PostgreSQL (a throwaway cluster per test): what an ACK
/// promises when the server is killed, when the database restarts under load, and while it is
/// down; how the password reaches libpq.
@Suite("PostgreSQL store", .serialized, .enabled(if: PostgresCluster.binDirectory != nil, "needs Debian's postgresql"))
struct PostgresStoreTests {
    static func arguments(_ db: PostgresCluster, passwordFile: String, node: String = "node-a") -> [String] {
        [
            "--store", "postgresql", "--postgresql", db.url, "--postgresql-password-file", passwordFile, "--node-name",
            node,
        ]
    }

    /// A 0600 file holding the cluster's password, in the server's folder.
    static func passwordFile(_ db: PostgresCluster, in folder: TemporaryDirectory) throws -> String {
        let path = folder.file("pg-password")
        try Data((db.password + "\n").utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    /// Each text stored, with how many rows hold it.
    static func rowCounts(_ db: PostgresCluster) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        let out = try db.query("SELECT text FROM gatehouse_messages")
        for line in out.split(separator: "\n") { counts[String(line), default: 0] += 1 }
        return counts
    }

    @Test func aPasswordFileWorksAndAURLWithAPasswordIsRefused() throws {
        let db = try PostgresCluster()
        let folder = try TemporaryDirectory(prefix: "gatehouse-pg-pw")
        let file = try Self.passwordFile(db, in: folder)
        let server = try ServerProcess(arguments: Self.arguments(db, passwordFile: file))
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("MSG stored in postgres") == "ACK 1")
        // JSON's escapes on the way (quotes, backslashes, TAB, non-ASCII) give back the exact text.
        let tricky = "a \"quoted\" \\back\\slash\tTAB ünïcödé 🎉 \\u0041 end"
        #expect(try conn.request("MSG \(tricky)") == "ACK 2")
        conn.quit()
        let row = try db.query(#"SELECT "user", node, n, stream IS NULL, text FROM gatehouse_messages WHERE n = 1"#)
        #expect(row == "alice|node-a|1|t|stored in postgres")
        let stored = try db.query("SELECT encode(convert_to(text, 'UTF8'), 'hex') FROM gatehouse_messages WHERE n = 2")
        #expect(stored == tricky.utf8.map { String(format: "%02x", $0) }.joined())
        let times = try db.query(
            "SELECT count(*) FROM gatehouse_messages WHERE abs(extract(epoch FROM now() - time)) < 60"
        )
        #expect(times == "2")
        server.stop()

        // The password in the URL: refused at start in one line, the password not echoed.
        let withPassword = db.url.replacingOccurrences(of: "gatehouse@", with: "gatehouse:\(db.password)@")
        let refused = try ProcessRunner.run(
            Repository.serverBinary,
            [
                "serve", "--port", "0", "--store", "postgresql", "--postgresql", withPassword, "--tokens",
                server.tokensFile,
            ],
            timeout: 20
        )
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("must not contain a password"), "\(refused.stderr)")
        #expect(!refused.stderr.contains(db.password))
        #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")

        // A password file others may read is refused too, like a private key.
        chmod(file, 0o644)
        #expect(throws: (any Error).self) { try server.start(Self.arguments(db, passwordFile: file)) }
        #expect(server.log.contains("password file"), "\(server.log.suffix(400))")
    }

    @Test func pgpasswordFromTheEnvironmentWorksAndAWrongPasswordStoresNothing() throws {
        let db = try PostgresCluster()
        let base = ["--store", "postgresql", "--postgresql", db.url]
        let server = try ServerProcess(arguments: base, environment: ["PGPASSWORD": db.password])
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("MSG via PGPASSWORD") == "ACK 1")
        conn.quit()
        #expect(try Self.rowCounts(db) == ["via PGPASSWORD": 1])

        // A wrong password: the server runs, logs the outage once, and acknowledges nothing.
        server.environment = ["PGPASSWORD": "wrong"]
        try server.start(base)
        let scratch = ReadScratch()
        let (waiting, _) = try server.client().open(scratch: scratch)
        waiting.queueLine("AUTH alice \(server.tokens["alice"]!)")
        waiting.queueLine("MSG never stored")
        var lines: [String] = []
        // Reading waits while the store is down: no reply at all, so certainly no ACK.
        #expect(throws: ClientError.self) {
            try waiting.waitForLine(&lines, scratch: scratch, timeoutMs: 1500, what: "a reply")
        }
        #expect(lines.isEmpty, "\(lines)")
        waiting.close()
        #expect(server.log.components(separatedBy: "postgresql unavailable").count == 2, "\(server.log)")
        #expect(server.log.contains("password authentication failed"))
        #expect(try Self.rowCounts(db) == ["via PGPASSWORD": 1])
    }
}
