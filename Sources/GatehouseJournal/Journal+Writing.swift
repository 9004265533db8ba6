import GatehouseSystem

/// The journal thread's file state. Only that thread touches it after `init`.
struct WriterState: ~Copyable {
    /// The active file; replacing it closes the old one.
    var file: OwnedFD
    var fd: Int32 { file.raw }
    var nextID: UInt64
    /// The last stored record and its digest (nil: the chain starts from genesis).
    var lastID: UInt64
    var digest: JournalDigest?
    /// The highest id the state file allows to hand out.
    var reserved: UInt64
    /// Bytes of stored records in the active file.
    var size: Int
    /// The part of the active file a successful fdatasync covered, and the last id in it.
    var durableSize: Int
    var durableID: UInt64
    var lastSync: UInt64 = 0
    var unsynced = false
    /// Under `interval`: the records written since the last good flush, kept to write them again
    /// if that flush fails (a failed fdatasync may have dropped their pages from the cache).
    var unsyncedTail: [UInt8] = []
    /// A flush of the active file failed: it is not written again until `setAside` has cut it
    /// back and put a fresh file in its place.
    var needsSetAside = false
    /// `setAside` renamed the failed file already, but could not yet open the fresh one.
    var setAsideRenamed = false
    var failing = false
    var output: [UInt8] = []

    init(file: consuming OwnedFD, nextID: UInt64, lastID: UInt64, digest: JournalDigest?, reserved: UInt64, size: Int) {
        self.file = file
        self.nextID = nextID
        self.lastID = lastID
        self.digest = digest
        self.reserved = reserved
        self.size = size
        self.durableSize = size
        self.durableID = lastID
    }

    /// The acknowledged ids a failed flush leaves without durability (`interval`), if any.
    var atRisk: ClosedRange<UInt64>? { unsyncedTail.isEmpty || durableID >= lastID ? nil : (durableID + 1)...lastID }
}

/// Under `interval`, flush early once this much is unflushed, so the copy kept for a rewrite
/// stays bounded.
private let maxUnsyncedTail = 64 << 20

extension Journal {
    /// Writes one group: ids, digests, one write, one flush under the policy. Sets each batch's
    /// outcome. On the journal thread.
    func write(_ batches: [JournalBatch]) {
        var pending: [JournalEvent] = []
        state.withLock { s in
            if s.needsSetAside && !setAside(&s, &pending) {
                fail(batches, "the journal file could not be replaced after a failed flush", &s, &pending)
                return
            }
            var records = 0
            for batch in batches { records += batch.count }
            if s.nextID + UInt64(records) - 1 > s.reserved {
                let reserved = s.nextID + UInt64(records) - 1 + JournalState.reservation
                do {
                    // The last id known durable: a power loss may yet take the others away, and
                    // a journal that ends before the state's last id is refused at start.
                    try JournalState(lastID: s.durableID, digest: nil, issued: s.nextID - 1, reserved: reserved)
                        .save(for: path)
                    s.reserved = reserved
                } catch {
                    fail(batches, "cannot reserve ids in the state file: \(error)", &s, &pending)
                    return
                }
            }
            let streamUpdates = decideStreams(batches)
            let (end, digest) = encode(batches, &s)
            let started = Process.monotonicNanoseconds()
            do { try FileIO.writeAll(s.fd, s.output) } catch {
                s.nextID = end  // some of these bytes may be in the file: their ids are never reused
                fail(batches, "\(error)", &s, &pending)
                cutBack(&s, &pending)
                return
            }
            var flushed = false
            do {
                switch policy {
                case .always:
                    try FileIO.fdatasync(s.fd)
                    flushed = true
                case .interval(let ms):
                    if monotonicMs() - s.lastSync >= UInt64(ms) || s.unsyncedTail.count > maxUnsyncedTail {
                        try FileIO.fdatasync(s.fd)
                        flushed = true
                    }
                case .never:
                    break
                }
            } catch {
                s.nextID = end
                fail(batches, "\(error)", &s, &pending)
                syncFailed("\(error)", &s, &pending)
                return
            }
            flushSeconds.observe(Double(Process.monotonicNanoseconds() &- started) / 1e9)
            batchMessages.observe(Double(records))
            s.size += s.output.count
            let written = Int(end - s.nextID)
            s.nextID = end
            s.lastID = end - 1
            s.digest = digest
            recordsWritten.add(written, ordering: .relaxed)
            if !streamUpdates.isEmpty {
                let now = StreamFields.nowSeconds()
                streams.withLock { table in
                    for (key, seq) in streamUpdates { table.note(key, seq: seq, time: now) }
                }
            }
            if flushed {
                markDurable(&s)
            } else if case .interval = policy {
                s.unsynced = true
                s.unsyncedTail.append(contentsOf: s.output)
            }
            for batch in batches { batch.outcome = .stored }
            if s.failing { pending.append(.recovered) }
            s.failing = false
            if s.output.capacity > 4 << 20 { s.output = [] }  // do not keep a burst's buffer forever
        }
        for event in pending { events(event) }
    }

