import GatehouseSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The append-only journal and the one thread that writes it.
///
/// Workers call `submit` with a filled batch; the journal thread takes every batch waiting,
/// writes them with one `write`, flushes once under the policy (group commit), and hands the
/// batches back through `completion`, in submission order. Only the journal thread touches the file.
public final class Journal: Sendable {
    public let path: String
    public let policy: FsyncPolicy
    /// What opening the journal found (last id, torn bytes cut).
    public let recovery: JournalRecoveryReport

    private struct Queue {
        var batches: [JournalBatch] = []
        /// The journal thread is about to block on `wakeFD`: a submitter must signal it.
        var sleeping = false
        var stopping = false
    }

    private let queue = Mutex(Queue())
    private let fd: Int32
    private let wakeFD: Int32
    private let state: Mutex<WriterState>
    private let thread = Mutex<OSThread?>(nil)
    private let completion: @Sendable ([JournalBatch]) -> Void

    /// Counters, readable from any thread.
    private let recordsWritten = Atomic<Int>(0)
    private let flushes = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)

    /// Records stored, flushes done and failed groups so far.
    public var statistics: (records: Int, flushes: Int, failures: Int) {
        (recordsWritten.load(ordering: .relaxed), flushes.load(ordering: .relaxed), failures.load(ordering: .relaxed))
    }

    private struct WriterState {
        var nextID: UInt64
        var size: Int
        var lastSync: UInt64 = 0
        var unsynced = false
        var output: [UInt8] = []
    }

    /// Opens (creating if needed, mode 0600) and recovers the journal at `path`, then starts the
    /// journal thread. `completion` runs on the journal thread with each flushed group of batches.
    ///
    /// > Warning: blocks on file I/O for the recovery.
    public init(
        path: String, policy: FsyncPolicy, completion: @escaping @Sendable ([JournalBatch]) -> Void
    ) throws(JournalError) {
        self.path = path
        self.policy = policy
        self.completion = completion
        let owned: OwnedFD
        do { owned = try FileIO.open(path, flags: O_RDWR | O_CREAT | O_APPEND, mode: 0o600) } catch {
            throw JournalError("cannot open journal: \(error)")
        }
        let report = try JournalRecovery.recover(fd: owned.raw, path: path)
        let wake: OwnedFD
        do { wake = try EventFD.create() } catch { throw JournalError("\(error)") }
        // Both descriptors live as long as the journal; `deinit` closes them.
        self.fd = owned.release()
        self.wakeFD = wake.release()
        self.recovery = report
        self.state = Mutex(WriterState(nextID: report.lastID + 1, size: report.size))
        thread.withLock { $0 = OSThread(name: "gh-journal") { [self] in self.run() } }
    }

    deinit {
        close(fd)
        close(wakeFD)
    }

    /// Hands a batch to the journal thread. Called by workers; never blocks on I/O.
    public func submit(_ batch: JournalBatch) {
        let wake = queue.withLock { q -> Bool in
            q.batches.append(batch)
            let wake = q.sleeping
            q.sleeping = false
            return wake
        }
        if wake { EventFD.signal(wakeFD) }
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
            let (batches, stopping) = queue.withLock { q -> ([JournalBatch], Bool) in
                if q.batches.isEmpty && !q.stopping { q.sleeping = true }
                defer { q.batches.removeAll(keepingCapacity: true) }
                return (q.batches, q.stopping)
            }
            if batches.isEmpty {
                if stopping {
                    state.withLock { s in if s.unsynced { try? FileIO.fdatasync(fd) } }
                    return
                }
                EventFD.wait(wakeFD, timeoutMs: idleWaitMs())
                syncIfDue()
                continue
            }
            write(batches)
            completion(batches)
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
            if (try? FileIO.fdatasync(fd)) != nil {
                s.unsynced = false
                s.lastSync = monotonicMs()
                flushes.add(1, ordering: .relaxed)
            }
        }
    }

    private func write(_ batches: [JournalBatch]) {
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
                try FileIO.writeAll(fd, s.output)
                switch policy {
                case .always:
                    try FileIO.fdatasync(fd)
                    flushes.add(1, ordering: .relaxed)
                case .interval(let ms):
                    s.unsynced = true
                    if monotonicMs() - s.lastSync >= UInt64(ms) {
                        try FileIO.fdatasync(fd)
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
                // written and no unacknowledged record stays behind to be replayed as stored.
                try? FileIO.truncate(fd, to: s.size)
                failures.add(1, ordering: .relaxed)
                for batch in batches { batch.outcome = .failed(failure) }
            } else {
                s.size += s.output.count
                s.nextID = id
                recordsWritten.add(records, ordering: .relaxed)
                for batch in batches { batch.outcome = .stored }
            }
            if s.output.capacity > 4 << 20 { s.output = [] }  // do not keep a burst's buffer forever
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
