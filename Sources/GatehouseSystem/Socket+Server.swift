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
