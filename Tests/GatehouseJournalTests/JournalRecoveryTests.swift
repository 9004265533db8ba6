import Foundation
import GatehouseJournal
import TestSupport
import Testing

/// Opening a journal a crash left behind: torn last records are cut, corruption is refused.
@Suite struct JournalRecoveryTests {
    /// Opens the journal, stores one more record and returns what recovery reported and the new id.
    func reopenAndStore(_ fixture: JournalFixture, text: String = "after") throws -> (JournalRecoveryReport, UInt64) {
        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        defer { journal.shutdown() }
        let report = journal.recovery
        let batch = fixture.batch([text])
        journal.submit(batch)
        guard collector.wait(for: 1).count == 1, batch.outcome == .stored else {
            throw TestSupportError("the record after recovery was not stored")
        }
        return (report, batch.firstID)
    }

    static let tornTails: [String] = [
        "{",
        #"{"id":4"#,
        #"{"id":4,"time":"2026-11-25T20:4"#,
        #"{"id":4,"time":"2026-11-25T20:49:47.123Z","user":"alice","peer":"127.0.0.1:5000","conn":17,"#
            + #""n":4,"text":"half"#,
        // A complete record but for its LF is still torn: without the LF it was never acknowledged.
        #"{"id":4,"time":"2026-11-25T20:49:47.123Z","user":"alice","peer":"x","conn":1,"n":4,"text":"t"}"#,
    ]

    @Test(arguments: tornTails)
    func tornLastRecordIsCutAndIDsContinue(_ torn: String) throws {
        let fixture = try JournalFixture()
        try fixture.store(["one", "two", "three"])
        let clean = try fixture.contents()
        try fixture.append(Array(torn.utf8))

        let (report, nextID) = try reopenAndStore(fixture)
        #expect(report.truncatedBytes == torn.utf8.count)
        #expect(report.lastID == 3)
        #expect(report.size == clean.count)
        #expect(nextID == 4)
        let after = try fixture.contents()
        #expect(Array(after.prefix(clean.count)) == clean)
        #expect(try fixture.ids() == [1, 2, 3, 4])
        #expect(try fixture.records().map { $0["text"] as? String } == ["one", "two", "three", "after"])
    }

    @Test func halfOfARealRecordIsCut() throws {
        // Tear a record exactly as the writer would have produced it: write four, keep three and a half.
        let fixture = try JournalFixture()
        try fixture.store(["one", "two", "three", "four is the torn one"])
        let full = try fixture.contents()
        let lines = full.split(separator: 0x0A, omittingEmptySubsequences: false)
        let lastLength = lines[3].count + 1
        let keep = full.count - lastLength + lastLength / 2
        try fixture.replace(with: Array(full.prefix(keep)))
        fixture.forgetState()  // the clean shutdown's state knows record 4 was stored: no crash tears it

        let (report, nextID) = try reopenAndStore(fixture)
        #expect(report.lastID == 3)
        #expect(report.truncatedBytes == lastLength / 2)
        #expect(report.size == full.count - lastLength)
        #expect(nextID == 4)
        #expect(try fixture.records().map { $0["text"] as? String } == ["one", "two", "three", "after"])
    }

