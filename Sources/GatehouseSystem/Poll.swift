#if canImport(Glibc)
import Glibc
#endif

/// poll(2) on a few descriptors, for threads that wait on something other than an epoll set
/// (the PostgreSQL store: its wake-up eventfd and libpq's socket).
public enum Poll {
    public static let readable = Int16(POLLIN)
    public static let writable = Int16(POLLOUT)

    /// Waits until one of `fds` (descriptor, events) is ready or `timeoutMs` passes (-1: no
    /// limit); returns each descriptor's `revents` (all 0 on a timeout). EINTR restarts the wait
    /// with the full timeout (signals are blocked on every thread but the main one).
    public static func wait(_ fds: [(fd: Int32, events: Int16)], timeoutMs: Int32) throws(SystemError) -> [Int16] {
        var set = fds.map { pollfd(fd: $0.fd, events: $0.events, revents: 0) }
        while true {
            let n = poll(&set, nfds_t(set.count), timeoutMs)
            if n >= 0 { return set.map(\.revents) }
            if errno != EINTR { throw SystemError("poll", errno: errno) }
        }
    }
}
