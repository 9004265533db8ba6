public import GatehouseSystem
import Synchronization

/// Something the journal did that an operator should see in the log.
public enum JournalEvent: Sendable, Equatable {
    /// The active file reached its size limit and was renamed to this segment.
    case rotated(segment: String)
    /// The active file was closed and opened again by path (SIGHUP).
    case reopened
    /// A write or flush failed; the group was cut back and answered UNAVAILABLE.
    case writeFailed(String)
    /// Writing works again after failures.
    case recovered
    /// fdatasync failed: the file's cached pages are no longer trusted and the file is set aside.
    /// `atRisk`: the ids acknowledged since the last good flush (`interval`), whose durability
    /// that flush was to provide.
    case syncFailed(String, atRisk: ClosedRange<UInt64>?)
    /// The file whose flush failed was cut back to `keptBytes` (its last good flush) and renamed
    /// to `segment` (nil when it kept nothing and was reused); writing goes on in a fresh active
    /// file, which starts with the acknowledged records `rewritten` from memory, flushed.
    case setAside(segment: String?, keptBytes: Int, rewritten: ClosedRange<UInt64>?)
    /// Acknowledged records whose flush failed and that could not be written again.
    case mayBeLost(ClosedRange<UInt64>, String)
}

/// The append-only journal and the one thread that writes it.
///
/// Workers call `submit` with a filled batch; the journal thread takes every batch waiting,
/// writes them with one `write`, flushes once under the policy (group commit), and hands the
/// batches back through `completion`, in submission order. Only the journal thread touches the
/// file after `init`.
public final class Journal: Sendable {
    public let path: String
    public let policy: FsyncPolicy
    /// Roll the active file into a numbered segment once it holds this many bytes (nil: never).
    public let maxBytes: Int?
    /// Records queued or being written past which `isSaturated` says workers should stop reading.
    public let maxQueuedRecords: Int
    /// Record bytes queued or being written past which `isSaturated` says the same.
    public let maxQueuedBytes: Int
    /// What opening the journal found (last id, torn bytes cut).
    public let recovery: JournalRecoveryReport
    /// Seconds after its last message before a stream may be forgotten.
    public let streamRetention: Int64
    /// Streams remembered at most (a new stream past it is refused when it is opened).
    public let maxStreams: Int
    /// Each stream's last stored number: written by the journal thread, read by workers.
    let streams: Mutex<StreamTable>

    /// The default `streamRetention`: 7 days.
    public static let defaultStreamRetention: Int64 = 7 * 86_400
    /// The default `maxStreams`.
    public static let defaultMaxStreams = 100_000

    /// The default `maxQueuedBytes`: 64 MiB. The journal holds at most about twice this (the
    /// queued batches, and the group being written), so 10,000 clients sending 64 KiB lines
    /// cost the journal side ~130 MiB however slow the disk, while one `fdatasync` still
    /// covers ~1,000 maximal lines.
    public static let defaultMaxQueuedBytes = 64 << 20

    struct Queue {
        var batches: [JournalBatch] = []
        /// The journal thread is about to block on `wakeFD`: a submitter must signal it.
        var sleeping = false
        var stopping = false
        var reopenRequested = false
    }

    let queue = Mutex(Queue())
    let wake: OwnedFD
    var wakeFD: Int32 { wake.raw }
    let state: Mutex<WriterState>
    private let thread = Mutex<OSThread?>(nil)
    let completion: @Sendable ([JournalBatch]) -> Void
    let events: @Sendable (JournalEvent) -> Void

