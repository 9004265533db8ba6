import Foundation
import GatehouseClient
import GatehouseSystem
import TestSupport
import Testing

/// Hostile clients against the real server; after each attack a legitimate client must still be
/// served promptly, and where memory matters the server's resident size is measured and bounded.
@Suite("Resilience")
struct ResilienceTests {
    /// A plain TCP connection (no TLS), for clients that misbehave below the protocol.
    final class RawSocket {
        let fd: Int32
        init(port: Int) throws {
            fd = try Socket.connect(host: "127.0.0.1", port: port).release()
        }
        func send(_ bytes: [UInt8]) {
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes {
                    Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
                }
                if n <= 0 { return }
                offset += n
            }
        }
        /// Waits until the server closes this socket (read returns 0 or an error), up to `timeout`.
        func closedByServer(within timeout: TimeInterval) -> Bool {
            var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var buf = [UInt8](repeating: 0, count: 4096)
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n == 0 { return true }
                if n < 0 { return errno == ECONNRESET }
            }
            return false
        }
        func reset() { Socket.close(fd, reset: true) }
        deinit { Glibc.close(fd) }
    }

    /// A legitimate client authenticates, sends one message and gets its ACK within `limit` seconds.
    func servedPromptly(_ server: ServerProcess, within limit: TimeInterval = 5, _ tag: String) throws {
        let started = Date()
        let conn = try server.authenticatedConnection()
        let reply = try conn.request("MSG legit \(tag)")
        conn.quit()
        #expect(reply.hasPrefix("ACK "), "\(tag): \(reply)")
        #expect(Date().timeIntervalSince(started) < limit, "\(tag): a legitimate client waited too long")
    }

    @Test func silentConnectionsAreClosedAtTheHandshakeDeadline() throws {
        let server = try ServerProcess(arguments: ["--handshake-timeout", "1"])
        let silent = try (0..<200).map { _ in try RawSocket(port: server.port) }
        try servedPromptly(server, "with 200 silent connections")
        let started = Date()
        #expect(silent.allSatisfy { $0.closedByServer(within: 5) })
        #expect(Date().timeIntervalSince(started) < 6)
        #expect(server.isRunning)
    }

    @Test func halfAHandshakeThenSilenceIsClosed() throws {
        let server = try ServerProcess(arguments: ["--handshake-timeout", "1"])
        let half = try RawSocket(port: server.port)
        // A TLS record header announcing a 512-byte ClientHello, and only part of it.
        half.send(
            [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03] + [UInt8](repeating: 0x42, count: 40)
        )
        try servedPromptly(server, "during a stalled handshake")
        #expect(half.closedByServer(within: 5))
    }

    @Test func garbageAndPlaintextHTTPOnTheTLSPortAreRefused() throws {
        let server = try ServerProcess()
        let http = try RawSocket(port: server.port)
        http.send(Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        #expect(http.closedByServer(within: 5))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let garbage = try RawSocket(port: server.port)
            garbage.send((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) })
            #expect(garbage.closedByServer(within: 5))
        }
        try servedPromptly(server, "after garbage")
        #expect(server.log.contains("handshake failed"))
    }

    @Test func resetsMidHandshakeAndAfterAPipelinedBurstHurtNobody() throws {
        let server = try ServerProcess()
        for _ in 0..<20 {
            let raw = try RawSocket(port: server.port)
            raw.send([0x16, 0x03, 0x01, 0x00, 0x40])
            raw.reset()
        }
        let conn = try server.authenticatedConnection()
        var burst: [UInt8] = []
        for i in 0..<2000 { burst += Array("MSG burst \(i)\n".utf8) }
        try conn.writeRaw(burst)
        conn.reset()
        try servedPromptly(server, "after resets")
        // Whatever of the burst was stored is stored once, in order.
        let texts = try server.journalRecords().compactMap { $0["text"] as? String }.filter { $0.hasPrefix("burst ") }
        #expect(texts == (0..<texts.count).map { "burst \($0)" })
        #expect(server.isRunning)
    }

    @Test func clientThatNeverReadsIsBoundedAndClosedAtIdleTimeout() throws {
        let server = try ServerProcess(arguments: ["--idle-timeout", "3"])
        let before = try #require(server.residentKiB())
        let conn = try server.authenticatedConnection()
        // 8 MiB of PINGs whose PONGs are never read: the server must stop reading this client
        // once its reply queue is full, instead of buffering replies without bound.
        let flood = Array(String(repeating: "PING\n", count: 1 << 20).utf8)
        // The writer blocks once the server stops reading; the idle timeout ends it.
        let box = Unchecked(conn)
        let writer = Thread {
            for _ in 0..<8 { try? box.value.writeRaw(flood) }
        }
        writer.start()
        var peak = before
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            peak = max(peak, server.residentKiB() ?? 0)
            usleep(50_000)
        }
        try servedPromptly(server, "while one client does not read")
        // Bound: the reply queue (256 KiB) plus socket and TLS buffers, far below the 8 MiB sent.
        #expect(peak - before < 6 * 1024, "resident memory grew by \(peak - before) KiB")
        // It is closed once the idle timeout passes without progress.
        let closedBy = Date().addingTimeInterval(20)
        while Date() < closedBy && !server.log.contains("reason=idle timeout") { usleep(50_000) }
        #expect(server.log.contains("reason=idle timeout"))
    }

    @Test func fiftyMebibyteLineIsRefusedWithoutBufferingIt() throws {
        let server = try ServerProcess()
        let before = try #require(server.residentKiB())
        let conn = try server.authenticatedConnection()
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        var peak = before
        try conn.writeRaw(Array("MSG ".utf8))
        for _ in 0..<50 {
            try conn.writeRaw(chunk)
            peak = max(peak, server.residentKiB() ?? 0)
        }
        try conn.writeRaw([0x0A])
        #expect(try conn.readLine().hasPrefix("ERR TOO_LONG"))
        #expect(try conn.request("PING") == "PONG")
        #expect(try conn.request("MSG after the long line") == "ACK 1")
        conn.quit()
        #expect(peak - before < 4 * 1024, "resident memory grew by \(peak - before) KiB for a 50 MiB line")
    }

    @Test func perAddressLimitRefusesTheExtraConnectionOnly() throws {
        let server = try ServerProcess(arguments: ["--max-connections-per-peer", "3"])
        let held = try (0..<3).map { _ in try server.authenticatedConnection() }
        #expect(throws: ClientError.self) { _ = try server.client().connect() }
        for conn in held { #expect(try conn.request("PING") == "PONG") }
        held[0].quit()
        // Once one closes, a new connection is admitted again.
        let deadline = Date().addingTimeInterval(5)
        var admitted = false
        while !admitted && Date() < deadline {
            if let conn = try? server.client().connect() {
                admitted = true
                conn.quit()
            } else {
                usleep(20_000)
            }
        }
        #expect(admitted)
    }

    @Test func shutdownWithClientsMidStreamKeepsEveryAck() throws {
        let server = try ServerProcess()
        let client = try server.client()
        let token = server.tokens["alice"]!
        let acked = Counter()
        let ackedTexts = Locked<[String]>([])
        let shutdown = Thread {
            usleep(300_000)
            kill(server.pid, SIGTERM)
        }
        shutdown.start()
        DispatchQueue.concurrentPerform(iterations: 8) { c in
            guard let conn = try? client.connect(), (try? conn.authenticate(user: "alice", token: token)) != nil else {
                return
            }
            var i = 0
            while true {
                let batch = (0..<16).map { "stream \(c) \(i + $0)" }
                i += 16
                let (replies, error) = conn.sendMessages(batch, window: 16)
                for (text, reply) in zip(batch, replies) where reply.hasPrefix("ACK ") {
                    acked.add()
                    ackedTexts.mutate { $0.append(text) }
                }
                if error != nil || replies.contains(where: { $0.hasPrefix("ERR SHUTTING_DOWN") }) { return }
            }
        }
        #expect(server.waitForExit(timeout: 15) == 0)
        #expect(acked.value > 0)
        let stored = Set(try server.journalRecords().compactMap { $0["text"] as? String })
        let lost = ackedTexts.value.filter { !stored.contains($0) }
        #expect(lost.isEmpty, "acknowledged but not journalled: \(lost.prefix(3))")
    }
}

