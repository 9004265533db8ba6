#if canImport(Glibc)
import Glibc
#endif

/// The calls that make file creation and renames durable, for the journal.
extension FileIO {
    /// fsync: data and metadata (used on folders, after a create or a rename in them).
    public static func fsync(_ fd: Int32) throws(SystemError) {
        _ = try Syscall.call("fsync") { Glibc.fsync(fd) }
    }

    public static func rename(_ from: String, to: String) throws(SystemError) {
        _ = try Syscall.call("rename(\(from), \(to))") { Glibc.rename(from, to) }
    }

    /// Makes a create or a rename in the folder holding `path` durable: fsync of the folder.
    public static func syncDirectory(holding path: String) throws(SystemError) {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let fd = try open(dir.isEmpty ? "/" : dir, flags: O_RDONLY | O_DIRECTORY)
        try fsync(fd.raw)
    }

    /// Replaces the file at `path` with `bytes` atomically and durably, with exactly `mode`: a
    /// new temporary file beside it (`O_EXCL | O_NOFOLLOW`: a file or symlink planted under that
    /// name is removed, never written through), written, `fchmod`ed (the umask may have taken
    /// bits) and fsynced, renamed over `path`, and the folder fsynced. Every result is checked.
    public static func replaceAtomically(_ path: String, with bytes: [UInt8], mode: UInt32 = 0o600) throws(SystemError)
    {
        let temporary = path + ".tmp.\(getpid())"
        _ = unlink(temporary)
        do throws(SystemError) {
            let fd = try open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: mode)
            try writeAll(fd.raw, bytes)
            _ = try Syscall.call("fchmod(\(temporary))") { fchmod(fd.raw, mode_t(mode)) }
            try fsync(fd.raw)
        } catch {
            _ = unlink(temporary)
            throw error
        }
        do { try rename(temporary, to: path) } catch {
            _ = unlink(temporary)
            throw error
        }
        try syncDirectory(holding: path)
    }

    /// Whether `path` names an existing file (any kind).
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
