import GatehouseSystem

/// Checks record lines one after another, as recovery and `journal verify` read them: each must
/// be a record `{"id":N,…}` with an id greater than the one before, and, once records carry
/// digests, a digest that follows from the previous record's.
struct RecordCheck {
    /// The id of the last good record (or the id the chain is known to continue from).
    var lastID: UInt64
    /// The digest of the last good record; nil while unknown (the start of a file whose
    /// predecessor is not at hand, or a journal written before digests), so the next record
    /// with a digest is taken as the chain's anchor.
    var digest: JournalDigest?

    enum Verdict: Equatable {
        case good(id: UInt64, digest: JournalDigest?)
        /// The record does not follow: `reason` says how. `id` when the line has one.
        case bad(reason: String, id: UInt64?)
    }

    init(lastID: UInt64 = 0, digest: JournalDigest? = nil) {
        self.lastID = lastID
        self.digest = digest
    }

    /// Checks one line (without its LF) and, when good, moves past it.
    mutating func check(_ line: UnsafeRawBufferPointer) -> Verdict {
        let verdict = RecordCheck.judge(line, lastID: lastID, previous: digest)
        if case .good(let id, let h) = verdict {
            lastID = id
            digest = h
        }
        return verdict
    }

    /// The verdict on `line` after a record with `lastID` and digest `previous`.
    static func judge(_ line: UnsafeRawBufferPointer, lastID: UInt64, previous: JournalDigest?) -> Verdict {
        guard let id = parseID(line) else { return .bad(reason: "not a journal record", id: nil) }
        guard let (hashed, stored) = RecordLine.split(line) else {
            // Records from before digests carry none; once the chain has begun, every one must.
            if previous != nil { return .bad(reason: "no digest (\"h\") where the chain expects one", id: id) }
            guard id > lastID else { return .bad(reason: "id \(id) is not greater than \(lastID)", id: id) }
            return .good(id: id, digest: nil)
        }
        guard id > lastID else { return .bad(reason: "id \(id) is not greater than \(lastID)", id: id) }
        if let previous, previous.next(hashed) != stored {
            return .bad(reason: "digest does not follow from the record before (changed, removed or reordered)", id: id)
        }
        return .good(id: id, digest: stored)
    }

    /// The id of a record line `{"id":N,...}`, or nil if the line is not one.
    static func parseID(_ line: UnsafeRawBufferPointer) -> UInt64? {
        let prefix = JournalBatch.idPrefix
        guard line.count > prefix.count + 1, line.last == 0x7D else { return nil }
        for (i, b) in prefix.enumerated() where line[i] != b { return nil }
        var value: UInt64 = 0
        var digits = 0
        for b in line[prefix.count...] {
            guard b >= 0x30 && b <= 0x39 else { break }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
            guard !o1 && !o2 else { return nil }
            value = a
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}

/// Reads a file line by line in large chunks, handing each complete line with its byte offset.
///
/// > Warning: blocking file I/O.
enum LineReader {
    /// Calls `body` with each complete line (LF excluded) and its offset; stops when `body`
    /// returns false. Returns the offset just past the last complete line.
    static func forEachLine(
        fd: Int32,
        size: Int,
        path: String,
        _ body: (UnsafeRawBufferPointer, Int) -> Bool
    ) throws(JournalError) -> Int {
        var offset = 0  // start of the line being assembled
        var line: [UInt8] = []
        let chunkSize = 1 << 20
        var position = 0
        while position < size {
            let chunk: [UInt8]
            do { chunk = try FileIO.read(fd, count: min(chunkSize, size - position), at: position) } catch {
                throw JournalError("\(path): \(error)")
            }
            guard !chunk.isEmpty else { break }
            var start = 0
            while let lf = chunk[start...].firstIndex(of: 0x0A) {
                line.append(contentsOf: chunk[start..<lf])
                let more = line.withUnsafeBytes { body($0, offset) }
                offset = position + lf + 1
                line.removeAll(keepingCapacity: true)
                start = lf + 1
                if !more { return offset }
            }
            line.append(contentsOf: chunk[start...])
            position += chunk.count
        }
        return offset
    }
}
