import Dispatch
import Foundation
import GatehouseJournal
import Synchronization
import TestSupport

/// Collects the batches a journal hands back, and lets a test wait for them with a deadline.
final class CompletedBatches: Sendable {
    private let batches = Mutex<[JournalBatch]>([])
    private let calls = Mutex<Int>(0)
    private let arrived = DispatchSemaphore(value: 0)

    /// The completion handler to give the journal.
    var handler: @Sendable ([JournalBatch]) -> Void {
        { [self] group in
            batches.withLock { $0.append(contentsOf: group) }
            calls.withLock { $0 += 1 }
            arrived.signal()
        }
    }

    /// All batches completed so far, in completion order.
    var all: [JournalBatch] { batches.withLock { $0 } }
    /// How many times the completion handler ran.
    var groups: Int { calls.withLock { $0 } }

    /// Waits until at least `count` batches have come back, or `seconds` pass; returns them.
    func wait(for count: Int, seconds: Double = 10) -> [JournalBatch] {
        let deadline = DispatchTime.now() + seconds
        while batches.withLock({ $0.count }) < count {
            if arrived.wait(timeout: deadline) == .timedOut { break }
        }
        return all
    }
}

/// A journal file in its own temporary folder, with helpers to write and read records.
final class JournalFixture {
    let directory: TemporaryDirectory
    let path: String
    var clock = JournalClock()

    init() throws {
        directory = try TemporaryDirectory(prefix: "gatehouse-journal")
        path = directory.file("journal.jsonl")
    }

    deinit { directory.remove() }

    /// Opens the journal at `path`; the caller must `shutdown()` it.
    func open(policy: FsyncPolicy = .always, collector: CompletedBatches) throws -> Journal {
        try Journal(path: path, policy: policy, completion: collector.handler)
    }

    /// A batch of one record per text, for user alice on connection 17.
    func batch(
        _ texts: [String],
        worker: Int = 0,
        user: String = "alice",
        peer: String = "127.0.0.1:5000",
        connection: UInt64 = 17,
        firstN: Int = 1
    ) -> JournalBatch {
        batch(
            bytes: texts.map { Array($0.utf8) },
            worker: worker,
            user: user,
            peer: peer,
            connection: connection,
            firstN: firstN
        )
    }

    func batch(
        bytes texts: [[UInt8]],
        worker: Int = 0,
        user: String = "alice",
        peer: String = "127.0.0.1:5000",
        connection: UInt64 = 17,
        firstN: Int = 1
    ) -> JournalBatch {
        let batch = JournalBatch(worker: worker)
        let fields = JSON.connectionFields(user: user, peer: peer, connection: connection)
        let time = clock.now()
        for (i, text) in texts.enumerated() {
            text.withUnsafeBytes {
                batch.append(time: time, connectionFields: fields, n: firstN + i, text: $0, owner: UInt64(i))
            }
        }
        return batch
    }

    /// Opens a journal, stores `texts` as one batch, waits for it and shuts the journal down.
    @discardableResult
    func store(_ texts: [String], policy: FsyncPolicy = .always) throws -> JournalBatch {
        let collector = CompletedBatches()
        let journal = try open(policy: policy, collector: collector)
        defer { journal.shutdown() }
        let batch = batch(texts)
        journal.submit(batch)
        guard collector.wait(for: 1).count == 1 else {
            throw TestSupportError("the journal did not complete the batch")
        }
        return batch
    }

    /// Removes the state file, as for a journal from before state files (or one whose state a
    /// crash left behind earlier than the file's edit in a test).
    func forgetState() {
        try? FileManager.default.removeItem(atPath: path + ".state")
    }

    /// The file's bytes.
    func contents() throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func append(_ bytes: [UInt8]) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
    }

    func replace(with bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// The file's lines (without their LF), each parsed as a JSON object. Throws if any is not one.
    func records() throws -> [[String: Any]] {
        let bytes = try contents()
        guard bytes.isEmpty || bytes.last == 0x0A else { throw TestSupportError("journal does not end in LF") }
        return try bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw TestSupportError("not a JSON object: \(String(decoding: line, as: UTF8.self))")
            }
            return object
        }
    }

    func ids() throws -> [Int] {
        try records().map { ($0["id"] as? Int) ?? -1 }
    }
}

extension JournalRecoveryReport {
    /// `[lastID, truncatedBytes, size]`, to compare a report in one expectation.
    var summary: [Int] { [Int(lastID), truncatedBytes, size] }
}
