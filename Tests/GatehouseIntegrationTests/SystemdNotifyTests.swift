import Foundation
import TestSupport
import Testing

/// `Type=notify`: the server tells systemd it is ready (after its listeners are bound), reloading
/// and ready again around SIGHUP, and stopping on SIGTERM, through a datagram socket that the
/// test binds where `$NOTIFY_SOCKET` points.
@Suite("systemd notify")
struct SystemdNotifyTests {
    /// A bound AF_UNIX datagram socket standing in for systemd.
    final class NotifySocket {
        let path: String
        let fd: Int32

        init(path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { throw TestSupportError("socket: \(errno)") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard bound == 0 else { throw TestSupportError("bind \(path): \(errno)") }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        /// The next datagram as `KEY=value` pairs; nil after 10 s without one.
        func next() -> [String: String]? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            var fields: [String: String] = [:]
            for line in String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1)
                fields[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            return fields
        }
    }

    @Test func readyReloadingAndStoppingReachTheNotifySocket() throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-notify")
        defer { folder.remove() }
        let notify = try NotifySocket(path: folder.file("notify.sock"))
        let server = try ServerProcess(environment: ["NOTIFY_SOCKET": notify.path])
        defer { server.stop() }

        let ready = try #require(notify.next())
        #expect(ready["READY"] == "1")
        #expect(ready["MAINPID"] == String(server.pid))
        // Sent after the bind: the status names the port the kernel chose for --port 0.
        #expect(ready["STATUS"]?.contains("listening on 127.0.0.1:\(server.port)") == true, "\(ready)")
        let greeting = try server.sClient("QUIT\n")
        #expect(replyLines(greeting.stdout) == ["HELLO gatehouse/1", "BYE"])

        #expect(server.signal(SIGHUP, waitUpTo: 0) == nil)
        let reloading = try #require(notify.next())
        #expect(reloading["RELOADING"] == "1")
        #expect(UInt64(reloading["MONOTONIC_USEC"] ?? "") != nil)
        let readyAgain = try #require(notify.next())
        #expect(readyAgain["READY"] == "1")

        #expect(server.signal(SIGTERM) == 0)
        let stopping = try #require(notify.next())
        #expect(stopping["STOPPING"] == "1")
    }
}
