import GatehouseJournal
import Testing

/// The pure decision both stores make for a group's stream records: duplicates, the next
/// numbers, and gaps; and which records a store then sends.
@Suite("Stream decision")
struct StreamDecisionTests {
    static let app = StreamKey(user: "alice", name: "app")
    static let other = StreamKey(user: "alice", name: "other")

    static func batch(_ records: [(StreamKey?, UInt64)]) -> JournalBatch {
        let batch = JournalBatch(worker: 0)
        for (i, (key, seq)) in records.enumerated() {
            let time = Array("2026-12-01T12:00:00.000Z".utf8)
            let fields = JSON.connectionFields(user: "alice", peer: "192.0.2.1:1", connection: 1)
            Array("m\(i)".utf8).withUnsafeBytes { text in
                if let key {
                    batch.append(
                        time: time,
                        connectionFields: fields,
                        n: Int(seq),
                        text: text,
                        owner: 0,
                        stream: key,
                        streamFields: JSON.streamFields(name: key.name),
                        seq: seq
                    )
                } else {
                    batch.append(time: time, connectionFields: fields, n: i + 1, text: text, owner: 0)
                }
            }
        }
        return batch
    }

    @Test func duplicatesNextAndGapsAcrossBatchesOfAGroup() {
        let first = Self.batch([(Self.app, 4), (Self.app, 5), (nil, 0), (Self.app, 6)])
        let second = Self.batch([(Self.app, 7), (Self.other, 3), (Self.other, 1)])
        let lasts: [StreamKey: UInt64] = [Self.app: 5]
        let updates = StreamDecision.decide([first, second]) { lasts[$0] ?? 0 }
        #expect(first.results == [.duplicate, .duplicate, .written, .written])
        #expect(second.results == [.written, .refused, .written])
        #expect(updates == [Self.app: 7, Self.other: 1])
        #expect(StreamDecision.refusedStreams([first, second]) == [Self.other])
        #expect(StreamDecision.writtenStreamRecords([first, second]) == 3)
    }

    /// Streams interleaved in one batch: each run starts from where the stream stood at the end
    /// of its previous run, and `last` is asked once per stream and group.
    @Test func interleavedStreamsInOneBatchEachGoOnFromTheirOwnNumber() {
        let group = Self.batch([
            (Self.app, 6), (Self.app, 6), (Self.other, 1), (Self.app, 7), (Self.other, 3), (Self.app, 8),
            (Self.other, 2), (Self.app, 10),
        ])
        var asked: [StreamKey] = []
        let updates = StreamDecision.decide([group]) { key in
            asked.append(key)
            return key == Self.app ? 5 : 0
        }
        #expect(
            group.results == [.written, .duplicate, .written, .written, .refused, .written, .written, .refused]
        )
        #expect(updates == [Self.app: 8, Self.other: 2])
        #expect(asked == [Self.app, Self.other])
    }

    /// A lower bound for `last` (what a store thread remembers) refuses what only looks like a
    /// gap; deciding again with the table's number writes it, and nothing is written twice.
    @Test func decidingAgainWithTheTablesNumberUndoesALookalikeGap() {
        let group = Self.batch([(Self.app, 9), (Self.app, 10)])
        StreamDecision.decide([group]) { _ in 5 }
        #expect(group.results == [.refused, .refused])
        #expect(StreamDecision.refusedStreams([group]) == [Self.app])
        let updates = StreamDecision.decide([group]) { _ in 9 }
        #expect(group.results == [.duplicate, .written])
        #expect(updates == [Self.app: 10])
    }

    @Test func onlyWrittenRecordsBecomeRowObjects() {
        let group = Self.batch([(Self.app, 1), (Self.app, 2), (nil, 0), (Self.app, 4)])
        StreamDecision.decide([group]) { _ in 1 }
        var json: [UInt8] = [0x5B]
        let sent = group.appendRecordObjects(to: &json)
        json.append(0x5D)
        #expect(sent == 2)
        let text = String(decoding: json, as: UTF8.self)
        #expect(!text.contains(#""text":"m0""#))
        #expect(text.contains(#""stream":"app","seq":2,"text":"m1""#))
        #expect(text.contains(#""text":"m2""#))
        #expect(!text.contains(#""text":"m3""#))
        #expect(group.isStored(0) == false)  // pending until the store says
    }
}
