import Foundation
import GatehouseClient
import TestSupport
import Testing

/// The wire protocol end to end, through the Swift client, against the real server binary.
@Suite("Protocol over TLS")
struct ProtocolTests {
    @Test func pipelinedTenThousandMessagesAreAcknowledgedInOrder() throws {
        let server = try ServerProcess()
        let conn = try server.authenticatedConnection()
        let messages = (1...10_000).map { "message number \($0)" }
        let (replies, error) = conn.sendMessages(messages, window: 10_000)
        #expect(error == nil)
        #expect(replies == (1...10_000).map { "ACK \($0)" })
        conn.quit()
        let records = try server.journalRecords()
        #expect(records.count == 10_000)
        #expect(records.map { $0["text"] as? String } == messages)
        #expect(records.map { ($0["n"] as? Int) ?? -1 } == Array(1...10_000))
    }

    @Test func twoHundredConcurrentClientsAllGetTheirAcks() throws {
        let server = try ServerProcess()
        let client = try server.client()
        let token = server.tokens["alice"]!
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 200) { c in
            do {
                let conn = try client.connect()
                try conn.authenticate(user: "alice", token: token)
                let messages = (1...100).map { "client \(c) message \($0)" }
                let (replies, error) = conn.sendMessages(messages, window: 16)
                if error != nil || replies != (1...100).map({ "ACK \($0)" }) { failures.add() }
                conn.quit()
            } catch {
                failures.add()
            }
        }
        #expect(failures.value == 0)
        let records = try server.journalRecords()
        #expect(records.count == 20_000)
        #expect(Set(records.compactMap { $0["text"] as? String }).count == 20_000)
        let ids = records.compactMap { $0["id"] as? Int }
        #expect(ids == Array(1...20_000))
        #expect(Set(records.compactMap { $0["conn"] as? Int }).count == 200)
    }

    @Test func journalHoldsExactlyTheAcknowledgedMessages() throws {
        let server = try ServerProcess()
        let conn = try server.authenticatedConnection()
        // Interleave good and refused lines; only the acknowledged ones may reach the journal.
        let lines = ["MSG one", "MSG", "MSG two", "BOGUS", "MSG three\u{01}", "MSG four"]
        var replies: [String] = []
        for line in lines { replies.append(try conn.request(line)) }
        #expect(
            replies.map { $0.split(separator: " ").prefix(2).joined(separator: " ") } == [
                "ACK 1", "ERR EMPTY", "ACK 2", "ERR UNKNOWN_COMMAND", "ERR BAD_CHAR", "ACK 3",
            ]
        )
        conn.quit()
        #expect(try server.journalRecords().map { $0["text"] as? String } == ["one", "two", "four"])
    }

    @Test func idsContinueAcrossARestart() throws {
        let server = try ServerProcess()
        var conn = try server.authenticatedConnection()
        #expect(conn.sendMessages(["a", "b"], window: 2).replies == ["ACK 1", "ACK 2"])
        conn.quit()
        #expect(server.signal(SIGTERM) == 0)
        try server.start()
        conn = try server.authenticatedConnection()
        #expect(conn.sendMessages(["c"], window: 1).replies == ["ACK 1"])
        conn.quit()
        #expect(try server.journalRecords().compactMap { $0["id"] as? Int } == [1, 2, 3])
    }

    @Test func verbsAreCaseInsensitiveAndTextIsKeptExactly() throws {
        let server = try ServerProcess()
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("ping") == "PONG")
        #expect(try conn.request("Msg   leading spaces, tab\there, \"quotes\" and \\ é 漢 🚀") == "ACK 1")
        conn.quit()
        #expect(
            try server.journalRecords().first?["text"] as? String
                == "  leading spaces, tab\there, \"quotes\" and \\ é 漢 🚀"
        )
    }

    @Test func tokensFileAndJournalAreNotReadableByOthers() throws {
        let server = try ServerProcess()
        let conn = try server.authenticatedConnection()
        _ = try conn.request("MSG x")
        conn.quit()
        for path in [server.tokensFile, server.journalFile, server.pki.serverKey] {
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode.map { $0 & 0o077 } == 0, "\(path) has mode \(String(mode ?? 0, radix: 8))")
        }
        // Nothing secret in the log: the token never appears.
        #expect(!server.log.contains(server.tokens["alice"]!))
    }
}

final class Counter: @unchecked Sendable {
    private var count = 0
    private let lock = NSLock()
    func add() {
        lock.lock()
        count += 1
        lock.unlock()
    }
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
}