    let queued = Atomic<Int>(0)
    let queuedBytes = Atomic<Int>(0)
    let recordsWritten = Atomic<Int>(0)
    let flushes = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
    /// Seconds one group's write and flush took (journal thread), for /metrics.
    public let flushSeconds = FixedHistogram(bounds: [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
    ])
    /// Messages per group written (group commit), for /metrics.
    public let batchMessages = FixedHistogram(bounds: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000])

    /// Records stored, flushes done and failed groups so far. Any thread.
    public var statistics: (records: Int, flushes: Int, failures: Int) {
        (recordsWritten.load(ordering: .relaxed), flushes.load(ordering: .relaxed), failures.load(ordering: .relaxed))
    }

    /// Whether the queue to the journal is full, in records or in bytes: workers stop reading
    /// from clients until it is not (backpressure; nothing is dropped). Any thread.
    public var isSaturated: Bool { isSaturated(adding: 0) }

    /// Whether the queue would be full with `pendingBytes` more (a worker's batch not yet
    /// submitted). Any thread.
    public func isSaturated(adding pendingBytes: Int) -> Bool {
        queued.load(ordering: .relaxed) >= maxQueuedRecords
            || queuedBytes.load(ordering: .relaxed) + pendingBytes >= maxQueuedBytes
    }

    /// Record bytes queued or being written now. Any thread.
    public var queuedByteCount: Int { queuedBytes.load(ordering: .relaxed) }

    /// Opens (creating if needed, mode 0600) and checks the journal at `path`, then starts the
    /// journal thread. `completion` runs on the journal thread with each flushed group of batches.
    ///
    /// > Warning: blocks on file I/O for the recovery.
    public init(
        path: String,
        policy: FsyncPolicy,
        maxBytes: Int? = nil,
        maxQueuedRecords: Int = 1 << 16,
        maxQueuedBytes: Int = Journal.defaultMaxQueuedBytes,
        streamRetention: Int64 = Journal.defaultStreamRetention,
        maxStreams: Int = Journal.defaultMaxStreams,
        events: @escaping @Sendable (JournalEvent) -> Void = { _ in },
        completion: @escaping @Sendable ([JournalBatch]) -> Void
    ) throws(JournalError) {
        self.path = path
        self.policy = policy
        self.maxBytes = maxBytes
        self.maxQueuedRecords = max(1, maxQueuedRecords)
        self.maxQueuedBytes = max(1, maxQueuedBytes)
        self.completion = completion
        self.events = events
        self.streamRetention = max(1, streamRetention)
        self.maxStreams = max(1, maxStreams)
        let saved = try JournalState.load(for: path)
        let owned: OwnedFD
        do { owned = try FileIO.openForAppending(path, mode: 0o600) } catch {
            throw JournalError("cannot open journal: \(error)")
        }
        let report = try JournalRecovery.open(fd: owned.raw, path: path, state: saved)
        // The streams: the table's file (written when a file leaves the active path), then the
        // stream records of the active file, which came after it.
        var table = try StreamTable.load(for: path)
        try table.scan(fd: owned.raw, path: path)
        table.forget(olderThan: self.streamRetention, now: StreamFields.nowSeconds())
        self.streams = Mutex(table)
        // Make the repair and the file's creation durable before anyone is told anything new,
        // and reserve the ids this run may hand out before it hands out any.
        let reserved = report.nextID - 1 + JournalState.reservation
        do {
            if report.truncatedBytes > 0 { try FileIO.fdatasync(owned.raw) }
            try FileIO.syncDirectory(holding: path)
            try JournalState(
                lastID: report.lastID,
                digest: report.digest,
                issued: report.nextID - 1,
                reserved: reserved
            )
            .save(for: path)
        } catch {
            throw JournalError("\(path): cannot make the journal durable at start: \(error)")
        }
        let wake: OwnedFD
        do { wake = try EventFD.create() } catch { throw JournalError("\(error)", cause: error) }
        // Both descriptors live as long as the journal, and close with it.
        self.wake = wake
        self.recovery = report
        self.state = Mutex(
            WriterState(
                file: owned,
                nextID: report.nextID,
                lastID: report.lastID,
                digest: report.digest,
                reserved: reserved,
                size: report.size
            )
        )
        thread.withLock { $0 = OSThread(name: "gh-journal") { [self] in self.run() } }
    }

    /// Hands a batch to the journal thread. Called by workers; never blocks on I/O.
    public func submit(_ batch: JournalBatch) {
        queued.add(batch.count, ordering: .relaxed)
        queuedBytes.add(batch.byteCount, ordering: .relaxed)
        let wake = queue.withLock { q -> Bool in
            q.batches.append(batch)
            let wake = q.sleeping
            q.sleeping = false
            return wake
        }
        if wake { EventFD.signal(wakeFD) }
    }

    /// Asks the journal thread to close the file and open `path` again (after an external
    /// rotation tool moved it). Any thread; returns at once.
    public func reopen() {
        queue.withLock {
            $0.reopenRequested = true
            $0.sleeping = false
        }
        EventFD.signal(wakeFD)
    }

    /// Writes what is queued, flushes, records the state, stops the thread and waits for it.
    public func shutdown() {
        queue.withLock { $0.stopping = true }
        EventFD.signal(wakeFD)
        thread.takeAndJoin()
    }

    /// The last number stored in stream `key` (0 for a stream it does not know). Any thread.
    public func streamLast(_ key: StreamKey) -> UInt64 {
        streams.withLock { $0.entries[key]?.last ?? 0 }
    }

    /// Whether `key` may be opened: the journal remembers it, or has room for one more stream.
    /// Any thread.
    public func canOpenStream(_ key: StreamKey) -> Bool {
        streams.withLock { $0.entries[key] != nil || $0.entries.count < maxStreams }
    }

    /// Streams remembered now. Any thread.
    public var streamCount: Int { streams.withLock { $0.entries.count } }

    /// The id the next stored record will get.
    public var nextID: UInt64 { state.withLock { $0.nextID } }

    // MARK: the journal thread

    private func run() {
        while true {
            let (batches, stopping, reopen) = queue.withLock { q -> ([JournalBatch], Bool, Bool) in
                if q.batches.isEmpty && !q.stopping && !q.reopenRequested { q.sleeping = true }
                let reopen = q.reopenRequested
                q.reopenRequested = false
                defer { q.batches.removeAll(keepingCapacity: true) }
                return (q.batches, q.stopping, reopen)
            }
            if reopen { reopenFile() }
            if batches.isEmpty {
                if stopping {
                    finish()
                    return
                }
                if reopen { continue }
                EventFD.wait(wakeFD, timeoutMs: idleWaitMs())
                syncIfDue()
                continue
            }
            write(batches)
            var records = 0
            var bytes = 0
            for batch in batches {
                records += batch.count
                bytes += batch.byteCount
            }
            queued.add(-records, ordering: .relaxed)
            queuedBytes.add(-bytes, ordering: .relaxed)
            completion(batches)
            rotateIfDue()
        }
    }

    /// How long to sleep with nothing to do: forever, unless an interval flush is owed or a
    /// failed file waits to be set aside.
    private func idleWaitMs() -> Int32 {
        state.withLock { s in
            if s.needsSetAside { return 1000 }
            guard case .interval(let ms) = policy else { return -1 }
            return s.unsynced ? Int32(ms) : -1
        }
    }
}
