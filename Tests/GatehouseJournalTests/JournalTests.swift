import Foundation
import GatehouseJournal
import TestSupport
import Testing

/// The journal file: record format, ids across restarts, JSON escaping and group commit.
@Suite struct JournalTests {
    static let policies: [FsyncPolicy] = [.always, .interval(milliseconds: 10), .never]

    @Test(arguments: policies)
    func recordsAreJSONLinesWithEveryField(_ policy: FsyncPolicy) throws {
        let fixture = try JournalFixture()
        try fixture.store(["first", "second", "third"], policy: policy)

        let bytes = try fixture.contents()
        #expect(bytes.last == 0x0A)
        #expect(bytes.filter { $0 == 0x0A }.count == 3)
        let records = try fixture.records()
        try #require(records.count == 3)
        let timePattern = #/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/#
        for (i, record) in records.enumerated() {
            #expect(Set(record.keys) == ["id", "time", "user", "peer", "conn", "n", "text", "h"])
            #expect(record["id"] as? Int == i + 1)
            #expect(record["user"] as? String == "alice")
            #expect(record["peer"] as? String == "127.0.0.1:5000")
            #expect(record["conn"] as? Int == 17)
            #expect(record["n"] as? Int == i + 1)
            let time = try #require(record["time"] as? String)
            #expect(time.wholeMatch(of: timePattern) != nil, "\(time)")
        }
        #expect(records.map { $0["text"] as? String } == ["first", "second", "third"])
    }

    @Test func recordStartsWithItsID() throws {
        // Recovery finds the last id by the record's `{"id":` prefix, so the writer must keep it first.
        let fixture = try JournalFixture()
        try fixture.store(["x"])
        #expect(String(decoding: try fixture.contents(), as: UTF8.self).hasPrefix(#"{"id":1,"time":""#))
    }

    @Test func idsIncreaseFromOneAndContinueAfterReopen() throws {
        let fixture = try JournalFixture()
        try fixture.store(["a", "b"])
        #expect(try fixture.ids() == [1, 2])

        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        defer { journal.shutdown() }
        #expect(journal.recovery.summary == [2, 0, try fixture.contents().count])
        #expect(journal.nextID == 3)
        let batch = fixture.batch(["c", "d", "e"])
        journal.submit(batch)
        try #require(collector.wait(for: 1).count == 1)
        #expect(batch.firstID == 3)
        #expect(journal.nextID == 6)
        #expect(try fixture.ids() == [1, 2, 3, 4, 5])
        #expect(try fixture.records().map { $0["text"] as? String } == ["a", "b", "c", "d", "e"])
    }