    /// Serializes the group into `s.output`: `{"id":N` + the batch's bytes + `,"h":"…"}` LF per
    /// record. Returns the id after the group and the digest of its last record.
    private func encode(_ batches: [JournalBatch], _ s: inout WriterState) -> (UInt64, JournalDigest?) {
        s.output.removeAll(keepingCapacity: true)
        var id = s.nextID
        var digest = s.digest ?? .genesis
        for batch in batches {
            batch.firstID = id
            let skips = !batch.results.isEmpty
            batch.tails.withUnsafeBytes { tails in
                var start = 0
                for (i, end) in batch.ends.enumerated() {
                    if skips && batch.results[i] != .written {
                        start = end
                        continue
                    }
                    let recordStart = s.output.count
                    s.output.append(contentsOf: JournalBatch.idPrefix)
                    JSON.appendDecimal(id, to: &s.output)
                    s.output.append(contentsOf: UnsafeRawBufferPointer(rebasing: tails[start..<end]))
                    digest = s.output.withUnsafeBytes {
                        digest.next(UnsafeRawBufferPointer(rebasing: $0[recordStart...]))
                    }
                    s.output.append(contentsOf: RecordLine.hKey)
                    digest.appendHex(to: &s.output)
                    s.output.append(contentsOf: RecordLine.end)
                    start = end
                    id += 1
                }
            }
        }
        return (id, id == s.nextID ? s.digest : digest)
    }

    /// Decides for each stream record of the group whether it is written (`StreamDecision`),
    /// from the stream table. Returns the streams' last numbers once the group is stored. On the
    /// journal thread.
    private func decideStreams(_ batches: [JournalBatch]) -> [StreamKey: UInt64] {
        guard batches.contains(where: { !$0.streamRecords.isEmpty }) else { return [:] }
        return streams.withLock { table in
            StreamDecision.decide(batches) { table.entries[$0]?.last ?? 0 }
        }
    }

    /// Saves the stream table beside the journal, forgetting streams past their retention.
    /// Called before the active file stops being the one start-up scans (rotation, reopen) and
    /// at shutdown. On the journal thread.
    @discardableResult
    func saveStreams(_ pending: inout [JournalEvent]) -> Bool {
        let table = streams.withLock { table in
            table.forget(olderThan: streamRetention, now: StreamFields.nowSeconds())
            return table
        }
        do {
            try table.save(for: path)
            return true
        } catch {
            pending.append(.writeFailed("cannot update \(StreamTable.path(for: path)): \(error)"))
            return false
        }
    }

    func fail(_ batches: [JournalBatch], _ why: String, _ s: inout WriterState, _ pending: inout [JournalEvent]) {
        failures.add(1, ordering: .relaxed)
        for batch in batches { batch.outcome = .failed(why) }
        if !s.failing { pending.append(.writeFailed(why)) }
        s.failing = true
    }

    func markDurable(_ s: inout WriterState) {
        s.durableSize = s.size
        s.durableID = s.lastID
        s.unsyncedTail.removeAll(keepingCapacity: s.unsyncedTail.capacity <= 4 << 20)
        s.unsynced = false
        s.lastSync = monotonicMs()
        flushes.add(1, ordering: .relaxed)
    }

    func syncIfDue() {
        var pending: [JournalEvent] = []
        state.withLock { s in
            if s.needsSetAside {
                if setAside(&s, &pending) && s.failing {
                    pending.append(.recovered)
                    s.failing = false
                }
                return
            }
            guard case .interval(let ms) = policy, s.unsynced, monotonicMs() - s.lastSync >= UInt64(ms) else { return }
            do { try FileIO.fdatasync(s.fd) } catch {
                syncFailed("\(error)", &s, &pending)
                return
            }
            markDurable(&s)
        }
        for event in pending { events(event) }
    }

