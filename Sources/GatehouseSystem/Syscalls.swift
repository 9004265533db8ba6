import CGatehouseLinux

#if canImport(Glibc)
import Glibc
#endif

/// Every system call Gatehouse makes goes through this module, and through `Syscall`'s one
/// retry loop: EINTR is retried, EAGAIN is a result (`nil` or `.wouldBlock`), and any other
/// failure names the call.

/// A file descriptor with one owner, closed exactly once. Sendable: moving the one owner to
/// another thread is safe, and a shared borrow only reads the number.
public struct OwnedFD: ~Copyable, Sendable {
    public let raw: Int32

    public init(taking raw: Int32) {
        precondition(raw >= 0)
        self.raw = raw
    }

    /// Closes now. EINTR from close is not retried: on Linux the descriptor is gone either way.
    public consuming func close() {
        _ = Glibc.close(raw)
        discard self
    }

    /// Gives up ownership without closing: the caller now owns the raw descriptor.
    public consuming func release() -> Int32 {
        let fd = raw
        discard self
        return fd
    }

    deinit {
        _ = Glibc.close(raw)
    }
}

public enum IOResult: Equatable {
    case done(Int)
    case wouldBlock
}

public enum Epoll {
    public static let readable = CGatehouseLinux_EPOLLIN
    public static let writable = CGatehouseLinux_EPOLLOUT
    public static let error = CGatehouseLinux_EPOLLERR
    public static let hangup = CGatehouseLinux_EPOLLHUP
    public static let readHangup = CGatehouseLinux_EPOLLRDHUP
    public static let exclusive = CGatehouseLinux_EPOLLEXCLUSIVE

    public static func create() throws(SystemError) -> OwnedFD {
        OwnedFD(
            taking: try Syscall.call("epoll_create1") { CGatehouseLinux_epoll_create1(CGatehouseLinux_EPOLL_CLOEXEC) }
        )
    }

    public static func add(_ epfd: Int32, _ fd: Int32, events: UInt32, data: UInt64) throws(SystemError) {
        _ = try Syscall.call("epoll_ctl(ADD)") {
            CGatehouseLinux_epoll_ctl(epfd, CGatehouseLinux_EPOLL_CTL_ADD, fd, events, data)
        }
    }

    public static func modify(_ epfd: Int32, _ fd: Int32, events: UInt32, data: UInt64) throws(SystemError) {
        _ = try Syscall.call("epoll_ctl(MOD)") {
            CGatehouseLinux_epoll_ctl(epfd, CGatehouseLinux_EPOLL_CTL_MOD, fd, events, data)
        }
    }

    public static func remove(_ epfd: Int32, _ fd: Int32) {
        _ = CGatehouseLinux_epoll_ctl(epfd, CGatehouseLinux_EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeoutMs` (-1: forever); fills the two arrays and returns how many events.
    public static func wait(
        _ epfd: Int32,
        events: UnsafeMutablePointer<UInt32>,
        data: UnsafeMutablePointer<UInt64>,
        max: Int32,
        timeoutMs: Int32
    ) throws(SystemError) -> Int {
        // Not `Syscall.call`: an EINTR here is a result (no events), not a retry, so the caller
        // recomputes its timeout from its timers before it waits again.
        let n = CGatehouseLinux_epoll_wait(epfd, events, data, max, timeoutMs)
        if n >= 0 { return Int(n) }
        if errno == EINTR { return 0 }
        throw SystemError("epoll_wait", errno: errno)
    }
}

/// Room for the events one `epoll_wait` returns, owned by the one thread that waits.
public final class EpollEvents {
    public let capacity: Int32
    /// The event bits and the data word of each returned event, valid up to the last `wait`'s count.
    public let events: UnsafeMutablePointer<UInt32>
    public let data: UnsafeMutablePointer<UInt64>

    public init(capacity: Int32) {
        self.capacity = capacity
        events = .allocate(capacity: Int(capacity))
        data = .allocate(capacity: Int(capacity))
    }

    deinit {
        events.deallocate()
        data.deallocate()
    }

    /// Waits on `epfd` up to `timeoutMs` (-1: forever); returns how many events were filled in.
    public func wait(on epfd: Int32, timeoutMs: Int32) throws(SystemError) -> Int {
        try Epoll.wait(epfd, events: events, data: data, max: capacity, timeoutMs: timeoutMs)
    }
}

public enum EventFD {
    public static func create() throws(SystemError) -> OwnedFD {
        OwnedFD(
            taking: try Syscall.call("eventfd") {
                CGatehouseLinux_eventfd(0, CGatehouseLinux_EFD_NONBLOCK | CGatehouseLinux_EFD_CLOEXEC)
            }
        )
    }

    /// Adds one to the counter, waking whoever waits on it. Never blocks.
    public static func signal(_ fd: Int32) {
        var one: UInt64 = 1
        // EAGAIN: the counter is saturated, so the waiter will wake anyway.
        _ = try? Syscall.nonBlocking("write(eventfd)") { Glibc.write(fd, &one, 8) }
    }

    /// Resets the counter to zero. Never blocks.
    public static func drain(_ fd: Int32) {
        var value: UInt64 = 0
        _ = try? Syscall.nonBlocking("read(eventfd)") { Glibc.read(fd, &value, 8) }
    }

    /// Waits until the counter is non-zero or `timeoutMs` passes (-1: forever), then resets it.
    public static func wait(_ fd: Int32, timeoutMs: Int32) {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = try? Syscall.call("poll") { poll(&pfd, 1, timeoutMs) }
        drain(fd)
    }
}

public enum FileIO {
    /// Writes all of `bytes` at the file's current offset, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            done += try Syscall.call("write") {
                bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            }
        }
    }

    public static func fdatasync(_ fd: Int32) throws(SystemError) {
        _ = try Syscall.call("fdatasync") { CGatehouseLinux_fdatasync(fd) }
    }

    public static func truncate(_ fd: Int32, to size: Int) throws(SystemError) {
        _ = try Syscall.call("ftruncate") { ftruncate(fd, off_t(size)) }
    }

    public static func size(_ fd: Int32) throws(SystemError) -> Int {
        try status(fd).size
    }

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    public static func read(_ fd: Int32, count: Int, at offset: Int) throws(SystemError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let n = try Syscall.call("pread") {
            buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        }
        return Array(buffer.prefix(n))
    }

    /// Reads from the current offset to the end of the file; nil past `limit` bytes (the caller
    /// names the file in its own error).
    public static func readAll(_ fd: Int32, limit: Int) throws(SystemError) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try Syscall.call("read") {
                buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            if n == 0 { return out }
            out.append(contentsOf: buffer[0..<n])
            if out.count > limit { return nil }
        }
    }

    public static func open(_ path: String, flags: Int32, mode: UInt32 = 0o600) throws(SystemError) -> OwnedFD {
        OwnedFD(taking: try Syscall.call("open(\(path))") { Glibc.open(path, flags | O_CLOEXEC, mode_t(mode)) })
    }
}
