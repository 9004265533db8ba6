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
        while true {
            let n = Glibc.recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return .done(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return nil
            }
        }
    }
}
