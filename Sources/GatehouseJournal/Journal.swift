import GatehouseSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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
    /// What opening the journal found (last id, torn bytes cut).
    public let recovery: JournalRecoveryReport

    private struct Queue {
        var batches: [JournalBatch] = []
        /// The journal thread is about to block on `wakeFD`: a submitter must signal it.
        var sleeping = false
        var stopping = false
        var reopenRequested = false
    }

    private struct WriterState {
        var fd: Int32
        var nextID: UInt64
        var size: Int
        var lastSync: UInt64 = 0
        var unsynced = false
        var failing = false
        var output: [UInt8] = []
    }

    private let queue = Mutex(Queue())
    private let wakeFD: Int32
    private let state: Mutex<WriterState>
    private let thread = Mutex<OSThread?>(nil)
    private let completion: @Sendable ([JournalBatch]) -> Void
    private let events: @Sendable (JournalEvent) -> Void

    private let queued = Atomic<Int>(0)
    private let recordsWritten = Atomic<Int>(0)
    private let flushes = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)

    /// Records stored, flushes done and failed groups so far. Any thread.
    public var statistics: (records: Int, flushes: Int, failures: Int) {
        (recordsWritten.load(ordering: .relaxed), flushes.load(ordering: .relaxed), failures.load(ordering: .relaxed))
    }

    /// Whether the queue to the journal is full: workers stop reading from clients until it is
    /// not (backpressure; nothing is dropped). Any thread.
    public var isSaturated: Bool { queued.load(ordering: .relaxed) >= maxQueuedRecords }

    /// Opens (creating if needed, mode 0600) and checks the journal at `path`, then starts the
    /// journal thread. `completion` runs on the journal thread with each flushed group of batches.
    ///
    /// > Warning: blocks on file I/O for the recovery.
    public init(
        path: String,
        policy: FsyncPolicy,
        maxBytes: Int? = nil,
        maxQueuedRecords: Int = 1 << 16,
        events: @escaping @Sendable (JournalEvent) -> Void = { _ in },
        completion: @escaping @Sendable ([JournalBatch]) -> Void
    ) throws(JournalError) {
        self.path = path
        self.policy = policy
        self.maxBytes = maxBytes
        self.maxQueuedRecords = max(1, maxQueuedRecords)
        self.completion = completion
        self.events = events
        let previous = try JournalRecovery.lastIDInSegments(of: path)
        let owned: OwnedFD
        do { owned = try FileIO.open(path, flags: O_RDWR | O_CREAT | O_APPEND, mode: 0o600) } catch {
            throw JournalError("cannot open journal: \(error)")
        }
        let report = try JournalRecovery.recover(fd: owned.raw, path: path, previousID: previous)
        if report.truncatedBytes > 0 {
            // Make the repair itself durable before anyone is told anything new.
            try? FileIO.fdatasync(owned.raw)
        }
        let wake: OwnedFD
        do { wake = try EventFD.create() } catch { throw JournalError("\(error)") }
        // Both descriptors live as long as the journal; `deinit` closes them.
        self.wakeFD = wake.release()
        self.recovery = report
        self.state = Mutex(WriterState(fd: owned.release(), nextID: report.lastID + 1, size: report.size))
        thread.withLock { $0 = OSThread(name: "gh-journal") { [self] in self.run() } }
    }

    deinit {
        state.withLock { _ = close($0.fd) }
        close(wakeFD)
    }

    /// Hands a batch to the journal thread. Called by workers; never blocks on I/O.
    public func submit(_ batch: JournalBatch) {
        queued.add(batch.count, ordering: .relaxed)
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

    /// Writes what is queued, flushes, stops the thread and waits for it.
    public func shutdown() {
        queue.withLock { $0.stopping = true }
        EventFD.signal(wakeFD)
        let t = thread.withLock { t -> OSThread? in
            defer { t = nil }
            return t
        }
        t?.join()
    }

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
                    state.withLock { s in if s.unsynced { try? FileIO.fdatasync(s.fd) } }
                    return
                }
                if reopen { continue }
                EventFD.wait(wakeFD, timeoutMs: idleWaitMs())
                syncIfDue()
                continue
            }
            write(batches)
            var records = 0
            for batch in batches { records += batch.count }
            queued.add(-records, ordering: .relaxed)
            completion(batches)
            rotateIfDue()
        }
    }

    /// How long to sleep with nothing to do: forever, unless an interval flush is owed.
    private func idleWaitMs() -> Int32 {
        guard case .interval(let ms) = policy else { return -1 }
        return state.withLock { $0.unsynced } ? Int32(ms) : -1
    }

    private func syncIfDue() {
        guard case .interval(let ms) = policy else { return }
        state.withLock { s in
            guard s.unsynced, monotonicMs() - s.lastSync >= UInt64(ms) else { return }
            if (try? FileIO.fdatasync(s.fd)) != nil {
                s.unsynced = false
                s.lastSync = monotonicMs()
                flushes.add(1, ordering: .relaxed)
            }
        }
    }

    private func write(_ batches: [JournalBatch]) {
        var event: JournalEvent?
        state.withLock { s in
            s.output.removeAll(keepingCapacity: true)
            var id = s.nextID
            var records = 0
            for batch in batches {
                batch.firstID = id
                batch.tails.withUnsafeBytes { tails in
                    var start = 0
                    for end in batch.ends {
                        s.output.append(contentsOf: JournalBatch.idPrefix)
                        JSON.appendDecimal(id, to: &s.output)
                        s.output.append(contentsOf: UnsafeRawBufferPointer(rebasing: tails[start..<end]))
                        start = end
                        id += 1
                    }
                }
                records += batch.count
            }
            var failure: String?
            do {
                try FileIO.writeAll(s.fd, s.output)
                switch policy {
                case .always:
                    try FileIO.fdatasync(s.fd)
                    flushes.add(1, ordering: .relaxed)
                case .interval(let ms):
                    s.unsynced = true
                    if monotonicMs() - s.lastSync >= UInt64(ms) {
                        try FileIO.fdatasync(s.fd)
                        s.unsynced = false
                        s.lastSync = monotonicMs()
                        flushes.add(1, ordering: .relaxed)
                    }
                case .never:
                    break
                }
            } catch {
                failure = "\(error)"
            }
            if let failure {
                // Cut back whatever part of the group reached the file, so no record is half
                // written and no unacknowledged record stays behind to be taken as stored.
                try? FileIO.truncate(s.fd, to: s.size)
                failures.add(1, ordering: .relaxed)
                for batch in batches { batch.outcome = .failed(failure) }
                if !s.failing { event = .writeFailed(failure) }
                s.failing = true
            } else {
                s.size += s.output.count
                s.nextID = id
                recordsWritten.add(records, ordering: .relaxed)
                for batch in batches { batch.outcome = .stored }
                if s.failing { event = .recovered }
                s.failing = false
            }
            if s.output.capacity > 4 << 20 { s.output = [] }  // do not keep a burst's buffer forever
        }
        if let event { events(event) }
    }

    /// Rolls the active file into the next numbered segment once it is over `maxBytes`.
    /// Runs between groups on the journal thread: no record is split, lost or written twice,
    /// and workers keep queueing meanwhile.
    private func rotateIfDue() {
        guard let maxBytes else { return }
        var rotatedTo: String?
        state.withLock { s in
            guard s.size >= maxBytes else { return }
            if s.unsynced { try? FileIO.fdatasync(s.fd) }
            let number = (JournalSegments.list(path).last?.number ?? 0) + 1
            let segment = JournalSegments.name(of: path, number: number)
            guard rename(path, segment) == 0 else {
                events(.writeFailed("cannot rotate journal to \(segment): \(String(cString: strerror(errno)))"))
                return
            }
            guard let fresh = try? FileIO.open(path, flags: O_RDWR | O_CREAT | O_APPEND, mode: 0o600) else {
                // Keep writing to the renamed file rather than stop: nothing is lost, the next
                // rotation tries again.
                _ = rename(segment, path)
                return
            }
            close(s.fd)
            s.fd = fresh.release()
            s.size = 0
            s.unsynced = false
            syncDirectory()
            rotatedTo = segment
        }
        if let rotatedTo { events(.rotated(segment: rotatedTo)) }
    }

    private func reopenFile() {
        let opened = state.withLock { s -> Bool in
            if s.unsynced { try? FileIO.fdatasync(s.fd) }
            guard let fresh = try? FileIO.open(path, flags: O_RDWR | O_CREAT | O_APPEND, mode: 0o600) else {
                return false
            }
            let size = (try? FileIO.size(fresh.raw)) ?? 0
            close(s.fd)
            s.fd = fresh.release()
            s.size = size
            s.unsynced = false
            return true
        }
        events(opened ? .reopened : .writeFailed("cannot reopen \(path); still writing to the old file"))
    }

    /// Makes a rename durable: fsync the folder that holds the journal.
    private func syncDirectory() {
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        if let fd = try? FileIO.open(dir.isEmpty ? "/" : dir, flags: O_RDONLY | O_DIRECTORY) {
            _ = fsync(fd.raw)
        }
    }

    private func monotonicMs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}

extension JournalBatch {
    static let idPrefix: [UInt8] = Array(#"{"id":"#.utf8)
}
