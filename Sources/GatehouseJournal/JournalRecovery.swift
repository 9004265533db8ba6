import GatehouseSystem

/// What opening a journal found.
public struct JournalRecoveryReport: Sendable, Equatable {
    /// The id of the last stored record (in the active file, the newest segment, or per the
    /// state file), 0 if none.
    public var lastID: UInt64
    /// Bytes of a torn or damaged tail that were cut off (0 if the file ended cleanly).
    public var truncatedBytes: Int
    /// The active file's size after repair.
    public var size: Int
    /// The id the next record gets: past `lastID`, and past every id the state file reserved
    /// when the files that might hold them are gone (renamed or deleted by a rotation tool).
    public var nextID: UInt64 = 1
    /// Why a damaged tail was cut (the first bad record's fault), when one was.
    public var cutReason: String?
    /// The ids continue from the state file, not from a record found in the journal.
    public var continuedFromState = false
    /// The digest the next record chains from.
    public internal(set) var digest: JournalDigest?

    public init(lastID: UInt64, truncatedBytes: Int, size: Int) {
        self.lastID = lastID
        self.truncatedBytes = truncatedBytes
        self.size = size
        self.nextID = lastID + 1
    }
}

/// Checks the active journal file from start to end before the server accepts anyone: every
/// complete line must be a record whose id is greater than the one before and whose digest
/// follows from the previous record's. A torn or damaged tail (bad records with no good one
/// after them: a write cut by a crash) is truncated away; a bad record followed by good ones is
/// damage in the middle and is refused with its byte offset.
///
/// > Warning: blocking file I/O, done once at start-up. It reads the whole active file, which
/// > `--journal-max-bytes` keeps bounded.
enum JournalRecovery {
    /// Recovers the active file `fd` (at `path`), after records up to `previousID`.
    static func recover(
        fd: Int32,
        path: String,
        previousID: UInt64 = 0
    ) throws(JournalError) -> JournalRecoveryReport {
        let size: Int
        do { size = try FileIO.size(fd) } catch { throw JournalError("\(path): \(error)", cause: error) }
        // The first record of the file anchors the chain: its predecessor may be in a file that
        // an external rotation moved away (`journal verify` checks the joins between files).
        var check = RecordCheck(lastID: previousID, digest: nil)
        var goodEnd = 0
        var firstBad: (offset: Int, reason: String)?
        var goodAfterBad: Int?
        var previousStored: JournalDigest?
        _ = try LineReader.forEachLine(fd: fd, size: size, path: path) { line, offset in
            if firstBad == nil {
                switch check.check(line) {
                case .good: goodEnd = offset + line.count + 1
                case .bad(let reason, _): firstBad = (offset, reason)
                }
            } else if RecordCheck.parseID(line) != nil {
                // A record after the damage that follows from the line before it: the damage is
                // not a torn tail but in the middle of the file.
                if let (hashed, stored) = RecordLine.split(line) {
                    if let p = previousStored, p.next(hashed) == stored {
                        goodAfterBad = offset
                        return false
                    }
                } else if check.digest == nil {
                    goodAfterBad = offset  // a journal without digests: any record counts
                    return false
                }
            }
            previousStored = RecordLine.split(line)?.digest
            return true
        }
        if let bad = firstBad, let good = goodAfterBad {
            throw JournalError(
                "\(path): the record at byte offset \(bad.offset) is damaged (\(bad.reason)), and good records "
                    + "follow it (at byte offset \(good)); the journal is corrupt before its tail and was not "
                    + "opened. 'gatehouse-server journal verify' shows the details"
            )
        }
        let torn = size - goodEnd
        if torn > 0 {
            do { try FileIO.truncate(fd, to: goodEnd) } catch { throw JournalError("\(path): \(error)", cause: error) }
        }
        var report = JournalRecoveryReport(lastID: check.lastID, truncatedBytes: torn, size: goodEnd)
        report.digest = check.digest
        report.cutReason = firstBad.map { "\($0.reason), at byte offset \($0.offset)" }
        return report
    }

