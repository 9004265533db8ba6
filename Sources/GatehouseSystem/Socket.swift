import CGatehouseLinux

#if canImport(Glibc)
import Glibc
#endif

/// A resolved socket address (IPv4 or IPv6), kept as raw storage.
public struct SocketAddress: Sendable, CustomStringConvertible {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    public var isIPv6: Bool { storage.ss_family == sa_family_t(AF_INET6) }

    /// Parses a numeric host (`127.0.0.1`, `::1`, `::`, `0.0.0.0`) and a port. Names are resolved
    /// with getaddrinfo (blocking: start-up only). `passive` resolves for binding (listeners),
    /// otherwise for connecting.
    public static func resolve(host: String, port: Int, passive: Bool = true) throws(SystemError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE | AI_ADDRCONFIG : 0
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host == "*" ? nil : host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw SystemError("getaddrinfo(\(host))", errno: rc == EAI_SYSTEM ? errno : EADDRNOTAVAIL)
        }
        defer { freeaddrinfo(first) }
        var out: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            var address = SocketAddress()
            withUnsafeMutableBytes(of: &address.storage) { dst in
                dst.copyMemory(
                    from: UnsafeRawBufferPointer(start: ai.pointee.ai_addr, count: Int(ai.pointee.ai_addrlen))
                )
            }
            address.length = ai.pointee.ai_addrlen
            out.append(address)
            cursor = ai.pointee.ai_next
        }
        return out
    }

    /// `127.0.0.1:9999` or `[::1]:9999`.
    public var description: String {
        var copy = storage
        return withUnsafePointer(to: &copy) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { Self.format($0) }
        }
    }

    public var port: Int {
        var copy = storage
        return withUnsafePointer(to: &copy) { ptr in
            if storage.ss_family == sa_family_t(AF_INET6) {
                return ptr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    Int(UInt16(bigEndian: $0.pointee.sin6_port))
                }
            }
            return ptr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                Int(UInt16(bigEndian: $0.pointee.sin_port))
            }
        }
    }

    /// The host part alone (no port, no brackets), used to key per-address limits.
    public var host: String {
        var copy = storage
        return withUnsafePointer(to: &copy) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { Self.formatHost($0) }
        }
    }

    /// `host:port`, or `[host]:port` for IPv6: `description` from parts already formatted (the
    /// server formats each peer's host once per accepted connection).
    public static func describe(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func formatHost(_ sa: UnsafePointer<sockaddr>) -> String {
        // On the stack: no array per call (this runs for every accepted connection).
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN) + 1) { buf in
            buf.initialize(repeating: 0)
            if sa.pointee.sa_family == sa_family_t(AF_INET6) {
                return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var addr = sin6.pointee.sin6_addr
                    inet_ntop(AF_INET6, &addr, buf.baseAddress, socklen_t(buf.count))
                    var text = String(cString: buf.baseAddress!)
                    // A v4 client on a dual-stack socket: show it as plain IPv4.
                    if text.hasPrefix("::ffff:") && text.contains(".") { text.removeFirst(7) }
                    return text
                }
            }
            return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                var addr = sin.pointee.sin_addr
                inet_ntop(AF_INET, &addr, buf.baseAddress, socklen_t(buf.count))
                return String(cString: buf.baseAddress!)
            }
        }
    }

    static func format(_ sa: UnsafePointer<sockaddr>) -> String {
        let port: UInt16
        if sa.pointee.sa_family == sa_family_t(AF_INET6) {
            port = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
        } else {
            port = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        return describe(host: formatHost(sa), port: Int(port))
    }
}

public enum Socket {
    /// A new TCP socket of `family`, close-on-exec, optionally non-blocking.
    public static func stream(family: Int32, nonBlocking: Bool) throws(SystemError) -> OwnedFD {
        let flags = CGatehouseLinux_SOCK_CLOEXEC | (nonBlocking ? CGatehouseLinux_SOCK_NONBLOCK : 0)
        return OwnedFD(taking: try Syscall.call("socket") { socket(family, Int32(SOCK_STREAM.rawValue) | flags, 0) })
    }

