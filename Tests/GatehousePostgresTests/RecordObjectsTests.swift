import Foundation
import GatehouseJournal
import Testing

/// The one JSON parameter a transaction sends: each record of each batch as an object, in
/// order, with the text exactly as received.
@Suite struct RecordObjectsTests {
    @Test func batchesBecomeOneJSONArrayOfTheirRecordsInOrder() throws {
        let fields = JSON.connectionFields(user: "al\"ice", peer: "192.0.2.1:5000", connection: 7)
        let texts = ["plain", "quote \" backslash \\ tab \t", "ünïcödé 🎉", String(repeating: "x", count: 300)]
        let first = JournalBatch(worker: 0)
        let second = JournalBatch(worker: 1)
        for (i, text) in texts.enumerated() {
            let batch = i < 2 ? first : second
            Array(text.utf8).withUnsafeBytes {
                batch.append(
                    time: Array("2026-12-01T12:00:00.123Z".utf8),
                    connectionFields: fields,
                    n: i + 1,
                    text: $0,
                    owner: 0
                )
            }
        }
        var json: [UInt8] = [0x5B]
        first.appendRecordObjects(to: &json)
        second.appendRecordObjects(to: &json)
        json.append(0x5D)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json)) as? [[String: Any]])
        #expect(rows.map { $0["text"] as? String } == texts)
        #expect(rows.map { $0["n"] as? Int } == [1, 2, 3, 4])
        #expect(rows.allSatisfy { $0["user"] as? String == "al\"ice" && $0["conn"] as? Int == 7 })
        #expect(rows.allSatisfy { $0["time"] as? String == "2026-12-01T12:00:00.123Z" })
        #expect(rows.allSatisfy { $0["peer"] as? String == "192.0.2.1:5000" })
    }

    @Test func anEmptyBatchAddsNothing() {
        var json: [UInt8] = [0x5B]
        JournalBatch(worker: 0).appendRecordObjects(to: &json)
        #expect(json == [0x5B])
    }
}
