import GatehouseSystem

#if canImport(Glibc)
import Glibc
#endif

/// What opening a journal found.
public struct JournalRecoveryReport: Sendable, Equatable {
    /// The id of the last complete record (in the active file, or else in the newest segment), 0 if none.
    public var lastID: UInt64
    /// Bytes of a torn last record that were cut off (0 if the file ended cleanly).
    public var truncatedBytes: Int
    /// The active file's size after repair.
    public var size: Int

    public init(lastID: UInt64, truncatedBytes: Int, size: Int) {
        self.lastID = lastID
        self.truncatedBytes = truncatedBytes
        self.size = size
    }
}

/// Checks the active journal file from start to end before the server accepts anyone:
/// every complete line must be a record whose id is greater than the one before. A partial
/// last line (a write cut by a crash) is truncated away; anything wrong before it is refused
/// with the byte offset of the bad record.
///
/// > Warning: blocking file I/O, done once at start-up. It reads the whole active file, which
/// > `--journal-max-bytes` keeps bounded.
enum JournalRecovery {
    static func recover(fd: Int32, path: String, previousID: UInt64 = 0) throws(JournalError) -> JournalRecoveryReport {
        let size: Int
        do { size = try FileIO.size(fd) } catch { throw JournalError("\(path): \(error)") }
        var lastID = previousID
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
                guard let id = parseID(line) else {
                    throw JournalError(
                        "\(path): the record at byte offset \(offset) is not a journal record; "
                            + "the journal is corrupt before its tail and was not opened"
                    )
                }
                guard id > lastID else {
                    throw JournalError(
                        "\(path): the record at byte offset \(offset) has id \(id), not greater than \(lastID); "
                            + "the journal is corrupt and was not opened"
                    )
                }
                lastID = id
                offset = position + lf + 1
                line.removeAll(keepingCapacity: true)
                start = lf + 1
            }
            line.append(contentsOf: chunk[start...])
            position += chunk.count
        }
        let torn = size - offset
        if torn > 0 {
            do { try FileIO.truncate(fd, to: offset) } catch { throw JournalError("\(path): \(error)") }
        }
        return JournalRecoveryReport(lastID: lastID, truncatedBytes: torn, size: offset)
    }

    /// The id of a record line `{"id":N,...}`, or nil if the line is not one.
    static func parseID(_ line: [UInt8]) -> UInt64? {
        let prefix: [UInt8] = Array(#"{"id":"#.utf8)
        guard line.count > prefix.count + 1, line.starts(with: prefix), line.last == 0x7D else { return nil }
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

    /// The id of the last record of the newest rolled segment of `path`, or 0 when there is none.
    static func lastIDInSegments(of path: String) throws(JournalError) -> UInt64 {
        guard let newest = JournalSegments.list(path).last else { return 0 }
        let owned: OwnedFD
        do { owned = try FileIO.open(newest.path, flags: O_RDONLY) } catch { throw JournalError("\(error)") }
        let size: Int
        do { size = try FileIO.size(owned.raw) } catch { throw JournalError("\(newest.path): \(error)") }
        // A segment is complete by construction; its last line is read backwards in one go.
        let window = min(size, 1 << 20)
        let tail: [UInt8]
        do { tail = try FileIO.read(owned.raw, count: window, at: size - window) } catch {
            throw JournalError("\(newest.path): \(error)")
        }
        var end = tail.count
        if end > 0 && tail[end - 1] == 0x0A { end -= 1 }
        let start = tail[..<end].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        guard let id = parseID(Array(tail[start..<end])) else {
            throw JournalError("\(newest.path): the last record is not a journal record")
        }
        return id
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
        guard let handle = opendir(dir.isEmpty ? "/" : dir) else { return [] }
        defer { closedir(handle) }
        var out: [Segment] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix(base + "."), let number = Int(name.dropFirst(base.count + 1)), number > 0 else {
                continue
            }
            out.append(Segment(number: number, path: (slash == nil ? "" : dir + "/") + name))
        }
        return out.sorted { $0.number < $1.number }
    }
}
