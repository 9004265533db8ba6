#if canImport(Glibc)
import Glibc
#endif

/// What a command run by `Process.captureShell` did.
public struct CapturedRun: Sendable {
    /// Its standard output; nil when it printed more than the limit.
    public var output: [UInt8]?
    /// It was still running at the deadline, and was killed.
    public var timedOut: Bool
    /// The wait status (`waitpid`): see `exitStatus` and `killedBy`.
    public var status: Int32

    /// The exit status when it exited, nil when a signal ended it.
    public var exitStatus: Int32? { status & 0x7F == 0 ? (status >> 8) & 0xFF : nil }
    /// The signal that ended it, nil when it exited.
    public var killedBy: Int32? { status & 0x7F == 0 ? nil : status & 0x7F }
}

extension Process {
    /// Runs `command` with `/bin/sh -c`: standard input from /dev/null, standard output
    /// captured (up to `maxOutputBytes`, the rest read and dropped), standard error shared with
    /// ours. Killed (SIGKILL, our own child by its pid) if it has not closed its output within
    /// `timeoutMs`. Throws when no pipe can be made (`pipe`) or /bin/sh cannot be started
    /// (`posix_spawn`).
    ///
    /// > Warning: blocks until the command exits, for up to `timeoutMs` and the wait after.
    public static func captureShell(
        _ command: String,
        timeoutMs: Int,
        maxOutputBytes: Int
    ) throws(SystemError)
        -> CapturedRun
    {
        var fds: [Int32] = [-1, -1]
        _ = try Syscall.call("pipe") { pipe(&fds) }
        let readEnd = OwnedFD(taking: fds[0])
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // The child keeps only the write end, as its standard output.
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let arguments = ["sh", "-c", command]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, nil, &argv, environ)
        OwnedFD(taking: fds[1]).close()  // ours; the child has its copy
        guard spawned == 0 else { throw SystemError("posix_spawn(/bin/sh)", errno: spawned) }
        let (output, timedOut) = readOutput(readEnd.raw, timeoutMs: timeoutMs, maxOutputBytes: maxOutputBytes)
        readEnd.close()
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        _ = try? Syscall.call("waitpid") { waitpid(pid, &status, 0) }
        return CapturedRun(output: output, timedOut: timedOut, status: status)
    }

    /// Reads until EOF or the deadline; nil output when there is too much of it.
    private static func readOutput(
        _ fd: Int32,
        timeoutMs: Int,
        maxOutputBytes: Int
    ) -> (
        output: [UInt8]?, timedOut: Bool
    ) {
        let deadline = monotonicNanoseconds() + UInt64(timeoutMs) * 1_000_000
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline else { return (out, true) }
            let left = Int32(clamping: (deadline - now) / 1_000_000 + 1)
            guard let ready = try? Poll.wait([(fd, Poll.readable)], timeoutMs: left), ready[0] != 0 else { continue }
            let result: IOResult
            do { result = try FileIO.readAvailable(fd, into: &chunk) } catch {
                return (out.count > maxOutputBytes ? nil : out, false)
            }
            guard case .done(let n) = result else { continue }
            if n == 0 { return (out.count > maxOutputBytes ? nil : out, false) }
            if out.count <= maxOutputBytes { out.append(contentsOf: chunk[0..<n]) }
        }
    }
}
