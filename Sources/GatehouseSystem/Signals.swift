#if canImport(Glibc)
import Glibc
#endif

/// The signals the server handles, by name, so that callers need not import Glibc.
public enum Signal {
    public static let hangup = SIGHUP
    public static let interrupt = SIGINT
    public static let terminate = SIGTERM
}

/// Blocks the given signals in the calling thread (and so in every thread it starts later) and
/// receives them synchronously with sigtimedwait, so no code runs in a signal handler.
///
/// > Warning: create it on the main thread before any other thread starts; `wait` blocks.
public struct SignalWaiter {
    private var set = sigset_t()

    public init(_ signals: Int32...) {
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The next signal, or 0 after `timeoutMs`.
    public func wait(timeoutMs: Int) -> Int32 {
        var copy = set
        var ts = timespec(tv_sec: timeoutMs / 1000, tv_nsec: (timeoutMs % 1000) * 1_000_000)
        let s = sigtimedwait(&copy, nil, &ts)
        return s > 0 ? s : 0
    }
}

/// SIGINT as an eventfd: the handler only writes to the eventfd (async-signal-safe), which a
/// poll loop watches next to its sockets. For `gatehouse send`, whose Ctrl-C must still report
/// what was acknowledged.
public enum InterruptEvent {
    // Raw on purpose: the handler reads it from a signal context, where no Swift object may be
    // touched, and it lives as long as the process (made once, never closed).
    nonisolated(unsafe) private static var fd: Int32 = -1

    /// Installs the handler once and returns the eventfd it signals, or nil if none could be made.
    public static func install() -> Int32? {
        if fd < 0 {
            guard let made = try? EventFD.create() else { return nil }
            fd = made.release()
        }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var one: UInt64 = 1
            _ = write(InterruptEvent.fd, &one, 8)
        }
        sigemptyset(&action.sa_mask)
        sigaction(SIGINT, &action, nil)
        // A parent may have started us with SIGINT blocked (Foundation's Process does).
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        return fd
    }
}
