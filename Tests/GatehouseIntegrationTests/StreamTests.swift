import Foundation
import GatehouseClient
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Streams against the real server (PROTOCOL.md, Streams): numbers continue across
/// connections, a second connection takes a stream over with the exact last number, and the
/// numbers survive a SIGKILL, rotation and restart, until the retention forgets them.
@Suite("Streams over TLS", .serialized)
struct StreamTests {
    @Test func numbersContinueAcrossConnectionsWithSClient() throws {
        let server = try ServerProcess()
        let auth = "AUTH alice \(server.tokens["alice"]!)\n"
        let first = try server.sClient("STREAM app\n" + auth + "STREAM app\nMSG one\nMSG two\nSTREAM app\nQUIT\n")
        #expect(
            replyLines(first.stdout).map { $0.split(separator: " ").prefix(4).joined(separator: " ") } == [
                "HELLO gatehouse/1", "ERR NOAUTH authenticate with", "OK AUTH alice", "OK STREAM app 0", "ACK 1",
                "ACK 2", "ERR SYNTAX this connection", "BYE",
            ]
        )
        let second = try server.sClient(auth + "STREAM app\nMSG three\nQUIT\n")
        #expect(replyLines(second.stdout) == ["HELLO gatehouse/1", "OK AUTH alice", "OK STREAM app 2", "ACK 3", "BYE"])
        // A plain message before STREAM: too late for a stream on this connection.
        let third = try server.sClient(auth + "MSG plain\nSTREAM app\nQUIT\n")
        #expect(replyLines(third.stdout).dropFirst(2).first == "ACK 1")
        #expect(replyLines(third.stdout).dropFirst(3).first?.hasPrefix("ERR SYNTAX") == true)
        let records = try server.journalRecords()
        let app = records.filter { $0["stream"] as? String == "app" }
        #expect(app.map { $0["seq"] as? Int } == [1, 2, 3])
        #expect(app.map { $0["text"] as? String } == ["one", "two", "three"])
        #expect(records.count == 4)  // and the plain one, without stream fields
        #expect(records.last?["stream"] == nil)
    }

    @Test func aSecondConnectionGetsTheExactLastAndTheFirstIsSuperseded() throws {
        // A slow disk (faultfs: 200 ms per fdatasync), so that the first connection's messages
        // are still being stored when the second one takes the stream over.
        let slowDisk = [
            "LD_PRELOAD": try FaultLibrary.path(), "GH_FAULT_PATH": "journal.jsonl", "GH_FAULT_DELAY_US": "200000",
        ]
        let server = try ServerProcess(environment: slowDisk)
        let first = try server.authenticatedConnection()
        #expect(try first.request("STREAM app") == "OK STREAM app 0")
        // Many messages at once, unanswered: the takeover comes while they are being stored.
        var burst: [UInt8] = []
        for k in 1...3000 { burst.append(contentsOf: "MSG message \(k)\n".utf8) }
        try first.writeRaw(burst)
        let second = try server.sClient("AUTH alice \(server.tokens["alice"]!)\nSTREAM app\nMSG after\nQUIT\n")
        let lines = replyLines(second.stdout)
        #expect(lines.count == 5)
        let ok = lines.dropFirst(2).first ?? ""
        #expect(ok.hasPrefix("OK STREAM app "))
        let last = Int(ok.split(separator: " ").last ?? "") ?? -1
        #expect(lines.dropFirst(3).first == "ACK \(last + 1)")
        // The first connection got exactly `last` ACKs, in order, then SUPERSEDED, then the close.
        var replies: [String] = []
        while let line = try? first.readLine() { replies.append(line) }
        first.close()
        #expect(replies.last?.hasPrefix("ERR SUPERSEDED") == true)
        let acks = replies.dropLast()
        #expect(acks.elementsEqual((0..<last).map { "ACK \($0 + 1)" }))
        // The server logs how many of the first connection's messages were still in flight when
        // it was superseded: the OK STREAM above waited for them, so `last` counts them.
        let inFlight = server.log.firstRange(of: /in_flight=(\d+)/).flatMap { Int(server.log[$0].dropFirst(10)) } ?? -1
        #expect(inFlight > 0, "nothing was in flight at the takeover")
        #expect(last >= inFlight)
        let seqs = try server.journalRecords().filter { $0["stream"] as? String == "app" }.compactMap {
            $0["seq"] as? Int
        }
        #expect(seqs == Array(1...(last + 1)))
        #expect(server.log.contains("reason=superseded") || server.log.contains("\"reason\":\"superseded\""))
    }

    @Test func aThousandStreamsKeepTheirLastNumbersThroughSigkillAndRotation() throws {
        let server = try ServerProcess(arguments: ["--journal-max-bytes", "65536"])
        let client = try server.client()
        let token = server.tokens["alice"]!
        func last(of k: Int) -> Int { k % 3 + 1 }
        for k in 0..<1000 {
            let conn = try client.connect()
            try conn.authenticate(user: "alice", token: token)
            #expect(try conn.request("STREAM s\(k)") == "OK STREAM s\(k) 0")
            let (replies, error) = conn.sendMessages((1...last(of: k)).map { "stream \(k) message \($0)" }, window: 8)
            #expect(error == nil && replies.count == last(of: k))
            conn.close()
        }
        kill(server.pid, SIGKILL)
        #expect(server.waitForExit(timeout: 10) != nil)
        let segments = try FileManager.default.contentsOfDirectory(atPath: server.directory.path)
            .filter { $0.hasPrefix("journal.jsonl.0") }
        #expect(!segments.isEmpty, "the journal never rotated")
        try server.start(["--journal-max-bytes", "65536"])
        let restarted = try server.client()  // a new port
        var wrong: [String] = []
        for k in 0..<1000 {
            let conn = try restarted.connect()
            try conn.authenticate(user: "alice", token: token)
            let reply = try conn.request("STREAM s\(k)")
            if reply != "OK STREAM s\(k) \(last(of: k))" { wrong.append(reply) }
            conn.close()
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }

    @Test func aStreamPastItsRetentionIsForgottenAtRestart() throws {
        let server = try ServerProcess(arguments: ["--stream-retention", "1"])
        let auth = "AUTH alice \(server.tokens["alice"]!)\n"
        let first = try server.sClient(auth + "STREAM old\nMSG x\nQUIT\n")
        #expect(replyLines(first.stdout).contains("ACK 1"))
        let again = try server.sClient(auth + "STREAM old\nQUIT\n")
        #expect(replyLines(again.stdout).contains("OK STREAM old 1"))
        #expect(server.signal(SIGTERM) == 0)
        // Retention is in whole seconds of the wall clock: 3 s is past it, whatever the rounding.
        usleep(3_100_000)
        try server.start(["--stream-retention", "1"])
        let after = try server.sClient(auth + "STREAM old\nQUIT\n")
        #expect(replyLines(after.stdout).contains("OK STREAM old 0"))
        // With the default retention the same stream is remembered across a restart.
        let kept = try ServerProcess()
        let keptAuth = "AUTH alice \(kept.tokens["alice"]!)\n"
        _ = try kept.sClient(keptAuth + "STREAM old\nMSG x\nQUIT\n")
        #expect(kept.signal(SIGTERM) == 0)
        usleep(1_100_000)
        try kept.start()
        #expect(replyLines(try kept.sClient(keptAuth + "STREAM old\nQUIT\n").stdout).contains("OK STREAM old 1"))
    }

    @Test func pastMaxStreamsANewStreamIsRefusedAndTheConnectionStaysPlain() throws {
        let server = try ServerProcess(arguments: ["--max-streams", "1"])
        let auth = "AUTH alice \(server.tokens["alice"]!)\n"
        _ = try server.sClient(auth + "STREAM first\nMSG x\nQUIT\n")
        let refused = try server.sClient(auth + "STREAM second\nMSG plain\nSTREAM first\nQUIT\n")
        let lines = replyLines(refused.stdout)
        #expect(lines.count == 6)
        #expect(lines.dropFirst(2).first?.hasPrefix("ERR UNAVAILABLE the server remembers as many streams") == true)
        #expect(lines.dropFirst(3).first == "ACK 1")
        #expect(lines.dropFirst(4).first?.hasPrefix("ERR SYNTAX") == true)  // after a MSG: too late
        // A stream it remembers may always be opened.
        let known = try server.sClient(auth + "STREAM first\nQUIT\n")
        #expect(replyLines(known.stdout).contains("OK STREAM first 1"))
        #expect(server.log.contains("stream refused"))
    }
}
