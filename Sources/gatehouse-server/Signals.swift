import GatehouseServer
import GatehouseSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Blocks the given signals in the calling thread (and so in every thread it starts later) and
/// receives them synchronously with sigtimedwait, so no code runs in a signal handler.
struct SignalWaiter {
    private var set = sigset_t()

    init(_ signals: Int32...) {
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The next signal, or 0 after `timeoutMs`.
    func wait(timeoutMs: Int) -> Int32 {
        var copy = set
        var ts = timespec(tv_sec: timeoutMs / 1000, tv_nsec: (timeoutMs % 1000) * 1_000_000)
        let s = sigtimedwait(&copy, nil, &ts)
        return s > 0 ? s : 0
    }
}

final class Finished: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}

/// Waits for the server's workers on a thread of its own, so the main thread can keep
/// receiving signals meanwhile.
struct ServerWaiter {
    private let thread: OSThread

    init(server: Server, finished: Finished) {
        thread = OSThread(name: "gh-waiter") {
            server.wait()
            finished.set()
        }
    }

    func join() { thread.join() }
}
