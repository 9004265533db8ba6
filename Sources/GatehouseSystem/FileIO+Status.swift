#if canImport(Glibc)
import Glibc
#endif

/// What `fstat` says of an open file: enough to decide whether a secret may be read from it.
public struct FileStatus: Sendable, Equatable {
    public var isRegularFile: Bool
    public var isDirectory: Bool
    /// The permission bits (`st_mode & 0o777`).
    public var permissions: UInt32
    public var owner: UInt32
    public var size: Int
}

/// Status, listing and plain opens, for the modules above that must not call Glibc themselves
/// (the secret files, the tokens file, the journal's segments).
extension FileIO {
    /// `fstat` of an open descriptor: the file checked is the file read, whatever the path
    /// names by now.
    public static func status(_ fd: Int32) throws(SystemError) -> FileStatus {
        var st = stat()
        _ = try Syscall.call("fstat") { fstat(fd, &st) }
        return FileStatus(st)
    }

    /// `stat` of a path (a symlink is followed), or nil when it cannot be had. For checks
    /// before anything is opened; what is read is checked on its descriptor (`status(_:)`).
    public static func status(ofPath path: String) -> FileStatus? {
        var st = stat()
        guard (try? Syscall.call("stat") { stat(path, &st) }) != nil else { return nil }
        return FileStatus(st)
    }

    /// Whether this process may read and write `path` (`access(R_OK | W_OK)`). Root is told yes
    /// almost everywhere: for a real answer, try the write.
    public static func isReadableAndWritable(_ path: String) -> Bool { access(path, R_OK | W_OK) == 0 }

    /// Creates `path` for writing, failing if anything is there already (`O_EXCL`).
    public static func createNew(_ path: String, mode: UInt32 = 0o600) throws(SystemError) -> OwnedFD {
        try open(path, flags: O_WRONLY | O_CREAT | O_EXCL, mode: mode)
    }

    /// Removes the name `path` (`unlink`); a failure is ignored (nothing to remove, or nothing
    /// the caller could do about it).
    public static func remove(_ path: String) { _ = unlink(path) }

    /// Opens `path` for reading, close-on-exec, without making it the controlling terminal and
    /// without blocking (a FIFO planted under the name must not hang the reader at the open).
    public static func openForReading(_ path: String) throws(SystemError) -> OwnedFD {
        try open(path, flags: O_RDONLY | O_NOCTTY | O_NONBLOCK)
    }

    /// Opens `path` read-only and blocking, as `open(path, O_RDONLY)` does: a FIFO waits at the
    /// open for its writer (`gatehouse send --file`).
    public static func openReadOnly(_ path: String) throws(SystemError) -> OwnedFD {
        try open(path, flags: O_RDONLY)
    }

    /// Opens (creating it with `mode` if needed) a file to append to, reading allowed: the
    /// journal's active file.
    public static func openForAppending(_ path: String, mode: UInt32 = 0o600) throws(SystemError) -> OwnedFD {
        try open(path, flags: O_RDWR | O_CREAT | O_APPEND, mode: mode)
    }

    /// Creates `path` with `mode`, or empties it if it exists, for writing (`O_TRUNC`).
    public static func create(_ path: String, mode: UInt32 = 0o600) throws(SystemError) -> OwnedFD {
        try open(path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
    }

    /// Whether nothing at all is at `path`: `lstat` fails with ENOENT. A dangling symlink or an
    /// unreadable folder on the way is *not* missing (reading it will say what is wrong).
    public static func isMissing(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) != 0 && errno == ENOENT
    }

    /// The names in the folder `path` (`.` and `..` included, in no order); empty when it cannot
    /// be opened.
    public static func directoryEntries(_ path: String) -> [String] {
        guard let handle = opendir(path) else { return [] }
        defer { closedir(handle) }
        var out: [String] = []
        while let entry = readdir(handle) {
            out.append(
                withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
            )
        }
        return out
    }
}

extension FileStatus {
    init(_ st: stat) {
        self.init(
            isRegularFile: st.st_mode & S_IFMT == S_IFREG,
            isDirectory: st.st_mode & S_IFMT == S_IFDIR,
            permissions: UInt32(st.st_mode & 0o777),
            owner: UInt32(st.st_uid),
            size: Int(st.st_size)
        )
    }
}

extension Process {
    /// The effective user id (`geteuid`): who owns the files this process may trust.
    public static var effectiveUserID: UInt32 { UInt32(geteuid()) }

    /// Processors online, at least 1.
    public static var processorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Clock ticks per second, the unit of `/proc/*/stat`'s CPU times.
    public static var clockTicksPerSecond: Int { Int(sysconf(Int32(_SC_CLK_TCK))) }

    /// The size of a memory page, the unit of `/proc/*/stat`'s resident set.
    public static var pageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// The soft limit on open descriptors (`RLIMIT_NOFILE`), or nil when it cannot be read.
    public static var descriptorLimit: Int? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return Int(clamping: limit.rlim_cur)
    }
}

extension SystemError {
    /// The errno's text alone (`No such file or directory`), for messages that name the call
    /// in their own words.
    public var reason: String { String(cString: strerror(errno)) }
}