/// Hands a non-Sendable value to one other thread, which alone uses it from then on.
final class Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

final class Locked<Value>: @unchecked Sendable {
    private var value_: Value
    private let lock = NSLock()
    init(_ value: Value) { value_ = value }
    func mutate(_ body: (inout Value) -> Void) {
        lock.lock()
        body(&value_)
        lock.unlock()
    }
    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return value_
    }
}

/// Many connections at once: memory per connection and service for the others.
@Suite("Resilience at scale")
struct ScaleTests {
    /// Raises this process's descriptor limit; returns how many connections it can hold.
    static func descriptorsAvailable() -> Int {
        var rl = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl)
        rl.rlim_cur = rl.rlim_max
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl)
        return Int(rl.rlim_cur)
    }

    @Test func tenThousandClientsHoldingHalfALineStayWithinTheDocumentedBound() throws {
        let clients = min(10_000, Self.descriptorsAvailable() - 512)
        let maxLine = 4096
        let server = try ServerProcess(arguments: [
            "--max-line", String(maxLine), "--workers", "2", "--max-connections", "10100",
        ])
        let client = try server.client()
        let token = server.tokens["alice"]!
        let before = try #require(server.residentKiB())
        let half = Array(("MSG " + String(repeating: "h", count: maxLine / 2 - 4)).utf8)
        let held = Locked<[GatehouseConnection]>([])
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { part in
            var mine: [GatehouseConnection] = []
            for _ in 0..<(clients / 4) {
                // A client that fails tries once more, as a real one would: on a CI machine
                // running the whole suite at once, one connection in ten thousand has hit a
                // timeout (the error is kept: a second failure fails the test with it).
                var lastError: (any Error)?
                for _ in 0..<2 {
                    do {
                        let conn = try client.connect()
                        try conn.authenticate(user: "alice", token: token)
                        try conn.writeRaw(half)
                        mine.append(conn)
                        lastError = nil
                        break
                    } catch {
                        lastError = error
                    }
                }
                if let lastError { failures.mutate { $0.append("\(lastError)") } }
            }
            held.mutate { $0 += mine }
        }
        #expect(failures.value.isEmpty, "\(failures.value.count) failed, first: \(failures.value.prefix(3))")
        // Every connection is open and holds its half line; the server has read them all when a
        // new client's PING round trip completes on each worker.
        for _ in 0..<4 { _ = try server.authenticatedConnection().request("PING") }
        let after = try #require(server.residentKiB())
        let perConnection = Double(after - before) * 1024 / Double(clients)
        // The documented bound (README, "Limits"): 16 KiB for the TLS session and connection
        // state, plus the partial line, at most 2 × --max-line.
        let bound = 16 * 1024 + 2 * maxLine
        #expect(perConnection < Double(bound), "\(Int(perConnection)) bytes per connection, bound \(bound)")
        // The others are still served promptly.
        let started = Date()
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("MSG still served") == "ACK 1")
        #expect(Date().timeIntervalSince(started) < 5)
        conn.quit()
        // Each held line completes and is acknowledged in its turn.
        let sample = held.value.prefix(20)
        for c in sample {
            try c.writeRaw([0x0A])
            #expect(try c.readLine() == "ACK 1")
        }
        print(
            "scale: \(clients) connections holding \(maxLine / 2) bytes each: \(Int(perConnection)) bytes resident per connection"
        )
    }
}
