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

    /// `call` was given something it cannot use (EINVAL), without any system call failing: a
    /// host name that resolves to no address, for one.
    public static func invalidArgument(_ call: String) -> SystemError { SystemError(call, errno: EINVAL) }

    /// `call` could not allocate what it needed (ENOMEM): a library's, not the kernel's.
    public static func outOfMemory(_ call: String) -> SystemError { SystemError(call, errno: ENOMEM) }

    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}