    /// Rolls the active file into the next numbered segment once it is over `maxBytes`.
    /// Runs between groups on the journal thread: no record is split, lost or written twice,
    /// and workers keep queueing meanwhile.
    func rotateIfDue() {
        guard let maxBytes else { return }
        var pending: [JournalEvent] = []
        state.withLock { s in
            guard s.size >= maxBytes, !s.needsSetAside else { return }
            if s.unsynced {
                do { try FileIO.fdatasync(s.fd) } catch {
                    syncFailed("\(error)", &s, &pending)  // which rolls the file over as well
                    return
                }
                markDurable(&s)
            }
            // The streams of the active file must be in the table's file before the file is
            // renamed out of start-up's scan.
            guard saveStreams(&pending) else { return }
            let number = (JournalSegments.list(path).last?.number ?? 0) + 1
            let segment = JournalSegments.name(of: path, number: number)
            do { try FileIO.rename(path, to: segment) } catch {
                pending.append(.writeFailed("cannot rotate journal to \(segment): \(error)"))
                return
            }
            do {
                s.file = try FileIO.openForAppending(path, mode: 0o600)  // the old one closes here
            } catch {
                // Keep writing to the renamed file rather than stop: nothing is lost, the next
                // rotation tries again.
                try? FileIO.rename(segment, to: path)
                return
            }
            s.size = 0
            s.durableSize = 0
            // The new name and the new file must be durable before a record in it is acknowledged.
            do { try FileIO.syncDirectory(holding: path) } catch {
                syncFailed("fsync of the journal's folder: \(error)", &s, &pending)
                return
            }
            saveState(&s, reserved: s.reserved, &pending)
            pending.append(.rotated(segment: segment))
        }
        for event in pending { events(event) }
    }

    func reopenFile() {
        var pending: [JournalEvent] = []
        state.withLock { s in
            // The moved-away file leaves start-up's scan: its streams go to the table's file.
            saveStreams(&pending)
            if s.unsynced {
                do {
                    try FileIO.fdatasync(s.fd)
                    markDurable(&s)
                } catch {
                    // The rotation tool owns the old file now; writing the records again here
                    // would give their ids a second copy. Say which ones may be gone.
                    if let risk = s.atRisk {
                        pending.append(.mayBeLost(risk, "fdatasync of the moved-away file: \(error)"))
                    }
                    markDurable(&s)
                }
            }
            do {
                let fresh = try FileIO.openForAppending(path, mode: 0o600)
                try FileIO.syncDirectory(holding: path)
                let size = try FileIO.size(fresh.raw)
                s.file = fresh  // the old one closes here
                s.size = size
                s.durableSize = size
                s.needsSetAside = false
                s.setAsideRenamed = false
            } catch {
                pending.append(.writeFailed("cannot reopen \(path); still writing to the old file: \(error)"))
                return
            }
            // The moved-away file may be renamed or deleted by the tool: the state keeps its ids.
            saveState(&s, reserved: s.reserved, &pending)
            pending.append(.reopened)
        }
        for event in pending { events(event) }
    }

    /// Flushes at shutdown and records the exact last id: a clean stop reserves nothing.
    func finish() {
        var pending: [JournalEvent] = []
        state.withLock { s in
            if s.needsSetAside { setAside(&s, &pending) }
            if s.unsynced {
                do {
                    try FileIO.fdatasync(s.fd)
                    markDurable(&s)
                } catch {
                    syncFailed("\(error)", &s, &pending)
                }
            }
            if s.needsSetAside, let risk = s.atRisk {
                pending.append(.mayBeLost(risk, "the journal could not be flushed or rewritten at shutdown"))
            }
            saveState(&s, reserved: s.nextID - 1, &pending)
            saveStreams(&pending)
        }
        for event in pending { events(event) }
    }

    /// Records the last durable id (with its digest when it is the last stored record) and the
    /// reservation.
    func saveState(_ s: inout WriterState, reserved: UInt64, _ pending: inout [JournalEvent]) {
        let exact = s.durableID == s.lastID
        let state = JournalState(
            lastID: s.durableID,
            digest: exact ? s.digest : nil,
            issued: s.nextID - 1,
            reserved: reserved
        )
        do {
            try state.save(for: path)
            s.reserved = state.reserved
        } catch {
            pending.append(.writeFailed("cannot update \(JournalState.path(for: path)): \(error)"))
        }
    }

    func monotonicMs() -> UInt64 { Process.monotonicMilliseconds() }
}

extension JournalBatch {
    static let idPrefix: [UInt8] = Array(#"{"id":"#.utf8)
}
