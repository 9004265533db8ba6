import CGatehouseLinux

#if canImport(Glibc)
import Glibc
#endif

/// Every system call Gatehouse makes goes through here: EINTR is retried, EAGAIN is a result
/// (`nil` or `.wouldBlock`), and any other failure names the call.

/// A file descriptor with one owner, closed exactly once.
public struct OwnedFD: ~Copyable {
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
        let fd = CGatehouseLinux_epoll_create1(CGatehouseLinux_EPOLL_CLOEXEC)
        guard fd >= 0 else { throw SystemError("epoll_create1", errno: errno) }
        return OwnedFD(taking: fd)
    }

    public static func add(_ epfd: Int32, _ fd: Int32, events: UInt32, data: UInt64) throws(SystemError) {
        guard CGatehouseLinux_epoll_ctl(epfd, CGatehouseLinux_EPOLL_CTL_ADD, fd, events, data) == 0 else {
            throw SystemError("epoll_ctl(ADD)", errno: errno)
        }
    }

    public static func modify(_ epfd: Int32, _ fd: Int32, events: UInt32, data: UInt64) throws(SystemError) {
        guard CGatehouseLinux_epoll_ctl(epfd, CGatehouseLinux_EPOLL_CTL_MOD, fd, events, data) == 0 else {
            throw SystemError("epoll_ctl(MOD)", errno: errno)
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
        while true {
            let n = CGatehouseLinux_epoll_wait(epfd, events, data, max, timeoutMs)
            if n >= 0 { return Int(n) }
            if errno == EINTR { return 0 }
            throw SystemError("epoll_wait", errno: errno)
        }
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
        let fd = CGatehouseLinux_eventfd(0, CGatehouseLinux_EFD_NONBLOCK | CGatehouseLinux_EFD_CLOEXEC)
        guard fd >= 0 else { throw SystemError("eventfd", errno: errno) }
        return OwnedFD(taking: fd)
    }

    /// Adds one to the counter, waking whoever waits on it. Never blocks.
    public static func signal(_ fd: Int32) {
        var one: UInt64 = 1
        while Glibc.write(fd, &one, 8) < 0 && errno == EINTR {}
    }

    /// Resets the counter to zero. Never blocks.
    public static func drain(_ fd: Int32) {
        var value: UInt64 = 0
        while Glibc.read(fd, &value, 8) < 0 && errno == EINTR {}
    }

    /// Waits until the counter is non-zero or `timeoutMs` passes (-1: forever), then resets it.
    public static func wait(_ fd: Int32, timeoutMs: Int32) {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&pfd, 1, timeoutMs) < 0 && errno == EINTR {}
        drain(fd)
    }
}

public enum FileIO {
    /// Writes all of `bytes` at the file's current offset, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("write", errno: errno)
            }
            done += n
        }
    }

    public static func fdatasync(_ fd: Int32) throws(SystemError) {
        while CGatehouseLinux_fdatasync(fd) != 0 {
            if errno == EINTR { continue }
            throw SystemError("fdatasync", errno: errno)
        }
    }

    public static func truncate(_ fd: Int32, to size: Int) throws(SystemError) {
        while ftruncate(fd, off_t(size)) != 0 {
            if errno == EINTR { continue }
            throw SystemError("ftruncate", errno: errno)
        }
    }

    public static func size(_ fd: Int32) throws(SystemError) -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemError("fstat", errno: errno) }
        return Int(st.st_size)
    }

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    public static func read(_ fd: Int32, count: Int, at offset: Int) throws(SystemError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            if n >= 0 { return Array(buffer.prefix(n)) }
            if errno == EINTR { continue }
            throw SystemError("pread", errno: errno)
        }
    }

    /// Reads from the current offset to the end of the file; nil past `limit` bytes (the caller
    /// names the file in its own error).
    public static func readAll(_ fd: Int32, limit: Int) throws(SystemError) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", errno: errno)
            }
            if n == 0 { return out }
            out.append(contentsOf: buffer[0..<n])
            if out.count > limit { return nil }
        }
    }

    public static func open(_ path: String, flags: Int32, mode: UInt32 = 0o600) throws(SystemError) -> OwnedFD {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode_t(mode))
            if fd >= 0 { return OwnedFD(taking: fd) }
            if errno == EINTR { continue }
            throw SystemError("open(\(path))", errno: errno)
        }
    }
}