    /// Recovers the active file and decides the next id from it, the newest segment and the
    /// state file. Refuses a journal older than the state says.
    static func open(
        fd: Int32,
        path: String,
        state: JournalState?
    ) throws(JournalError) -> JournalRecoveryReport {
        let previous = try lastRecordInSegments(of: path)
        var report = try recover(fd: fd, path: path, previousID: previous.id)
        let activeHasRecords = report.size > 0
        if report.digest == nil && !activeHasRecords { report.digest = previous.digest }
        guard let state else { return report }
        if activeHasRecords && report.lastID < state.lastID {
            throw JournalError(
                "\(path) ends at id \(report.lastID), but \(JournalState.path(for: path)) says id \(state.lastID) "
                    + "was already stored: this journal is older than the server's state (restored from a "
                    + "backup, or a file from elsewhere?). Ids must never go back, so the server did not start. "
                    + "Put the newest journal back, or move the state file away to start from this journal anyway"
            )
        }
        if activeHasRecords && report.lastID < state.issued {
            // Ids past the file's end were handed out (a failed group's, or records a power
            // loss took under interval or never): never again.
            report.nextID = state.issued + 1
        }
        if !activeHasRecords && report.lastID < state.reserved {
            // The active file is empty or missing: a rotation tool may have moved away a file
            // holding any id up to the reservation. Continue past all of them.
            if state.lastID >= report.lastID { report.digest = state.digest ?? report.digest }
            report.lastID = max(report.lastID, state.lastID)
            report.nextID = state.reserved + 1
            report.continuedFromState = true
        }
        return report
    }

    /// The id and digest of the last record of the newest rolled segment of `path`, or 0 and
    /// nil when there is none.
    static func lastRecordInSegments(of path: String) throws(JournalError) -> (id: UInt64, digest: JournalDigest?) {
        guard let newest = JournalSegments.list(path).last else { return (0, nil) }
        let owned: OwnedFD
        do { owned = try FileIO.openForReading(newest.path) } catch { throw JournalError("\(error)", cause: error) }
        let size: Int
        do { size = try FileIO.size(owned.raw) } catch { throw JournalError("\(newest.path): \(error)", cause: error) }
        if size == 0 { return (0, nil) }
        // A segment is complete by construction; its last line is read backwards in one go.
        let window = min(size, 1 << 20)
        let tail: [UInt8]
        do { tail = try FileIO.read(owned.raw, count: window, at: size - window) } catch {
            throw JournalError("\(newest.path): \(error)")
        }
        var end = tail.count
        if end > 0 && tail[end - 1] == 0x0A { end -= 1 }
        let start = tail[..<end].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        let last = Array(tail[start..<end])
        let parsed = last.withUnsafeBytes { line -> (UInt64, JournalDigest?)? in
            guard let id = RecordCheck.parseID(line) else { return nil }
            return (id, RecordLine.split(line)?.digest)
        }
        guard let parsed else { throw JournalError("\(newest.path): the last record is not a journal record") }
        return parsed
    }
}

/// The rolled segments of a journal: `journal.jsonl.000001`, `journal.jsonl.000002`, …
enum JournalSegments {
    struct Segment {
        var number: Int
        var path: String
    }

    static func name(of path: String, number: Int) -> String {
        let digits = String(number)
        return path + "." + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The segments beside `path`, oldest first.
    static func list(_ path: String) -> [Segment] {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var out: [Segment] = []
        for name in FileIO.directoryEntries(dir.isEmpty ? "/" : dir) {
            guard name.hasPrefix(base + "."), let number = Int(name.dropFirst(base.count + 1)), number > 0 else {
                continue
            }
            out.append(Segment(number: number, path: (slash == nil ? "" : dir + "/") + name))
        }
        return out.sorted { $0.number < $1.number }
    }
}
