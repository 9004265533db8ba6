import GatehouseClient
import GatehouseJWT
import GatehouseProtocol
import GatehouseSystem

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
        let run: CapturedRun
        do {
            run = try GatehouseSystem.Process.captureShell(
                command,
                timeoutMs: timeoutMs,
                maxOutputBytes: maxOutputBytes
            )
        } catch {
            throw failure(
                error.call == "pipe" ? "cannot make a pipe: \(error.reason)" : "cannot run /bin/sh: \(error.reason)"
            )
        }
        if run.timedOut { throw failure("no token within \(timeoutMs / 1000) s") }
        guard run.exitStatus == 0 else {
            let how = run.exitStatus.map { "exited with status \($0)" } ?? "was killed by signal \(run.killedBy ?? 0)"
            throw failure(how)
        }
        guard let output = run.output else { throw failure("printed more than \(maxOutputBytes / 1024) KiB") }
        let token = String(decoding: output, as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
            throw failure("did not print one token (nothing, or more than one word)")
        }
        return token
    }

    private static func failure(_ why: String) -> ClientError {
        ClientError(.configuration, "--token-command: \(why)")
    }
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
        guard case .okAuth? = Reply(line: reply) else {
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
