import GatehouseClient
import GatehouseJWT
import GatehouseSystem

#if canImport(Glibc)
import Glibc
#endif

/// `--token-command CMD`: the way command-line tools get access tokens from an identity provider
/// (`gcloud auth print-access-token`, `az account get-access-token --query accessToken -o tsv`,
/// `scripts/dev-idp.sh mint`). CMD runs with `/bin/sh -c`; its standard output, trimmed, is the
/// token; its standard error goes to ours.
enum TokenCommand {
    static let timeoutMs = 30_000
    static let maxOutputBytes = 64 * 1024

    /// Runs `command` and returns the token it printed.
    ///
    /// > Warning: blocks until the command exits, for up to 30 s (then it is killed).
    static func run(_ command: String) throws(ClientError) -> String {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw failure("cannot make a pipe: \(errnoText())") }
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
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            throw failure("cannot run /bin/sh: \(String(cString: strerror(spawned)))")
        }
        let (output, timedOut) = readAll(fds[0])
        close(fds[0])
        if timedOut { kill(pid, SIGKILL) }  // our own child, by its pid
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if timedOut { throw failure("no token within \(timeoutMs / 1000) s") }
        let exited = status & 0x7F == 0
        guard exited, (status >> 8) & 0xFF == 0 else {
            let how = exited ? "exited with status \((status >> 8) & 0xFF)" : "was killed by signal \(status & 0x7F)"
            throw failure(how)
        }
        guard let output else { throw failure("printed more than \(maxOutputBytes / 1024) KiB") }
        let token = String(decoding: output, as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
            throw failure("did not print one token (nothing, or more than one word)")
        }
        return token
    }

    /// Reads until EOF or the deadline; nil output when there is too much of it.
    private static func readAll(_ fd: Int32) -> (output: [UInt8]?, timedOut: Bool) {
        let deadline = GatehouseSystem.Process.monotonicNanoseconds() + UInt64(timeoutMs) * 1_000_000
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let now = GatehouseSystem.Process.monotonicNanoseconds()
            guard now < deadline else { return (out, true) }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(clamping: (deadline - now) / 1_000_000 + 1))
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if n <= 0 { return (out.count > maxOutputBytes ? nil : out, false) }
            if out.count <= maxOutputBytes { out.append(contentsOf: chunk[0..<n]) }
        }
    }

    private static func failure(_ why: String) -> ClientError {
        ClientError(.configuration, "--token-command: \(why)")
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Re-runs `--token-command` before the access token in force expires, and re-authenticates the
/// connection with the fresh token (`gatehouse send`). The expiry is read from the token's `exp`
/// without verifying it (only the server can); a token without one (an opaque Gatehouse token)
/// is never refreshed.
///
/// Not thread-safe: used by the thread running the sender.
final class TokenRefresher: Reauthenticator {
    let command: String
    let user: String
    private(set) var dueAt: UInt64?
    /// `exp` of the token in force, and of the one sent and not yet answered.
    private var expiresAt: Double?
    private var pendingExpiry: Double?

    init(command: String, user: String, token: String) {
        self.command = command
        self.user = user
        expiresAt = UnverifiedJWT.expiry(of: token)
        schedule()
    }

    /// Re-authenticate when a fifth of the lifetime is left, at most a minute and at least a
    /// second before `exp` (the server also grants its leeway past `exp`).
    private func schedule() {
        guard let expiresAt else {
            dueAt = nil
            return
        }
        let left = expiresAt - wallClock()
        let margin = min(60, max(1, left / 5))
        dueAt = monotonicIn(seconds: left - margin)
    }

    /// Tries again soon, but not more often than every 2 seconds.
    private func retryLater() {
        let left = (expiresAt ?? 0) - wallClock()
        dueAt = monotonicIn(seconds: max(2, min(5, left / 2)))
    }

    func authLine() -> String? {
        dueAt = nil
        do {
            let token = try TokenCommand.run(command)
            pendingExpiry = UnverifiedJWT.expiry(of: token)
            if let old = expiresAt, let new = pendingExpiry, new <= old {
                Console.error("gatehouse: --token-command printed a token that expires no later than the current one")
                retryLater()
                return nil
            }
            return "AUTH \(user) \(token)"
        } catch {
            Console.error("gatehouse: re-authentication: \(error.message)")
            retryLater()
            return nil
        }
    }

    func replied(_ reply: String) {
        guard reply.hasPrefix("OK AUTH") else {
            Console.error("gatehouse: re-authentication refused: \(reply)")
            retryLater()
            return
        }
        expiresAt = pendingExpiry
        schedule()
    }

    private func wallClock() -> Double { WallClock.now() }

    private func monotonicIn(seconds: Double) -> UInt64 {
        GatehouseSystem.Process.monotonicNanoseconds() + UInt64(max(0, min(seconds, 1e8)) * 1e9)
    }
}
