#if canImport(Glibc)
import Glibc
#endif

/// Plain writes to standard output and standard error, for the command-line tools: no C
/// `FILE` buffering shared between threads, no Foundation. A failed write (a closed pipe) is
/// dropped: there is nowhere left to report it.
public enum Console {
    public static func out(_ text: String) { write(1, text + "\n") }
    public static func error(_ text: String) { write(2, text + "\n") }

    /// Writes `text` as is (no newline added) to `fd`.
    public static func write(_ fd: Int32, _ text: String) { try? FileIO.writeAll(fd, Array(text.utf8)) }

    public static var stdoutIsTerminal: Bool { isatty(1) == 1 }
}

extension Process {
    /// The environment variable `name`, or nil when it is not set.
    public static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    /// Runs `command` with `/bin/sh -c` and waits for it (`system(3)`): its wait status.
    ///
    /// > Warning: blocks until the command exits. For one-off set-up steps only.
    public static func runShell(_ command: String) -> Int32 { system(command) }
}

extension FileIO {
    /// The whole file at `path` (at most `limit` bytes: EFBIG past it) and its status, both
    /// from one open descriptor.
    public static func readFile(
        _ path: String,
        limit: Int = 64 << 20
    ) throws(SystemError) -> (
        bytes: [UInt8], status: FileStatus
    ) {
        let fd = try open(path, flags: O_RDONLY)
        let status = try status(fd.raw)
        guard let bytes = try readAll(fd.raw, limit: limit) else { throw SystemError("read(\(path))", errno: EFBIG) }
        return (bytes, status)
    }

    /// Creates the folder `path` with `mode`; one that exists already is fine.
    public static func makeDirectory(_ path: String, mode: UInt32 = 0o700) throws(SystemError) {
        do throws(SystemError) { _ = try Syscall.call("mkdir(\(path))") { mkdir(path, mode_t(mode)) } } catch {
            if error.errno != EEXIST { throw error }
        }
    }
}

extension Process {
    /// This process's id.
    public static var id: Int32 { getpid() }

    /// The host's name, or nil when it cannot be read.
    public static var hostName: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Ends the process now with `status` (`_exit`): no atexit handlers, no buffered output.
    public static func exitImmediately(_ status: Int32) -> Never { _exit(status) }

    /// Sleeps the calling thread for `seconds` (up to a day).
    ///
    /// > Warning: blocks the calling thread.
    public static func sleep(seconds: Double) {
        let clamped = max(0, min(seconds, 86_400))
        var request = timespec(tv_sec: Int(clamped), tv_nsec: Int((clamped - clamped.rounded(.down)) * 1e9))
        var left = timespec()
        // EINTR: sleep what is left.
        while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
    }
}

extension FileIO {
    /// Reads what is waiting on `fd` into the front of `buffer`: `.done(0)` at EOF,
    /// `.wouldBlock` when `fd` is non-blocking and nothing is waiting.
    public static func readAvailable(_ fd: Int32, into buffer: inout [UInt8]) throws(SystemError) -> IOResult {
        try Syscall.nonBlocking("read") { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
    }
}
