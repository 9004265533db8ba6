import CGatehouseLinux

#if canImport(Glibc)
import Glibc
#endif

/// Client-side calls for many connections at once (the load generator): resolve once, then
/// start non-blocking connects to the resolved address.
extension Socket {
    /// Resolves `host` for connecting (no AI_PASSIVE): the first address is what to dial.
    /// Blocking (getaddrinfo): call once, before the load starts.
    public static func resolveForConnect(host: String, port: Int) throws(SystemError) -> [SocketAddress] {
        try SocketAddress.resolve(host: host, port: port, passive: false)
    }

    /// Starts a non-blocking connect with TCP_NODELAY. `inProgress` is set when the kernel
    /// answered EINPROGRESS: wait for the socket to become writable, then ask `connectResult`.
    public static func startConnect(to address: SocketAddress, inProgress: inout Bool) throws(SystemError) -> OwnedFD {
        let fd = try stream(family: Int32(address.storage.ss_family), nonBlocking: true)
        let raw = fd.raw
        var one: Int32 = 1
        setsockopt(raw, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = address.storage
        do throws(SystemError) {
            _ = try Syscall.call("connect(\(address))") {
                withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(raw, $0, address.length) }
                }
            }
            inProgress = false
        } catch {
            guard error.errno == EINPROGRESS else { throw error }
            inProgress = true
        }
        return fd
    }

    /// The outcome of a non-blocking connect once the socket is writable (SO_ERROR).
    public static func connectResult(_ fd: Int32) -> SystemError? {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        do throws(SystemError) {
            _ = try Syscall.call("getsockopt(SO_ERROR)") { getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) }
        } catch { return error }
        return error == 0 ? nil : SystemError("connect", errno: error)
    }
}
