import GatehouseSystem

/// What opening a journal found.
public struct JournalRecoveryReport: Sendable, Equatable {
    /// The id of the last complete record, 0 for an empty journal.
    public var lastID: UInt64
    /// Bytes of a torn last record that were cut off (0 if the file ended cleanly).
    public var truncatedBytes: Int
    /// The file's size after repair.
    public var size: Int
}

/// Reads a journal's tail: finds the last complete record and its id, and cuts off a torn
/// partial record left by a crash.
///
/// > Warning: blocking file I/O, done once at start-up before any connection is accepted.
enum JournalRecovery {
    static func recover(fd: Int32, path: String) throws(JournalError) -> JournalRecoveryReport {
        let size: Int
        do { size = try FileIO.size(fd) } catch { throw JournalError("\(path): \(error)") }
        if size == 0 { return JournalRecoveryReport(lastID: 0, truncatedBytes: 0, size: 0) }

        // Read backwards in chunks until we hold the last complete line and the LF before it.
        var tail: [UInt8] = []
        var tailStart = size
        let chunk = 64 * 1024
        func lfPositions() -> [Int] { tail.indices.filter { tail[$0] == 0x0A } }
        while tailStart > 0 {
            let start = max(0, tailStart - chunk)
            let buf: [UInt8]
            do { buf = try FileIO.read(fd, count: tailStart - start, at: start) } catch {
                throw JournalError("\(path): \(error)")
            }
            guard buf.count == tailStart - start else { throw JournalError("\(path): short read at offset \(start)") }
            tail = buf + tail
            tailStart = start
            // Enough once we see two LFs (end of the last complete line, and the one before it),
            // or one LF and the start of the file.
            let lfs = lfPositions()
            if lfs.count >= 2 || (lfs.count == 1 && tailStart == 0) { break }
            if tail.count > 16 << 20 { break }
        }

        let lfs = lfPositions()
        guard let lastLF = lfs.last else {
            // No complete record at all: the whole file is one torn record.
            try truncate(fd, to: 0, path: path)
            return JournalRecoveryReport(lastID: 0, truncatedBytes: size, size: 0)
        }
        let goodSize = tailStart + lastLF + 1
        let lineStart = lfs.count >= 2 ? lfs[lfs.count - 2] + 1 : 0
        let lastLine = Array(tail[lineStart..<lastLF])
        guard let id = parseID(lastLine) else {
            throw JournalError(
                "\(path): the record at byte offset \(tailStart + lineStart) is not a journal record; "
                    + "the journal is corrupt before its tail and was not opened")
        }
        if goodSize < size { try truncate(fd, to: goodSize, path: path) }
        return JournalRecoveryReport(lastID: id, truncatedBytes: size - goodSize, size: goodSize)
    }

    /// The id of a record line `{"id":N,...}`, or nil if the line is not one.
    static func parseID(_ line: [UInt8]) -> UInt64? {
        let prefix = Array(#"{"id":"#.utf8)
        guard line.count > prefix.count + 1, Array(line.prefix(prefix.count)) == prefix, line.last == 0x7D else {
            return nil
        }
        var value: UInt64 = 0
        var digits = 0
        for b in line.dropFirst(prefix.count) {
            guard b >= 0x30 && b <= 0x39 else { break }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
            guard !o1 && !o2 else { return nil }
            value = a
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    private static func truncate(_ fd: Int32, to size: Int, path: String) throws(JournalError) {
        do { try FileIO.truncate(fd, to: size) } catch { throw JournalError("\(path): \(error)") }
    }
}
