#if canImport(Glibc)
import Glibc
#endif

/// The calls a server makes on an accepted connection beyond TLS: a half close, and reading
/// what a client still sends after it, to be dropped.
extension Socket {
    /// Shuts `fd` for writing (the peer reads EOF once it has read everything sent before).
    /// Reading goes on. Errors (the peer already gone) are of no interest to the caller.
    public static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Reads up to `buffer.count` bytes from a non-blocking socket: `.done(0)` at EOF,
    /// `.wouldBlock` when nothing is waiting, nil when the connection failed (a reset).
    public static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> IOResult? {
        try? Syscall.nonBlocking("recv") { Glibc.recv(fd, buffer.baseAddress, buffer.count, 0) }
    }

    /// Looks at up to `buffer.count` bytes waiting on `fd` without taking them (`MSG_PEEK`):
    /// `.done(0)` at EOF, `.wouldBlock` when nothing waits, nil when the connection failed.
    public static func peek(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> IOResult? {
        try? Syscall.nonBlocking("recv(MSG_PEEK)") { Glibc.recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_PEEK)) }
    }

    /// Accepts one connection from a listener (non-blocking or not) as a *blocking* socket
    /// whose reads and writes give up after `timeoutSeconds` (`SO_RCVTIMEO`, `SO_SNDTIMEO`):
    /// for a thread that serves one short request at a time (the metrics endpoint). Nil when
    /// none is waiting.
    public static func acceptBlocking(_ listener: Int32, timeoutSeconds: Int) throws(SystemError) -> OwnedFD? {
        guard let (raw, _) = try accept(listener) else { return nil }
        let fd = OwnedFD(taking: raw)
        let flags = fcntl(fd.raw, F_GETFL)
        _ = fcntl(fd.raw, F_SETFL, flags & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd.raw, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd.raw, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends all of `bytes` (MSG_NOSIGNAL: a gone peer is an error, not SIGPIPE); false when the
    /// connection failed or a send timeout passed first.
    @discardableResult
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let result = try? Syscall.nonBlocking("send") {
                bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            }
            guard case .done(let n)? = result, n > 0 else { return false }
            sent += n
        }
        return true
    }

    /// Takes `count` bytes that a `peek` saw waiting (so they are there to take); false if the
    /// socket failed meanwhile.
    public static func discard(_ fd: Int32, count: Int, scratch: UnsafeMutableRawBufferPointer) -> Bool {
        var left = count
        while left > 0 {
            let chunk = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<min(left, scratch.count)])
            guard case .done(let n)? = receive(fd, into: chunk), n > 0 else { return false }
            left -= n
        }
        return true
    }
}
