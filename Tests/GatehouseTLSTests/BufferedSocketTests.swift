import GatehouseTLS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The server's deferred-write socket BIO and its ciphertext buffer: output waits until the owner
/// sends it (one `send` per flush), reads skip the `recv` known to say EAGAIN, nothing is lost
/// or reordered when the buffer or the socket fills.
@Suite struct BufferedSocketTests {
    // MARK: the buffer

    @Test func bufferTakesOnlyWhatFitsAndKeepsOrder() {
        var buffer = CiphertextBuffer(limit: 10)
        let first = Array(0..<6).map(UInt8.init)
        let second = Array(6..<20).map(UInt8.init)
        // (#expect cannot look into a noncopyable value: read it into locals first.)
        let taken = [first, second, second].map { bytes in bytes.withUnsafeBytes { buffer.append($0) } }
        #expect(taken == [6, 4, 0])  // full at 10
        let full = buffer.withPending { Array($0) }
        #expect(full == Array(0..<10).map(UInt8.init))
        buffer.consume(3)  // a partial send
        let more = second.suffix(from: 4).withUnsafeBytes { buffer.append($0) }
        #expect(more == 3)
        let after = buffer.withPending { Array($0) }
        #expect(after == Array(3..<13).map(UInt8.init))
        let count = buffer.count
        #expect(count == 10)
    }

    @Test func bufferGrowsBeyondItsFirstBlockAndFreesWhenEmpty() {
        var buffer = CiphertextBuffer(limit: 40_000)
        let heldAtFirst = buffer.holdsMemory
        #expect(!heldAtFirst)
        let bytes = (0..<30_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var offset = 0
        while offset < bytes.count {  // 1000-byte writes, as records would come
            offset += bytes[offset..<min(offset + 1000, bytes.count)].withUnsafeBytes { buffer.append($0) }
        }
        let pending = buffer.withPending { Array($0) }
        #expect(pending == bytes)
        buffer.consume(29_999)
        let heldWithOneByte = buffer.holdsMemory
        #expect(heldWithOneByte)
        buffer.consume(1)
        let (heldWhenEmpty, empty) = (buffer.holdsMemory, buffer.isEmpty)
        #expect(!heldWhenEmpty && empty)
        let five = bytes.prefix(5).withUnsafeBytes { buffer.append($0) }
        #expect(five == 5)
        buffer.discard()
        let (heldAfterDiscard, left) = (buffer.holdsMemory, buffer.count)
        #expect(!heldAfterDiscard && left == 0)
    }

    // MARK: the socket BIO

    /// A non-blocking stream socket pair: [server end, client end].
    private func socketPair() throws -> [Int32] {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        return fds
    }

    private func readAll(_ client: TLSConnection, count: Int) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<1000 where out.count < count {
            guard case .done(let n) = chunk.withUnsafeMutableBytes({ client.read(into: $0) }) else { break }
            out += chunk.prefix(n)
        }
        return out
    }

    @Test func flightTicketAndGreetingLeaveInOneSendAndNoReadSaysEAGAIN() throws {
        let certs = try Certificates()
        let fds = try socketPair()
        defer { for fd in fds { close(fd) } }
        let server = try TLSConnection(context: try certs.serverContext(), bufferedSocket: fds[0], outputLimit: 32768)
        let client = try TLSConnection(context: try certs.clientContext(), fd: fds[1])
        try client.setServerName("localhost", verifyHost: true)

        guard case .wantRead = client.handshake() else {
            Issue.record("client did not send its hello")
            return
        }
        guard case .wantRead = server.handshake() else {
            Issue.record("server did not wait")
            return
        }
        // The ClientHello came in one short recv; the read after it was skipped, not EAGAIN.
        #expect(server.socketReceives == 1)
        #expect(server.socketDrained)
        #expect(server.pendingCiphertext > 0)
        // Nothing reached the client before the owner sent it.
        guard case .wantRead = client.handshake() else {
            Issue.record("client saw a flight early")
            return
        }
        #expect(server.sendPendingCiphertext() == .done)
        #expect(server.pendingCiphertext == 0)
        guard case .done = client.handshake() else {
            Issue.record("client did not finish")
            return
        }

        // Until epoll says readable, the server does not ask the kernel.
        guard case .wantRead = server.handshake() else {
            Issue.record("server read past a drained socket")
            return
        }
        #expect(server.socketReceives == 1)
        server.socketReadable()
        guard case .done = server.handshake() else {
            Issue.record("server did not finish")
            return
        }
        #expect(server.socketReceives == 2)

        // The ticket and the greeting wait together; one send delivers both.
        let ticketOnly = server.pendingCiphertext
        #expect(ticketOnly > 0, "one session ticket is written when the handshake completes")
        let hello = Array("HELLO gatehouse/1\n".utf8)
        guard case .done(hello.count) = hello.withUnsafeBytes({ server.write($0) }) else {
            Issue.record("the greeting was not taken")
            return
        }
        #expect(server.pendingCiphertext > ticketOnly)
        #expect(server.sendPendingCiphertext() == .done)
        #expect(readAll(client, count: hello.count) == hello)
    }