    @Test func newJournalIsCreatedWithMode0600() throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        journal.shutdown()
        #expect(journal.recovery.summary == [0, 0, 0])
        var st = stat()
        try #require(stat(fixture.path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(st.st_size == 0)
    }

    @Test func connectionFieldsAreEscapedAndNumbered() throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        defer { journal.shutdown() }
        journal.submit(
            fixture.batch(["hi"], user: #"we"ird\user"#, peer: "[::1]:6000", connection: 123_456_789_012, firstN: 41)
        )
        try #require(collector.wait(for: 1).count == 1)
        let record = try #require(try fixture.records().first)
        #expect(record["user"] as? String == #"we"ird\user"#)
        #expect(record["peer"] as? String == "[::1]:6000")
        #expect(record["conn"] as? Int == 123_456_789_012)
        #expect(record["n"] as? Int == 41)
    }

    // MARK: escaping

    static let awkwardTexts: [String] = [
        #"say "hello""#,
        #"back\slash \\ double \n not a newline"#,
        "tab\there\tand there",
        "controls \u{01}\u{02}\u{07}\u{08}\u{0B}\u{0C}\u{0E}\u{1B}\u{1F} end",
        "CR \r and LF \n inside",
        "NUL \u{0} byte",
        "DEL \u{7F} and C1 \u{85}\u{9F}",
        "héllo wörld ✓ 日本語 🎉 \u{2028}\u{2029}",
        #"{"id":99,"text":"forged"}"#,
        "</script> & ' < >",
        " leading and trailing spaces ",
        String(repeating: "long ", count: 20_000),
    ]

    @Test(arguments: awkwardTexts)
    func textRoundTripsExactlyThroughJSON(_ text: String) throws {
        let fixture = try JournalFixture()
        try fixture.store([text])
        let bytes = try fixture.contents()
        // One line: the only raw control byte is the final LF.
        #expect(bytes.dropLast().allSatisfy { $0 >= 0x20 })
        #expect(bytes.last == 0x0A)
        let records = try fixture.records()
        try #require(records.count == 1)
        #expect(records[0]["text"] as? String == text)
        #expect(records[0]["id"] as? Int == 1)
    }

    @Test func escapesUseTheShortFormsWhereJSONHasThem() {
        var out: [UInt8] = []
        Array("\"\\\t\n\r\u{01}\u{1F}é".utf8).withUnsafeBytes { JSON.appendEscaped($0, to: &out) }
        #expect(String(decoding: out, as: UTF8.self) == #"\"\\\t\n\r\u0001\u001fé"#)
    }

    @Test func appendEscapedCopiesPlainTextUnchanged() {
        var out: [UInt8] = Array("prefix:".utf8)
        Array("plain text, ünïcode".utf8).withUnsafeBytes { JSON.appendEscaped($0, to: &out) }
        #expect(String(decoding: out, as: UTF8.self) == "prefix:plain text, ünïcode")
    }

    @Test(arguments: [0, 7, 9, 10, 99, 100, 12_345, 1_000_000_007, UInt64(UInt32.max), UInt64.max] as [UInt64])
    func appendDecimalWritesBaseTen(_ value: UInt64) {
        var out: [UInt8] = [0x2C]
        JSON.appendDecimal(value, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == ",\(value)")
    }

    // MARK: group commit

    @Test func batchesSubmittedTogetherComeBackInOrderStoredWithConsecutiveIDs() throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        defer { journal.shutdown() }
        let sizes = [2, 1, 3, 1, 4]
        var submitted: [JournalBatch] = []
        for (worker, size) in sizes.enumerated() {
            let texts = (0..<size).map { "w\(worker) m\($0)" }
            let batch = fixture.batch(texts, worker: worker, connection: UInt64(worker))
            submitted.append(batch)
        }
        for batch in submitted { journal.submit(batch) }

        let completed = collector.wait(for: submitted.count)
        try #require(completed.count == submitted.count)
        #expect(collector.groups <= submitted.count)
        for (done, sent) in zip(completed, submitted) {
            #expect(done === sent)
            #expect(done.outcome == .stored)
        }
        #expect(completed.map(\.worker) == Array(0..<sizes.count))
        #expect(completed.map(\.firstID) == [1, 3, 4, 7, 8])
        #expect(completed.map(\.owners) == sizes.map { (0..<UInt64($0)).map { $0 } })
        #expect(try fixture.ids() == Array(1...11))
        let records = try fixture.records()
        let expected = sizes.enumerated().flatMap { w, n in (0..<n).map { "w\(w) m\($0)" } }
        #expect(records.map { $0["text"] as? String } == expected)
        #expect(journal.statistics.records == 11)
        #expect(journal.statistics.failures == 0)
        #expect(journal.statistics.flushes >= 1)
        #expect(journal.statistics.flushes <= collector.groups)
    }

    @Test func manyBatchesFromManyThreadsAreEachStoredOnce() async throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        defer { journal.shutdown() }
        let threads = 4
        let perThread = 25
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<threads {
                let batches = (0..<perThread).map { i in fixture.batch(["t\(worker)-\(i)"], worker: worker) }
                group.addTask { for batch in batches { journal.submit(batch) } }
            }
        }
        let completed = collector.wait(for: threads * perThread)
        try #require(completed.count == threads * perThread)
        #expect(completed.allSatisfy { $0.outcome == .stored })
        // Completion order is id order, with no gap and no repeat.
        #expect(completed.map(\.firstID) == (1...UInt64(threads * perThread)).map { $0 })
        let texts = try fixture.records().compactMap { $0["text"] as? String }
        #expect(Set(texts).count == threads * perThread)
        #expect(try fixture.ids() == Array(1...(threads * perThread)))
    }

    @Test func shutdownWritesWhatIsQueued() throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try fixture.open(policy: .interval(milliseconds: 60_000), collector: collector)
        let batches = (0..<5).map { fixture.batch(["m\($0)"]) }
        for batch in batches { journal.submit(batch) }
        journal.shutdown()
        // After shutdown has returned, every batch has been written and handed back.
        #expect(collector.all.count == 5)
        #expect(collector.all.allSatisfy { $0.outcome == .stored })
        #expect(try fixture.ids() == [1, 2, 3, 4, 5])
    }

    @Test func emptyBatchIsHandedBackWithoutWriting() throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        defer { journal.shutdown() }
        let empty = JournalBatch(worker: 3)
        #expect(empty.isEmpty)
        journal.submit(empty)
        journal.submit(fixture.batch(["after"]))
        let completed = collector.wait(for: 2)
        try #require(completed.count == 2)
        #expect(completed[0] === empty)
        #expect(completed[1].firstID == 1)
        #expect(try fixture.ids() == [1])
    }

    // MARK: the clock

    @Test func clockFormatsUTCWithMilliseconds() throws {
        var clock = JournalClock()
        let before = Date()
        let text = String(decoding: clock.now(), as: UTF8.self)
        let after = Date()
        #expect(text.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#) != nil, "\(text)")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let parsed = try #require(formatter.date(from: text))
        #expect(parsed >= before.addingTimeInterval(-0.002))
        #expect(parsed <= after.addingTimeInterval(0.001))
        // The cached prefix is reused within a second and still gives a well-formed time.
        let again = String(decoding: clock.now(), as: UTF8.self)
        #expect(again.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#) != nil, "\(again)")
    }
}
