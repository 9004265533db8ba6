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
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw SystemError("getaddrinfo(\(host))", errno: rc == EAI_SYSTEM ? errno : EHOSTUNREACH)
        }
        defer { freeaddrinfo(first) }
        var out: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            var address = SocketAddress()
            withUnsafeMutableBytes(of: &address.storage) { dst in
                dst.copyMemory(
                    from: UnsafeRawBufferPointer(start: ai.pointee.ai_addr, count: Int(ai.pointee.ai_addrlen)))
            }
            address.length = ai.pointee.ai_addrlen
            out.append(address)
            cursor = ai.pointee.ai_next
        }
        return out
    }

    /// Starts a non-blocking connect with TCP_NODELAY. `inProgress` is set when the kernel
    /// answered EINPROGRESS: wait for the socket to become writable, then ask `connectResult`.
    public static func startConnect(to address: SocketAddress, inProgress: inout Bool) throws(SystemError) -> OwnedFD {
        let family = Int32(address.storage.ss_family)
        let raw = socket(
            family, Int32(SOCK_STREAM.rawValue) | CGatehouseLinux_SOCK_NONBLOCK | CGatehouseLinux_SOCK_CLOEXEC, 0)
        guard raw >= 0 else { throw SystemError("socket", errno: errno) }
        let fd = OwnedFD(taking: raw)
        var one: Int32 = 1
        setsockopt(raw, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = address.storage
        while true {
            let rc = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(raw, $0, address.length) }
            }
            if rc == 0 { inProgress = false; return fd }
            switch errno {
            case EINTR: continue
            case EINPROGRESS: inProgress = true; return fd
            default: throw SystemError("connect(\(address))", errno: errno)
            }
        }
    }

    /// The outcome of a non-blocking connect once the socket is writable (SO_ERROR).
    public static func connectResult(_ fd: Int32) -> SystemError? {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else {
            return SystemError("getsockopt(SO_ERROR)", errno: errno)
        }
        return error == 0 ? nil : SystemError("connect", errno: error)
    }
}
