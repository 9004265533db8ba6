import GatehouseServer
import GatehouseSystem
import Synchronization

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
