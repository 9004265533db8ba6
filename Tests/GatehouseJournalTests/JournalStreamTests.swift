import Foundation
import GatehouseJournal
import Testing

/// Streams in the journal: a number a stream holds is not written again, a gap is refused, and
/// each stream's last number survives restarts (clean or not) and rotation.
@Suite("Journal streams")
struct JournalStreamTests {
    private func streamBatch(
        _ fixture: JournalFixture,
        _ seqs: [Int],
        stream: String = "app",
        user: String = "alice"
    ) -> JournalBatch {
        let batch = JournalBatch(worker: 0)
        let fields = JSON.connectionFields(user: user, peer: "127.0.0.1:5000", connection: 17)
        let time = fixture.clock.now()
        let key = StreamKey(user: user, name: stream)
        for (i, seq) in seqs.enumerated() {
            Array("\(stream) message \(seq)".utf8).withUnsafeBytes {
                batch.append(
                    time: time,
                    connectionFields: fields,
                    n: seq,
                    text: $0,
                    owner: UInt64(i),
                    stream: key,
                    streamFields: JSON.streamFields(name: stream),
                    seq: UInt64(seq)
                )
            }
        }
        return batch
    }

    private func submit(_ journal: Journal, _ collector: CompletedBatches, _ batch: JournalBatch) throws {
        let before = collector.all.count
        journal.submit(batch)
        guard collector.wait(for: before + 1).count == before + 1 else {
            throw JournalTestFailure("the journal did not complete the batch")
        }
    }

    @Test func aNumberTheStreamHoldsIsAcknowledgedButNotWrittenAgain() throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        defer { journal.shutdown() }
        try submit(journal, collector, streamBatch(fixture, [1, 2, 3]))
        let second = streamBatch(fixture, [2, 3, 4, 6])
        try submit(journal, collector, second)
        #expect(second.results == [.duplicate, .duplicate, .written, .refused])
        #expect((0..<4).map { second.isStored($0) } == [true, true, true, false])
        #expect(journal.streamLast(StreamKey(user: "alice", name: "app")) == 4)
        let records = try fixture.records()
        #expect(records.map { $0["seq"] as? Int } == [1, 2, 3, 4])
        #expect(records.map { $0["stream"] as? String } == Array(repeating: "app", count: 4))
        #expect(records.map { $0["id"] as? Int } == [1, 2, 3, 4])
        // The same number in another user's stream of the same name is another stream.
        let bobs = streamBatch(fixture, [1], user: "bob")
        try submit(journal, collector, bobs)
        #expect(bobs.results == [.written])
    }

    @Test func aGapWithinOneGroupIsRefusedAndTheNextNumberStillFits() throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        defer { journal.shutdown() }
        let batch = streamBatch(fixture, [1, 3, 2])
        try submit(journal, collector, batch)
        #expect(batch.results == [.written, .refused, .written])
        #expect(try fixture.records().map { $0["seq"] as? Int } == [1, 2])
    }

    @Test func lastNumbersSurviveACleanRestartAndOneWithoutTheTableFile() throws {
        let fixture = try JournalFixture()
        do {
            let collector = CompletedBatches()
            let journal = try fixture.open(collector: collector)
            try submit(journal, collector, streamBatch(fixture, Array(1...5)))
            try submit(journal, collector, streamBatch(fixture, [1, 2], stream: "other"))
            journal.shutdown()
        }
        #expect(FileManager.default.fileExists(atPath: fixture.path + ".streams"))
        var journal = try fixture.open(collector: CompletedBatches())
        #expect(journal.streamLast(StreamKey(user: "alice", name: "app")) == 5)
        #expect(journal.streamLast(StreamKey(user: "alice", name: "other")) == 2)
        #expect(journal.streamLast(StreamKey(user: "alice", name: "none")) == 0)
        journal.shutdown()
        // As after a SIGKILL before any save: the active file alone tells.
        try FileManager.default.removeItem(atPath: fixture.path + ".streams")
        journal = try fixture.open(collector: CompletedBatches())
        #expect(journal.streamLast(StreamKey(user: "alice", name: "app")) == 5)
        #expect(journal.streamCount == 2)
        journal.shutdown()
    }

    @Test func rotationKeepsTheStreamsOfTheFilesItRollsAway() throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try Journal(path: fixture.path, policy: .always, maxBytes: 400, completion: collector.handler)
        for k in 1...20 { try submit(journal, collector, streamBatch(fixture, [k])) }
        // Not shut down: as if killed now. The table file was written at each rotation.
        let table = try String(contentsOfFile: fixture.path + ".streams", encoding: .utf8)
        #expect(table.contains(#""stream":"app""#))
        let segments = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path)
            .filter { $0.hasPrefix("journal.jsonl.0") }
        #expect(segments.count >= 3)
        journal.shutdown()
        try FileManager.default.removeItem(atPath: fixture.path + ".streams")
        try Data(table.utf8).write(to: URL(fileURLWithPath: fixture.path + ".streams"))  // the last rotation's
        let reopened = try fixture.open(collector: CompletedBatches())
        defer { reopened.shutdown() }
        #expect(reopened.streamLast(StreamKey(user: "alice", name: "app")) == 20)
    }

    @Test func aThousandStreamsComeBackAfterARestart() throws {
        let fixture = try JournalFixture()
        do {
            let collector = CompletedBatches()
            let journal = try fixture.open(collector: collector)
            for s in 0..<1000 { journal.submit(streamBatch(fixture, Array(1...(s % 7 + 1)), stream: "s\(s)")) }
            guard collector.wait(for: 1000).count == 1000 else { throw JournalTestFailure("batches missing") }
            journal.shutdown()
        }
        let journal = try fixture.open(collector: CompletedBatches())
        defer { journal.shutdown() }
        #expect(journal.streamCount == 1000)
        let wrong = (0..<1000).filter {
            journal.streamLast(StreamKey(user: "alice", name: "s\($0)")) != UInt64($0 % 7 + 1)
        }
        #expect(wrong.isEmpty)
    }

    @Test func streamsPastTheirRetentionAreForgottenAtStart() throws {
        let fixture = try JournalFixture()
        let now = Int(Date().timeIntervalSince1970)
        let table =
            #"{"user":"alice","stream":"old","seq":9,"time":\#(now - 7200)}"# + "\n"
            + #"{"user":"alice","stream":"recent","seq":4,"time":\#(now - 60)}"# + "\n"
        try Data(table.utf8).write(to: URL(fileURLWithPath: fixture.path + ".streams"))
        let journal = try Journal(
            path: fixture.path,
            policy: .always,
            streamRetention: 3600,
            completion: CompletedBatches().handler
        )
        defer { journal.shutdown() }
        #expect(journal.streamLast(StreamKey(user: "alice", name: "old")) == 0)
        #expect(journal.streamLast(StreamKey(user: "alice", name: "recent")) == 4)
    }

    @Test func maxStreamsBoundsNewStreamsOnly() throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try Journal(path: fixture.path, policy: .always, maxStreams: 2, completion: collector.handler)
        defer { journal.shutdown() }
        try submit(journal, collector, streamBatch(fixture, [1], stream: "a"))
        try submit(journal, collector, streamBatch(fixture, [1], stream: "b"))
        #expect(journal.canOpenStream(StreamKey(user: "alice", name: "a")))
        #expect(!journal.canOpenStream(StreamKey(user: "alice", name: "c")))
    }
}

struct JournalTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
