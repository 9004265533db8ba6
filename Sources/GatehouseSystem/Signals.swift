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
