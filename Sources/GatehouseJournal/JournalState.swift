import GatehouseSystem

/// What the journal remembers where no rotation tool can rename it away: `<journal>.state`, one
/// JSON line, replaced atomically (temporary file, fsync, rename, fsync of the folder).
///
/// `last_id` and `h` are the last record known to be on disk when the state was written (at
/// start, rotation, reopen, after a failure and at clean shutdown); `issued` the last id handed
/// out then (past `last_id` when ids of failed groups were burned, or records not yet flushed);
/// `reserved` the highest id the server may hand out before it writes the state again: it
/// reserves ids in blocks ahead of use, so that even a journal file renamed away without the
/// server's knowledge, followed by a crash, cannot make an id repeat.
struct JournalState: Equatable {
    var lastID: UInt64
    var digest: JournalDigest?
    var issued: UInt64
    var reserved: UInt64

    /// Ids reserved per state write: one write per this many records, and the most ids a crash
    /// can skip when the active file is found empty.
    static let reservation: UInt64 = 1 << 20

    static func path(for journal: String) -> String { journal + ".state" }

    var encoded: [UInt8] {
        var out: [UInt8] = Array(#"{"last_id":"#.utf8)
        JSON.appendDecimal(lastID, to: &out)
        if let digest {
            out.append(contentsOf: Array(#","h":""#.utf8))
            digest.appendHex(to: &out)
            out.append(0x22)
        }
        out.append(contentsOf: Array(#","issued":"#.utf8))
        JSON.appendDecimal(issued, to: &out)
        out.append(contentsOf: Array(#","reserved":"#.utf8))
        JSON.appendDecimal(reserved, to: &out)
        out.append(contentsOf: Array("}\n".utf8))
        return out
    }

    /// Parses the file's text; nil if it is not a state this journal wrote.
    init?(parsing bytes: [UInt8]) {
        func number(after key: String) -> UInt64? {
            let k = Array(key.utf8)
            guard let at = bytes.firstRange(of: k) else { return nil }
            var value: UInt64 = 0
            var digits = 0
            for b in bytes[at.upperBound...] {
                guard b >= 0x30 && b <= 0x39, digits < 19 else { break }
                value = value * 10 + UInt64(b - 0x30)
                digits += 1
            }
            return digits > 0 ? value : nil
        }
        guard let last = number(after: #""last_id":"#), let issued = number(after: #""issued":"#),
            let reserved = number(after: #""reserved":"#), last <= issued, issued <= reserved
        else { return nil }
        self.lastID = last
        self.issued = issued
        self.reserved = reserved
        if let at = bytes.firstRange(of: Array(#""h":""#.utf8)) {
            let hex = bytes[at.upperBound...].prefix(32)
            guard let digest = JournalDigest(hex: hex) else { return nil }
            self.digest = digest
        }
    }

    init(lastID: UInt64, digest: JournalDigest?, issued: UInt64, reserved: UInt64) {
        self.lastID = lastID
        self.digest = digest
        self.issued = max(issued, lastID)
        self.reserved = max(reserved, self.issued)
    }

    /// Reads the state beside `journal`; nil when there is none yet.
    ///
    /// > Warning: blocking file I/O.
    static func load(for journal: String) throws(JournalError) -> JournalState? {
        let path = path(for: journal)
        guard FileIO.exists(path) else { return nil }
        let bytes: [UInt8]
        do {
            let fd = try FileIO.openForReading(path)
            bytes = try FileIO.read(fd.raw, count: 4096, at: 0)
        } catch {
            throw JournalError("\(path): \(error)")
        }
        guard let state = JournalState(parsing: bytes) else {
            throw JournalError(
                "\(path) is not a journal state file; it keeps ids from going back, so the server does not "
                    + "start without it: restore it, or remove it if this journal is meant to start its ids afresh"
            )
        }
        return state
    }

    /// Replaces the state file atomically and durably.
    ///
    /// > Warning: blocking file I/O (two fsyncs).
    func save(for journal: String) throws(SystemError) {
        try FileIO.replaceAtomically(JournalState.path(for: journal), with: encoded)
    }
}
