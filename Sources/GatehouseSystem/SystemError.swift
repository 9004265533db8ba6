#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call, and errno.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The call that failed, as in the manual (`epoll_ctl`, `accept4`).
    public var call: String
    public var errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}
