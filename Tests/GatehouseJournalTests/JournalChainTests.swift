import Foundation
import GatehouseJournal
import TestSupport
import Testing

/// The chained digests, the state file that keeps ids from going back, and the byte budget.
@Suite struct JournalChainTests {
    @Test func digestIsSHA256OfThePreviousDigestAndTheRecord() throws {
        // Checked against openssl's own SHA-256, from the definition in docs/PROTOCOL.md.
        let fixture = try JournalFixture()
        try fixture.store(["hello", "world"])
        let lines = try fixture.contents().split(separator: 0x0A).map { Array($0) }
        try #require(lines.count == 2)
        var previous = [UInt8](repeating: 0, count: 16)
        for line in lines {
            let key = Array(#","h":""#.utf8)
            let at = try #require(line.firstRange(of: key))
            let stored = String(decoding: line[at.upperBound..<(at.upperBound + 32)], as: UTF8.self)
            let input = fixture.directory.file("input")
            try Data(previous + line[..<at.lowerBound]).write(to: URL(fileURLWithPath: input))
            let result = try ProcessRunner.run("openssl", ["dgst", "-sha256", "-hex", "-r", input])
            let full = try #require(result.stdout.split(separator: " ").first)
            #expect(stored == String(full.prefix(32)))
            previous = stride(from: 0, to: 32, by: 2).map { i in
                UInt8(stored.dropFirst(i).prefix(2), radix: 16)!
            }
        }
    }

    @Test func theChainRunsAcrossSegmentsAndRestarts() throws {
        let fixture = try JournalFixture()
        for round in 0..<3 {
            let collector = CompletedBatches()
            let journal = try Journal(
                path: fixture.path,
                policy: .always,
                maxBytes: 4096,
                completion: collector.handler
            )
            for i in 0..<10 { journal.submit(fixture.batch((0..<5).map { "round \(round) batch \(i) record \($0)" })) }
            #expect(collector.wait(for: 10).allSatisfy { $0.outcome == .stored })
            journal.shutdown()
        }
        let result = try JournalVerifier.verify(journal: fixture.path)
        #expect(result.failure == nil, "\(String(describing: result.failure))")
        #expect(result.files.count > 3)
        #expect(result.records == 150)
        #expect(result.lastID == 150)
        #expect(result.notes.isEmpty, "\(result.notes)")
        #expect(result.undigested == 0)
    }

    @Test func aJournalFromBeforeDigestsVerifiesAndTheChainStartsAfterIt() throws {
        let fixture = try JournalFixture()
        let old = (1...3).map {
            #"{"id":\#($0),"time":"2026-11-25T20:49:47.123Z","user":"a","peer":"p","conn":1,"n":\#($0),"text":"old"}"#
        }
        try fixture.replace(with: Array((old.joined(separator: "\n") + "\n").utf8))
        fixture.forgetState()
        try fixture.store(["new one", "new two"])
        let result = try JournalVerifier.verify(journal: fixture.path)
        #expect(result.failure == nil, "\(String(describing: result.failure))")
        #expect(result.records == 5)
        #expect(result.undigested == 3)
        #expect(result.lastID == 5)
        // A record without a digest after the chain has begun is a fault.
        try fixture.append(Array((old[0].replacingOccurrences(of: #""id":1,"#, with: #""id":6,"#) + "\n").utf8))
        let broken = try JournalVerifier.verify(journal: fixture.path)
        #expect(broken.failure?.id == 6)
        #expect(broken.failure?.reason.contains("no digest") == true)
    }

    @Test func aCleanShutdownRecordsTheExactLastID() throws {
        let fixture = try JournalFixture()
        try fixture.store(["a", "b", "c"])
        let state = try String(contentsOfFile: fixture.path + ".state", encoding: .utf8)
        #expect(state.hasPrefix(#"{"last_id":3,"h":""#), "\(state)")
        #expect(state.hasSuffix(#","issued":3,"reserved":3}"# + "\n"), "\(state)")
    }

    @Test func whileRunningIDsAreReservedAhead() throws {
        let fixture = try JournalFixture()
        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        defer { journal.shutdown() }
        let state = try String(contentsOfFile: fixture.path + ".state", encoding: .utf8)
        #expect(state.contains(#""reserved":1048576"#), "\(state)")
    }

    @Test func anEmptyActiveFileAfterACrashContinuesPastTheReservation() throws {
        let fixture = try JournalFixture()
        try fixture.store(["a", "b", "c"])
        // What a crash leaves: the state of a running server, holding a reservation; and a
        // rotation tool that moved the active file away.
        try Data(#"{"last_id":3,"issued":40,"reserved":5000}"#.utf8).write(
            to: URL(fileURLWithPath: fixture.path + ".state")
        )
        try FileManager.default.moveItem(atPath: fixture.path, toPath: fixture.path + ".old")

        let collector = CompletedBatches()
        let journal = try fixture.open(collector: collector)
        #expect(journal.recovery.continuedFromState)
        #expect(journal.nextID == 5001)
        let batch = fixture.batch(["d"])
        journal.submit(batch)
        #expect(collector.wait(for: 1).first?.outcome == .stored)
        journal.shutdown()
        #expect(try fixture.ids() == [5001])
    }

    @Test func idsIssuedPastTheFileAreNotReusedAfterACrash() throws {
        let fixture = try JournalFixture()
        try fixture.store(["a", "b", "c"])
        // A failed group burned ids 4 to 7 (its bytes may have been seen before the cut), then
        // the server crashed: the file ends at 3, the state knows 7 were issued.
        try Data(#"{"last_id":3,"issued":7,"reserved":5000}"#.utf8)
            .write(to: URL(fileURLWithPath: fixture.path + ".state"))
        let journal = try fixture.open(collector: CompletedBatches())
        #expect(journal.nextID == 8)
        #expect(!journal.recovery.continuedFromState)
        journal.shutdown()
    }

    @Test func aBrokenStateFileIsRefusedNotIgnored() throws {
        let fixture = try JournalFixture()
        try fixture.store(["a"])
        try Data("not a state".utf8).write(to: URL(fileURLWithPath: fixture.path + ".state"))
        let error = #expect(throws: JournalError.self) { try fixture.open(collector: CompletedBatches()).shutdown() }
        #expect(error?.message.contains("not a journal state file") == true)
    }

    @Test func theQueueIsBoundedInBytesAsWellAsRecords() throws {
        let fixture = try JournalFixture()
        let journal = try Journal(
            path: fixture.path,
            policy: .always,
            maxQueuedRecords: 1000,
            maxQueuedBytes: 10_000,
            completion: { _ in }
        )
        defer { journal.shutdown() }
        #expect(!journal.isSaturated)
        #expect(!journal.isSaturated(adding: 9_999))
        #expect(journal.isSaturated(adding: 10_000))
        let batch = fixture.batch([String(repeating: "x", count: 500)])
        #expect(batch.byteCount > 500)  // the record's bytes, not its count, are what is budgeted
    }
}
