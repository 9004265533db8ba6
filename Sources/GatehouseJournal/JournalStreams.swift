import GatehouseSystem
import Synchronization

/// A stream: its user and its name (PROTOCOL.md, Streams). Both are restricted to characters
/// that JSON strings carry unescaped (`A-Z a-z 0-9 . _ @ -`, and `:` in names).
public struct StreamKey: Hashable, Sendable, CustomStringConvertible {
    public let user: String
    public let name: String

    public init(user: String, name: String) {
        self.user = user
        self.name = name
    }

    public var description: String { "\(user)/\(name)" }
}

/// Each remembered stream's last stored message number and when it was stored.
///
/// Memory: one dictionary entry per stream, a `StreamKey` (two strings of at most 64 bytes,
/// stored inline up to 15 bytes, otherwise on the heap with ~32 bytes of header each) and 16
/// bytes of entry, with the table's slack: at most about 250 bytes per stream, so the default
/// `--max-streams` of 100,000 costs at most ~25 MiB.
///
/// Written by the journal thread alone (after a group is stored); read by workers under the
/// mutex when a connection opens a stream.
struct StreamTable {
    struct Entry: Equatable {
        var last: UInt64
        /// Unix seconds of the last stored message.
        var time: Int64
    }

    var entries: [StreamKey: Entry] = [:]

    /// Drops the streams whose last message is more than `retention` seconds before `now`.
    mutating func forget(olderThan retention: Int64, now: Int64) {
        entries = entries.filter { $0.value.time + retention >= now }
    }

    /// Notes that `key` holds `seq`, stored at `time`; keeps the higher number.
    mutating func note(_ key: StreamKey, seq: UInt64, time: Int64) {
        if let e = entries[key], e.last >= seq {
            entries[key]!.time = max(e.time, time)
            return
        }
        entries[key] = Entry(last: seq, time: time)
    }

    // MARK: the file `<journal>.streams`

    static func path(for journal: String) -> String { journal + ".streams" }

    /// One JSON line per stream: `{"user":"u","stream":"s","seq":N,"time":T}`.
    var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.count * 64)
        for (key, e) in entries.sorted(by: { ($0.key.user, $0.key.name) < ($1.key.user, $1.key.name) }) {
            out.append(contentsOf: #"{"user":""#.utf8)
            out.append(contentsOf: key.user.utf8)
            out.append(contentsOf: #"","stream":""#.utf8)
            out.append(contentsOf: key.name.utf8)
            out.append(contentsOf: #"","seq":"#.utf8)
            JSON.appendDecimal(e.last, to: &out)
            out.append(contentsOf: #","time":"#.utf8)
            JSON.appendDecimal(UInt64(max(0, e.time)), to: &out)
            out.append(contentsOf: "}\n".utf8)
        }
        return out
    }

    /// Reads `<journal>.streams`, if there is one.
    ///
    /// > Warning: blocking file I/O.
    static func load(for journal: String) throws(JournalError) -> StreamTable {
        var table = StreamTable()
        let path = path(for: journal)
        guard FileIO.exists(path) else { return table }
        let fd: OwnedFD
        do { fd = try FileIO.openForReading(path) } catch { throw JournalError("\(path): \(error)", cause: error) }
        let size: Int
        do { size = try FileIO.size(fd.raw) } catch { throw JournalError("\(path): \(error)", cause: error) }
        var bad: Int?
        _ = try LineReader.forEachLine(fd: fd.raw, size: size, path: path) { line, offset in
            guard let user = StreamFields.string(line, after: #"{"user":""#),
                let name = StreamFields.string(line, after: #""stream":""#),
                let seq = StreamFields.number(line, after: #""seq":"#),
                let time = StreamFields.number(line, after: #""time":"#)
            else {
                bad = offset
                return false
            }
            table.note(StreamKey(user: user, name: name), seq: seq, time: Int64(time))
            return true
        }
        if let bad { throw JournalError("\(path): not a stream record at byte \(bad); the file is the server's own") }
        return table
    }

    /// Replaces `<journal>.streams` atomically and durably.
    ///
    /// > Warning: blocking file I/O (two fsyncs).
    func save(for journal: String) throws(SystemError) {
        try FileIO.replaceAtomically(StreamTable.path(for: journal), with: encoded)
    }

    /// Adds the stream records of the active journal file: the ones since the last save.
    ///
    /// > Warning: blocking file I/O: reads the whole active file (bounded by `--journal-max-bytes`).
    mutating func scan(fd: Int32, path: String) throws(JournalError) {
        let size: Int
        do { size = try FileIO.size(fd) } catch { throw JournalError("\(path): \(error)", cause: error) }
        _ = try LineReader.forEachLine(fd: fd, size: size, path: path) { line, _ in
            // The stream fields come before the text, so a text cannot fake them (its quotes
            // are escaped anyway).
            // Only the fields before the text are searched: a plain record costs a short scan.
            guard let textAt = StreamFields.find(line, #","text":""#),
                StreamFields.find(UnsafeRawBufferPointer(rebasing: line[..<textAt]), #","stream":""#) != nil,
                let user = StreamFields.string(line, after: #","user":""#),
                let name = StreamFields.string(line, after: #","stream":""#),
                let seq = StreamFields.number(line, after: #","seq":"#),
                let time = StreamFields.string(line, after: #","time":""#)
            else { return true }
            note(StreamKey(user: user, name: name), seq: seq, time: StreamFields.unixSeconds(time) ?? 0)
            return true
        }
    }
}

/// Field lookups in the journal's own JSON lines, whose stream fields hold no escapes.
enum StreamFields {
    static func find(_ line: UnsafeRawBufferPointer, _ key: String) -> Int? {
        let k = Array(key.utf8)
        guard line.count >= k.count else { return nil }
        var i = 0
        while i + k.count <= line.count {
            if line[i] == k[0] && line[i..<(i + k.count)].elementsEqual(k) { return i }
            i += 1
        }
        return nil
    }

    static func string(_ line: UnsafeRawBufferPointer, after key: String) -> String? {
        guard let at = find(line, key) else { return nil }
        let start = at + key.utf8.count
        guard let end = line[start...].firstIndex(of: 0x22), end > start, end - start <= 64 else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: line[start..<end]), as: UTF8.self)
    }

    static func number(_ line: UnsafeRawBufferPointer, after key: String) -> UInt64? {
        guard let at = find(line, key) else { return nil }
        var value: UInt64 = 0
        var digits = 0
        for b in line[(at + key.utf8.count)...] {
            guard b >= 0x30 && b <= 0x39, digits < 19 else { break }
            value = value * 10 + UInt64(b - 0x30)
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// `2026-11-25T20:49:47.123Z` → Unix seconds.
    static func unixSeconds(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 19 else { return nil }
        func n(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard let y = n(0..<4), let mo = n(5..<7), let d = n(8..<10), let h = n(11..<13), let mi = n(14..<16),
            let s = n(17..<19)
        else { return nil }
        return WallClock.seconds(of: WallClock.UTC(year: y, month: mo, day: d, hour: h, minute: mi, second: s))
    }

    static func nowSeconds() -> Int64 { WallClock.seconds() }
}