    @Test func aFullBufferAsksForWritesAndLosesNothing() throws {
        let certs = try Certificates()
        let fds = try socketPair()
        defer { for fd in fds { close(fd) } }
        // Smaller than one flight: the handshake must go through want-write and several sends.
        let server = try TLSConnection(context: try certs.serverContext(), bufferedSocket: fds[0], outputLimit: 300)
        let client = try TLSConnection(context: try certs.clientContext(), fd: fds[1])
        try client.setServerName("localhost", verifyHost: true)
        var serverDone = false
        var clientDone = false
        var sawWantWrite = false
        for _ in 0..<200 where !(serverDone && clientDone) {
            if !clientDone, case .done = client.handshake() { clientDone = true }
            server.socketReadable()
            if !serverDone {
                switch server.handshake() {
                case .done: serverDone = true
                case .wantWrite: sawWantWrite = true
                case .wantRead: break
                default: Issue.record("server handshake failed")
                }
            }
            #expect(server.sendPendingCiphertext() == .done)
        }
        #expect(serverDone && clientDone && sawWantWrite)

        // 200 KB one way: the buffer fills, then the socket; everything arrives in order.
        let big = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        var sent = 0
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<100_000 where received.count < big.count {
            if sent < big.count {
                if case .done(let n) = big[sent...].withUnsafeBytes({ server.write($0) }) { sent += n }
                let status = server.sendPendingCiphertext()
                #expect(status != .failed(EPIPE))
            }
            if case .done(let n) = chunk.withUnsafeMutableBytes({ client.read(into: $0) }) {
                received += chunk.prefix(n)
            }
        }
        #expect(received == big)
    }

    /// A worker's sessions take turns on one BIO: interleaved handshakes, writes and reads each
    /// reach their own socket and nothing of one connection reaches the other.
    @Test func sessionsSharingOneBIOKeepTheirBytesApart() throws {
        let certs = try Certificates()
        let shared = try SharedSocketBIO()
        let context = try certs.serverContext()
        var pairs: [[Int32]] = []
        defer { for fds in pairs { for fd in fds { close(fd) } } }
        var servers: [TLSConnection] = []
        var clients: [TLSConnection] = []
        for _ in 0..<3 {
            let fds = try socketPair()
            pairs.append(fds)
            servers.append(
                try TLSConnection(context: context, bufferedSocket: fds[0], outputLimit: 32768, sharing: shared)
            )
            let client = try TLSConnection(context: try certs.clientContext(), fd: fds[1])
            try client.setServerName("localhost", verifyHost: true)
            clients.append(client)
        }
        var serverDone = [false, false, false]
        var clientDone = [false, false, false]
        for _ in 0..<50 where serverDone.contains(false) || clientDone.contains(false) {
            for i in [2, 0, 1] {  // not in creation order: the BIO holds no session between calls
                if !clientDone[i], case .done = clients[i].handshake() { clientDone[i] = true }
                servers[i].socketReadable()
                if !serverDone[i] {
                    switch servers[i].handshake() {
                    case .done: serverDone[i] = true
                    case .wantRead, .wantWrite: break
                    default: Issue.record("server \(i) handshake failed")
                    }
                }
                #expect(servers[i].sendPendingCiphertext() == .done)
            }
        }
        #expect(!serverDone.contains(false) && !clientDone.contains(false))

        // Each server greets its own client; each client answers its own server.
        for i in [1, 2, 0] {
            let greeting = Array("HELLO \(i)\n".utf8)
            guard case .done(greeting.count) = greeting.withUnsafeBytes({ servers[i].write($0) }) else {
                Issue.record("server \(i) did not take its greeting")
                return
            }
            #expect(servers[i].sendPendingCiphertext() == .done)
        }
        for i in 0..<3 {
            #expect(readAll(clients[i], count: 8) == Array("HELLO \(i)\n".utf8))
            let answer = Array("AUTH user\(i) token\(i)\n".utf8)
            guard case .done(answer.count) = answer.withUnsafeBytes({ clients[i].write($0) }) else {
                Issue.record("client \(i) did not send")
                return
            }
        }
        for i in [2, 1, 0] {
            servers[i].socketReadable()
            let expected = Array("AUTH user\(i) token\(i)\n".utf8)
            #expect(readAll(servers[i], count: expected.count) == expected)
        }
    }
}
