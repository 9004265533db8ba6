import CGatehouseLinux
public import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A named pthread that can be joined. Foundation's `Thread` cannot be joined, so we have our own.
public final class OSThread: @unchecked Sendable {
    // The handle is written once, in init, before any other thread can see this object.
    private var handle = pthread_t()

    private final class Box {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes are kept by Linux).
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        let rc = pthread_create(
            &handle,
            nil,
            { arg in
                let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
                CGatehouseLinux_set_thread_name(String(box.name.prefix(15)))
                box.body()
                return nil
            },
            box
        )
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    /// Waits for the thread to finish. Call once.
    public func join() {
        pthread_join(handle, nil)
    }
}

extension Mutex where Value == OSThread? {
    /// Takes the thread out (a second call finds none) and joins it: the stop of a service that
    /// owns one thread (the journal, the PostgreSQL store, the metrics endpoint).
    public func takeAndJoin() {
        let thread = withLock { thread -> OSThread? in
            defer { thread = nil }
            return thread
        }
        thread?.join()
    }
}
