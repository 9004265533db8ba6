#if canImport(Glibc)
import Glibc
#endif

/// The one retry loop of the syscall layer, after SwiftNIO's `syscall(blocking:where:)`
/// (`Sources/NIOPosix/System.swift`): every wrapper in this module calls through it instead of
/// writing its own `while errno == EINTR` loop, so the three rules hold everywhere at once —
/// EINTR is retried, EAGAIN is a result, and any other failure is a `SystemError` naming the call.
enum Syscall {
    /// Calls `body` until it returns something other than a failure with EINTR. A negative
    /// result with any other errno throws `SystemError(name, errno)`; `name` is built only then.
    @inline(__always)
    static func call<T: FixedWidthInteger>(
        _ name: @autoclosure () -> String,
        _ body: () -> T
    ) throws(SystemError) -> T {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            throw SystemError(name(), errno: code)
        }
    }

    /// `call` for a non-blocking descriptor: EAGAIN (EWOULDBLOCK) is `.wouldBlock`, not an error.
    @inline(__always)
    static func nonBlocking<T: FixedWidthInteger>(
        _ name: @autoclosure () -> String,
        _ body: () -> T
    ) throws(SystemError) -> IOResult {
        while true {
            let result = body()
            if result >= 0 { return .done(Int(result)) }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            throw SystemError(name(), errno: code)
        }
    }
}
