import Foundation
import TestSupport
import Testing

/// `gatehouse send --stream` and `gatehouse bench messages --streams` against the real server.
@Suite("gatehouse streams")
struct StreamCLITests {
    @Test func sendThroughAStreamContinuesItsNumbers() throws {
        let server = try ServerProcess()
        let first = try Client(server).run(["send", "--stream", "app", "one", "two"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdoutLines == ["ACK 1", "ACK 2"])
        #expect(first.stderr.contains("stream app: 2 acknowledged, 0 refused, last 2, 0 reconnects"), "\(first.stderr)")
        let second = try Client(server).run(["send", "--stream", "app", "--quiet"], stdin: "three\n")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdoutLines == ["stream app: 1 acknowledged, 0 refused, last 3, 0 reconnects"])
        let records = try server.journalRecords()
        #expect(records.map { $0["seq"] as? Int } == [1, 2, 3])
        #expect(records.map { $0["stream"] as? String } == ["app", "app", "app"])
    }

    @Test func badStreamNamesAreRefusedBeforeConnecting() throws {
        let server = try ServerProcess()
        let result = try Client(server).run(["send", "--stream", "a b", "x"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("stream name"), "\(result.stderr)")
        #expect(try server.journalRecords().isEmpty)
    }

    @Test func benchMessagesThroughStreams() throws {
        let server = try ServerProcess()
        let result = try Client(server).run([
            "bench", "messages", "--streams", "--count", "2000", "--connections", "4", "--window", "16", "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let data = Data(result.stdout.utf8)
        let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(report["acknowledged"] as? Int == 2000)
        let records = try server.journalRecords()
        #expect(records.count == 2000)
        let streams = Set(records.compactMap { $0["stream"] as? String })
        #expect(streams.count == 4)
        // Each stream is numbered 1, 2, 3, … with no gap or repeat.
        for stream in streams {
            let seqs = records.filter { $0["stream"] as? String == stream }.compactMap { $0["seq"] as? Int }
            #expect(seqs == Array(1...seqs.count))
        }
    }

    @Test func shellShowsTheStreamState() throws {
        let server = try ServerProcess()
        _ = try Client(server).run(["send", "--stream", "app", "one", "two"])
        let result = try Client(server).run(["shell"], stdin: "/stream app\nthree\n/stream app\n/quit\n")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            Array(result.stdoutLines.dropFirst()) == [
                "OK STREAM app 2", "*** stream app: the server holds messages 1 to 2; next is 3", "ACK 3",
                "ERR SYNTAX this connection has a stream already", "BYE",
            ]
        )
    }
}
