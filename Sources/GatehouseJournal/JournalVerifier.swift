import GatehouseSystem

/// What `journal verify` found: the whole chain checked, or the first record that breaks it.
public struct JournalVerification: Sendable {
    /// The first bad record: its file, byte offset in that file, id (if it has one) and fault.
    public struct Failure: Sendable, Equatable, CustomStringConvertible {
        public var file: String
        public var offset: Int
        public var id: UInt64?
        public var reason: String

        public var description: String {
            "\(file): byte offset \(offset)\(id.map { ", id \($0)" } ?? ""): \(reason)"
        }
    }

    /// The files checked, oldest segment first, the active file last.
    public var files: [String] = []
    /// Good records before the failure, or in all.
    public var records = 0
    /// Records from before digests were written (checked for shape and ids only).
    public var undigested = 0
    public var lastID: UInt64 = 0
    public var lastDigest: JournalDigest?
    /// Things that are not faults but worth saying: where a segment was moved away between two
    /// files (the chain is taken up again), or a last line still being written.
    public var notes: [String] = []
    public var failure: Failure?
}

/// Checks a journal's segments and active file in order: each record's shape, increasing ids
/// and the digest chain, across file boundaries.
///
/// > Warning: blocking file I/O; reads every file once, in 1 MiB chunks.
public enum JournalVerifier {
    public static func verify(journal path: String) throws(JournalError) -> JournalVerification {
        var result = JournalVerification()
        result.files = JournalSegments.list(path).map(\.path)
        if FileIO.exists(path) { result.files.append(path) }
        guard !result.files.isEmpty else { throw JournalError("\(path): no journal here (no file, no segments)") }
        var check = RecordCheck()
        for (index, file) in result.files.enumerated() {
            let fd: OwnedFD
            do { fd = try FileIO.openForReading(file) } catch { throw JournalError("\(file): \(error)", cause: error) }
            let size: Int
            do { size = try FileIO.size(fd.raw) } catch { throw JournalError("\(file): \(error)", cause: error) }
            var firstLine = true
            let end = try LineReader.forEachLine(fd: fd.raw, size: size, path: file) { line, offset in
                defer { firstLine = false }
                if result.records == 0 && check.digest == nil && RecordCheck.parseID(line) == 1
                    && RecordLine.split(line) != nil
                {
                    check.digest = .genesis  // the journal's very first record chains from zeros
                }
                var verdict = check.check(line)
                if case .bad(_, let id?) = verdict, firstLine, index > 0, id > check.lastID + 1 {
                    // Ids jump and the chain does not join: the file(s) between were moved away
                    // (an external rotation). Take the chain up again from this file.
                    result.notes.append(
                        "\(file) does not follow on from \(result.files[index - 1]) (ids \(check.lastID + 1)-\(id - 1) "
                            + "are not here: rotated away?); checking it from its first record"
                    )
                    check.digest = nil
                    verdict = check.check(line)
                }
                switch verdict {
                case .good(_, let digest):
                    result.records += 1
                    if digest == nil { result.undigested += 1 }
                    return true
                case .bad(let reason, let id):
                    result.failure = .init(file: file, offset: offset, id: id, reason: reason)
                    return false
                }
            }
            if result.failure != nil { break }
            if end < size {
                if index == result.files.count - 1 {
                    result.notes.append(
                        "\(file) ends with \(size - end) bytes of an incomplete record (being written, or torn by a crash; "
                            + "the server cuts it off at start)"
                    )
                } else {
                    result.failure = .init(
                        file: file,
                        offset: end,
                        id: nil,
                        reason: "incomplete last record in a segment"
                    )
                    break
                }
            }
        }
        result.lastID = check.lastID
        result.lastDigest = check.digest
        return result
    }
}