    /// A non-blocking listening socket on `address`, with SO_REUSEADDR, SO_REUSEPORT (so each
    /// worker can have its own; `reusePort: false` binds alone, and so fails while any other
    /// socket holds the port) and, for `::`, dual-stack.
    public static func listen(
        on address: SocketAddress,
        backlog: Int32 = 4096,
        reusePort: Bool = true
    ) throws(SystemError) -> OwnedFD {
        let family = Int32(address.storage.ss_family)
        let fd = try stream(family: family, nonBlocking: true)
        let raw = fd.raw
        var one: Int32 = 1
        var zero: Int32 = 0
        setsockopt(raw, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort {
            _ = try Syscall.call("setsockopt(SO_REUSEPORT)") {
                setsockopt(raw, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
            }
        }
        if family == AF_INET6 {
            setsockopt(raw, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
        }
        var storage = address.storage
        _ = try Syscall.call("bind(\(address))") {
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(raw, $0, address.length) }
            }
        }
        _ = try Syscall.call("listen") { Glibc.listen(raw, backlog) }
        return fd
    }

    /// The address a socket is bound to (to learn the port the kernel chose for port 0).
    public static func localAddress(_ fd: Int32) throws(SystemError) -> SocketAddress {
        var address = SocketAddress()
        address.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try Syscall.call("getsockname") {
            withUnsafeMutablePointer(to: &address.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &address.length) }
            }
        }
        return address
    }

    /// Accepts one connection, non-blocking and close-on-exec. `nil` when none is waiting.
    public static func accept(_ fd: Int32) throws(SystemError) -> (fd: Int32, peer: SocketAddress)? {
        var address = SocketAddress()
        address.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let result: IOResult
            do throws(SystemError) {
                result = try Syscall.nonBlocking("accept4") {
                    withUnsafeMutablePointer(to: &address.storage) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            CGatehouseLinux_accept4(
                                fd,
                                $0,
                                &address.length,
                                CGatehouseLinux_SOCK_NONBLOCK | CGatehouseLinux_SOCK_CLOEXEC
                            )
                        }
                    }
                }
            } catch {
                if error.errno == ECONNABORTED { continue }  // that client gave up; take the next
                throw error
            }
            guard case .done(let accepted) = result else { return nil }
            let raw = Int32(accepted)
            var one: Int32 = 1
            setsockopt(raw, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            return (raw, address)
        }
    }

    /// A blocking TCP connection to `host:port` (for clients and tests), with TCP_NODELAY. Tries
    /// each resolved address in turn.
    public static func connect(host: String, port: Int) throws(SystemError) -> OwnedFD {
        var lastErrno: Int32 = ECONNREFUSED
        for address in try SocketAddress.resolve(host: host, port: port, passive: false) {
            let fd: OwnedFD
            do { fd = try stream(family: Int32(address.storage.ss_family), nonBlocking: false) } catch {
                lastErrno = error.errno
                continue
            }
            let raw = fd.raw
            var storage = address.storage
            do throws(SystemError) {
                _ = try Syscall.call("connect") {
                    withUnsafePointer(to: &storage) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(raw, $0, address.length) }
                    }
                }
            } catch {
                lastErrno = error.errno  // `fd` closes itself here
                continue
            }
            var one: Int32 = 1
            setsockopt(raw, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            return fd
        }
        throw SystemError("connect(\(host):\(port))", errno: lastErrno)
    }

    /// Makes `fd` non-blocking.
    public static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// Closes `fd`, aborting with a RST (SO_LINGER 0) when `reset` is set.
    public static func close(_ fd: consuming OwnedFD, reset: Bool) {
        close(fd.release(), reset: reset)
    }

    /// Closes `fd`, aborting with a RST (SO_LINGER 0) when `reset` is set.
    public static func close(_ fd: Int32, reset: Bool = false) {
        if reset {
            var l = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        }
        _ = Glibc.close(fd)
    }
}

/// Process-wide settings.
public enum Process {
    /// Ignores SIGPIPE: a write to a closed socket must be an EPIPE result, not a dead server.
    public static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Raises the descriptor soft limit to the hard limit; returns the new soft limit.
    @discardableResult
    public static func raiseDescriptorLimit() -> Int {
        var rl = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return 1024 }
        if rl.rlim_cur < rl.rlim_max {
            var raised = rl
            raised.rlim_cur = rl.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { return Int(raised.rlim_cur) }
        }
        return Int(rl.rlim_cur)
    }
}
