import Foundation
import GatehouseSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP proxy that forwards each connection to the server's current port and can cut
/// every connection at once (both ways, as a broken network or a restarted load balancer
/// would), for the stream crash test.
final class CuttingProxy: Sendable {
    private struct State {
        var targetPort: Int
        var pairs: [(Int32, Int32)] = []
        var stopping = false
        var accepted = 0
    }

    private let state: Mutex<State>
    private let listener: Int32
    let port: Int

    init(targetPort: Int) throws {
        let address = try SocketAddress.resolve(host: "127.0.0.1", port: 0, passive: true)[0]
        let fd = try Socket.listen(on: address, backlog: 64, reusePort: false)
        port = try Socket.localAddress(fd.raw).port
        listener = fd.release()
        state = Mutex(State(targetPort: targetPort))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Where new connections go (the server's port changes when it restarts).
    func retarget(_ port: Int) { state.withLock { $0.targetPort = port } }

    /// Connections accepted so far.
    var accepted: Int { state.withLock { $0.accepted } }

    /// Cuts every connection now: both sides see the close.
    func cutAll() {
        // Under the lock: a pump closes its pair only after taking it out of the list.
        state.withLock { s in
            for (a, b) in s.pairs {
                shutdown(a, Int32(SHUT_RDWR))
                shutdown(b, Int32(SHUT_RDWR))
            }
        }
    }

    func stop() {
        state.withLock { $0.stopping = true }
        cutAll()
    }

    private func acceptLoop() {
        defer { Glibc.close(listener) }
        while !state.withLock({ $0.stopping }) {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            guard let (client, _) = try? Socket.accept(listener) else { continue }
            let target = state.withLock { $0.targetPort }
            guard let upstream = try? Socket.connect(host: "127.0.0.1", port: target) else {
                Glibc.close(client)
                continue
            }
            let server = upstream.release()
            state.withLock {
                $0.pairs.append((client, server))
                $0.accepted += 1
            }
            let thread = Thread { [self] in pump(client, server) }
            thread.start()
        }
    }

    /// Copies both ways until either side ends, then closes both.
    private func pump(_ a: Int32, _ b: Int32) {
        Socket.setNonBlocking(a)
        Socket.setNonBlocking(b)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        loop: while true {
            guard poll(&fds, 2, 1000) >= 0 || errno == EINTR else { break }
            for (i, (from, to)) in [(a, b), (b, a)].enumerated() where fds[i].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { break loop }
                if n < 0 { continue }
                var sent = 0
                while sent < n {
                    let w = buffer.withUnsafeBytes { write(to, $0.baseAddress! + sent, n - sent) }
                    if w < 0 {
                        if errno == EAGAIN || errno == EINTR {
                            var out = pollfd(fd: to, events: Int16(POLLOUT), revents: 0)
                            _ = poll(&out, 1, 1000)
                            continue
                        }
                        break loop
                    }
                    sent += w
                }
            }
        }
        // Out of the list first, so that `cutAll` never shuts a number a new socket reuses.
        state.withLock { $0.pairs.removeAll { $0.0 == a } }
        Glibc.close(a)
        Glibc.close(b)
    }
}