    @Test func fileWithOnlyATornRecordBecomesEmpty() throws {
        let fixture = try JournalFixture()
        let torn = Array(#"{"id":1,"time":"2026-11-25T20:49:47.1"#.utf8)
        try fixture.replace(with: torn)
        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        #expect(journal.recovery.summary == [0, torn.count, 0])
        #expect(journal.nextID == 1)
        journal.shutdown()
        #expect(try fixture.contents().isEmpty)

        let (report, nextID) = try reopenAndStore(fixture)
        #expect(report.summary == [0, 0, 0])
        #expect(nextID == 1)
        #expect(try fixture.ids() == [1])
    }

    @Test func tornRecordAfterALongRecordIsCut() throws {
        // The last complete record is longer than recovery's 64 KiB read chunk, so it reads backwards
        // several times before it finds the record's start.
        let fixture = try JournalFixture()
        let long = String(repeating: "0123456789abcdef", count: 10_000)  // 160 KB
        try fixture.store(["short", long])
        let clean = try fixture.contents()
        try fixture.append(Array(#"{"id":3,"ti"#.utf8))

        let (report, nextID) = try reopenAndStore(fixture)
        #expect(report.lastID == 2)
        #expect(report.truncatedBytes == 11)
        #expect(report.size == clean.count)
        #expect(nextID == 3)
        let records = try fixture.records()
        #expect(records.map { $0["id"] as? Int } == [1, 2, 3])
        #expect(records[1]["text"] as? String == long)
    }

    @Test func lastIDIsReadFromTheLastRecordNotCounted() throws {
        // Ids need not start at 1 (an operator may have trimmed old records): continue from the last one.
        let fixture = try JournalFixture()
        try fixture.store(["a"])
        var text = String(decoding: try fixture.contents(), as: UTF8.self)
        text = text.replacingOccurrences(of: #"{"id":1,"#, with: #"{"id":41,"#)
        try fixture.replace(with: Array(text.utf8))
        let (report, nextID) = try reopenAndStore(fixture)
        #expect(report.lastID == 41)
        #expect(report.truncatedBytes == 0)
        #expect(nextID == 42)
    }

    static let notRecords: [String] = [
        "garbage that is not json",
        #"{"time":"2026-11-25T20:49:47.123Z","id":7}"#,  // id not first
        #"{"id":"7"}"#,  // id is a string
        #"{"id":}"#,
        #"{"id":99999999999999999999999}"#,  // overflows UInt64
        "",  // an empty line
    ]

    @Test(arguments: notRecords)
    func damagedLastLineIsCutAsATornTail(_ line: String) throws {
        // A crash can leave whole lines of garbage (pages never written): nothing good follows
        // them, so they are a tail, cut like a torn record, and the cause is reported.
        let fixture = try JournalFixture()
        try fixture.store(["good"])
        let good = try fixture.contents()
        try fixture.append(Array((line + "\n").utf8))

        let (report, nextID) = try reopenAndStore(fixture)
        #expect(report.truncatedBytes == line.utf8.count + 1)
        #expect(report.cutReason?.contains("byte offset \(good.count)") == true, "\(report.cutReason ?? "")")
        #expect(nextID == 2)
        #expect(try fixture.records().map { $0["text"] as? String } == ["good", "after"])
    }

    @Test func garbageBeforeATornTailIsCutWithIt() throws {
        let fixture = try JournalFixture()
        try fixture.store(["good"])
        let goodSize = try fixture.contents().count
        try fixture.append(Array("not a record\n{\"id\":2,\"te".utf8))
        let (report, _) = try reopenAndStore(fixture)
        #expect(report.size == goodSize)
        #expect(report.cutReason?.contains("not a journal record") == true)
    }

    @Test func damageFollowedByGoodRecordsIsRefusedNamingItsOffset() throws {
        // A changed byte in the middle: the records after it still chain to one another, so this
        // is no torn tail, and cutting there would drop acknowledged messages. Refuse.
        let fixture = try JournalFixture()
        try fixture.store(["one", "two", "three", "four"])
        var bytes = try fixture.contents()
        let secondStart = bytes.firstIndex(of: 0x0A)! + 1
        let flip = bytes[secondStart...].firstRange(of: Array("two".utf8))!.lowerBound
        bytes[flip] = UInt8(ascii: "T")
        try fixture.replace(with: bytes)

        let error = #expect(throws: JournalError.self) {
            try fixture.open(collector: CompletedBatches()).shutdown()
        }
        let message = error?.message ?? ""
        #expect(message.contains("byte offset \(secondStart)"), "\(message)")
        #expect(message.contains("digest"), "\(message)")
        #expect(message.contains(fixture.path), "\(message)")
        // Nothing was repaired: the operator gets the file as it was.
        #expect(try fixture.contents() == bytes)
    }

    @Test func aFileOfGarbageBecomesEmpty() throws {
        let fixture = try JournalFixture()
        try fixture.replace(with: Array("hello\n".utf8))
        let (report, nextID) = try reopenAndStore(fixture)
        #expect(report.truncatedBytes == 6)
        #expect(report.cutReason?.contains("byte offset 0") == true)
        #expect(nextID == 1)
    }

    @Test func journalInAMissingFolderFailsToOpen() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-journal")
        defer { dir.remove() }
        let error = #expect(throws: JournalError.self) {
            try Journal(path: dir.file("absent/journal.jsonl"), policy: .always, completion: { _ in }).shutdown()
        }
        #expect(error?.message.contains("cannot open journal") == true, "\(error?.message ?? "")")
    }
}

/// `--fsync` values.
@Suite struct FsyncPolicyTests {
    @Test(arguments: [
        ("always", FsyncPolicy.always),
        ("never", .never),
        ("interval=10", .interval(milliseconds: 10)),
        ("interval=1", .interval(milliseconds: 1)),
        ("interval=60000", .interval(milliseconds: 60_000)),
    ])
    func parsesValidPolicies(_ text: String, _ expected: FsyncPolicy) {
        #expect(FsyncPolicy(parsing: text) == expected)
        #expect(FsyncPolicy(parsing: text)?.description == text)
    }

    @Test(arguments: [
        "interval=0", "interval=-5", "interval=abc", "interval=", "interval", "interval=10ms", "interval=60001",
        "interval= 10", "bogus", "", "Always", "ALWAYS", " always", "always ", "never=1", "sometimes",
    ])
    func rejectsInvalidPolicies(_ text: String) {
        #expect(FsyncPolicy(parsing: text) == nil)
    }
}
