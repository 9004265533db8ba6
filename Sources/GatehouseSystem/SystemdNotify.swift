import CGatehouseLinux

#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (`sd_notify(3)`), without libsystemd: one datagram per state
/// change to the `AF_UNIX` socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
/// namespace). Without the variable (not started by systemd with `Type=notify`), every call
/// does nothing.
///
/// Thread-safe: each `send` is one `sendto` on a socket of its own, made per call (state changes
/// are rare: start, reload, stop, a status line every few seconds).
public struct SystemdNotifier: Sendable {
    /// The socket's address, nil when not under systemd.
    public let socketPath: String?

    /// `path`: the value of `$NOTIFY_SOCKET`; nil or empty turns notifications off.
    public init(socketPath path: String?) {
        socketPath = (path?.isEmpty ?? true) ? nil : path
    }

    /// From this process's `$NOTIFY_SOCKET`.
    public static func fromEnvironment() -> SystemdNotifier {
        SystemdNotifier(socketPath: getenv("NOTIFY_SOCKET").map { String(cString: $0) })
    }

    public var isEnabled: Bool { socketPath != nil }

    /// Sends `state`: newline-separated `KEY=value` assignments (`READY=1`, `STATUS=…`).
    /// Failures are returned, not thrown: a service must not stop because its supervisor's
    /// socket went away.
    @discardableResult
    public func send(_ state: String) -> SystemError? {
        guard let socketPath else { return nil }
        let socket: OwnedFD
        do {
            socket = OwnedFD(
                taking: try Syscall.call("socket(AF_UNIX)") {
                    Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | CGatehouseLinux_SOCK_CLOEXEC, 0)
                }
            )
        } catch { return error }
        let fd = socket.raw
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(socketPath.utf8)
        if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }  // the abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { return SystemError("NOTIFY_SOCKET too long", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count)
        let bytes = Array(state.utf8)
        do throws(SystemError) {
            _ = try Syscall.call("sendto(NOTIFY_SOCKET)") {
                withUnsafePointer(to: &address) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                        bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
                    }
                }
            }
            return nil
        } catch { return error }
    }

    /// `MONOTONIC_USEC=` for `RELOADING=1`, as systemd 253's `Type=notify-reload` wants it.
    public static func monotonicMicroseconds() -> UInt64 {
        Process.monotonicNanoseconds() / 1000
    }
}
