import GatehouseSystem

/// What the journal thread does when the disk fails: cut back, set the file aside, write again.
extension Journal {
    /// After a failed write: cut the partial group off and make the cut durable. The page cache
    /// is still trusted (no writeback failed), so the file stays, unless the flush fails.
    func cutBack(_ s: inout WriterState, _ pending: inout [JournalEvent]) {
        do { try FileIO.truncate(s.fd, to: s.size) } catch {
            s.needsSetAside = true
            return
        }
        do { try FileIO.fdatasync(s.fd) } catch {
            syncFailed("\(error)", &s, &pending)
            return
        }
        markDurable(&s)
        saveState(&s, reserved: s.reserved, &pending)  // the failed group's ids are burned
    }

    /// A flush failed: Linux may have dropped the pages it could not write and reports the
    /// error once, so a retry would "succeed" over lost data. Never trust this file's cache
    /// again: set it aside now (or on the next group, if that fails too).
    func syncFailed(_ why: String, _ s: inout WriterState, _ pending: inout [JournalEvent]) {
        pending.append(.syncFailed(why, atRisk: s.atRisk))
        s.needsSetAside = true
        _ = setAside(&s, &pending)
    }

    /// Cuts the failed file back to what its last good flush covered (under `interval`; under
    /// `always` and `never`, to the stored records), flushes the cut, renames it to the next
    /// segment and starts a fresh active file, into which the records acknowledged since the
    /// last good flush are written again from memory and flushed. Each step that fails leaves
    /// `needsSetAside` set, and the next group or the idle timer tries again; until then every
    /// message is answered UNAVAILABLE. Returns whether the journal is writable again.
    @discardableResult
    func setAside(_ s: inout WriterState, _ pending: inout [JournalEvent]) -> Bool {
        var keep = s.size
        if case .interval = policy { keep = s.durableSize }
        var segment: String?
        if !s.setAsideRenamed {
            do {
                try FileIO.truncate(s.fd, to: keep)
                try FileIO.fdatasync(s.fd)
                if keep > 0 {
                    let next = JournalSegments.name(
                        of: path,
                        number: (JournalSegments.list(path).last?.number ?? 0) + 1
                    )
                    try FileIO.rename(path, to: next)
                    segment = next
                    s.setAsideRenamed = true
                }
            } catch {
                return false
            }
        }
        if s.setAsideRenamed {
            do {
                s.file = try FileIO.openForAppending(path, mode: 0o600)  // the old one closes here
                s.setAsideRenamed = false
            } catch {
                return false
            }
        }
        // The rename, the new file (or one whose creation a failed folder fsync left unsure)
        // must be durable before a record in it is acknowledged.
        do { try FileIO.syncDirectory(holding: path) } catch { return false }
        s.size = 0
        s.durableSize = 0
        let rewritten = s.atRisk
        if !s.unsyncedTail.isEmpty {
            do {
                try FileIO.writeAll(s.fd, s.unsyncedTail)
                try FileIO.fdatasync(s.fd)
            } catch {
                return false  // the fresh file failed too: it is cut back to nothing next time
            }
            s.size = s.unsyncedTail.count
        }
        markDurable(&s)
        s.needsSetAside = false
        pending.append(.setAside(segment: segment, keptBytes: keep, rewritten: rewritten))
        saveState(&s, reserved: s.reserved, &pending)
        return true
    }
}
