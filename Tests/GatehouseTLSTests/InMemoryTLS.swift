import GatehouseTLS
import TestSupport

/// A client and a server `TLSConnection` over memory BIOs, pumped by hand: no sockets, no threads.
/// Modelled on nio-ssl's `BackToBackEmbeddedChannel` and s2n's `s2n_negotiate_test_server_and_client`.
final class InMemoryTLSPair {
    let client: TLSConnection
    let server: TLSConnection

    /// How a handshake ended for each side: completed, failed with an error, or still waiting.
    enum Side {
        case completed
        case failed(TLSError)
        case waiting

        var error: TLSError? {
            if case .failed(let error) = self { return error }
            return nil
        }
        var isFinished: Bool {
            if case .waiting = self { return false }
            return true
        }
    }

    struct HandshakeResult {
        var client: Side
        var server: Side
        /// Both sides completed the handshake.
        var succeeded: Bool {
            if case .completed = client, case .completed = server { return true }
            return false
        }
    }

    /// - Parameter serverName: SNI and, when `verifyHost` is set, the name the server's certificate must carry.
    init(
        client clientContext: TLSContext,
        server serverContext: TLSContext,
        serverName: String? = "localhost",
        verifyHost: Bool = true
    ) throws {
        client = try TLSConnection(inMemory: clientContext)
        server = try TLSConnection(inMemory: serverContext)
        if let serverName { try client.setServerName(serverName, verifyHost: verifyHost) }
    }

    /// Moves pending ciphertext both ways; returns how many bytes moved.
    @discardableResult
    func shuttle() -> Int {
        let toServer = client.takeCiphertext()
        server.feed(ciphertext: toServer)
        let toClient = server.takeCiphertext()
        client.feed(ciphertext: toClient)
        return toServer.count + toClient.count
    }

    /// Drives both handshakes until each side has completed or failed, or nothing moves any more.
    func handshake(maxRounds: Int = 32) -> HandshakeResult {
        var result = HandshakeResult(client: .waiting, server: .waiting)
        for _ in 0..<maxRounds {
            let before = (result.client.isFinished, result.server.isFinished)
            if !result.client.isFinished { result.client = step(client) }
            server.feed(ciphertext: client.takeCiphertext())
            if !result.server.isFinished { result.server = step(server) }
            let moved = server.takeCiphertext()
            client.feed(ciphertext: moved)
            if result.client.isFinished && result.server.isFinished { break }
            let progressed = before != (result.client.isFinished, result.server.isFinished)
            if !progressed && moved.isEmpty && result.client.isFinished != result.server.isFinished {
                // One side is finished and the other has nothing new to read: it will wait forever.
                break
            }
        }
        return result
    }

    private func step(_ connection: TLSConnection) -> Side {
        switch connection.handshake() {
        case .done: .completed
        case .failed(let error): .failed(error)
        case .wantRead, .wantWrite: .waiting
        case .closed: .failed(TLSError(.handshake, "closed during the handshake"))
        }
    }

    /// Writes `bytes` on `sender`, carries the ciphertext over and reads everything on `receiver`.
    /// Throws if either call fails or not all bytes arrive.
    func send(_ bytes: [UInt8], from sender: TLSConnection, to receiver: TLSConnection) throws -> [UInt8] {
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { sender.write($0) }
            guard case .done(let n) = result, n > 0 else { throw TestSupportError("write failed: \(result)") }
            written += n
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        for _ in 0..<1000 where received.count < bytes.count {
            shuttle()
            let result = buffer.withUnsafeMutableBytes { receiver.read(into: $0) }
            switch result {
            case .done(let n): received += buffer[0..<n]
            case .wantRead, .wantWrite: continue
            case .closed, .failed: throw TestSupportError("read failed: \(result)")
            }
        }
        guard received.count == bytes.count else {
            throw TestSupportError("received \(received.count) of \(bytes.count) bytes")
        }
        return received
    }

    /// Reads on `receiver` after carrying over whatever is pending; returns the first non-wait result.
    func readResult(on receiver: TLSConnection) -> TLSIOResult {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var last = TLSIOResult.wantRead
        for _ in 0..<8 {
            shuttle()
            last = buffer.withUnsafeMutableBytes { receiver.read(into: $0) }
            switch last {
            case .wantRead, .wantWrite: continue
            default: return last
            }
        }
        return last
    }
}

/// Certificates for one test, made by `scripts/gen-certs.sh` in a fresh temporary folder:
/// `pki` (CA, server for localhost/127.0.0.1/::1, client alice) and, on demand, an unrelated `other` CA.
final class Certificates {
    let directory: TemporaryDirectory
    let pki: TestPKI

    init(clients: [String] = ["alice"]) throws {
        directory = try TemporaryDirectory(prefix: "gatehouse-tls")
        do {
            pki = try TestPKI.make(in: directory.file("pki"), extraArguments: clients.flatMap { ["--client", $0] })
        } catch {
            directory.remove()
            throw error
        }
    }

    /// A second, unrelated CA with its own server and client alice.
    func makeOtherPKI() throws -> TestPKI {
        try TestPKI.make(in: directory.file("other"), extraArguments: ["--client", "alice"])
    }

    deinit { directory.remove() }

    func serverConfiguration() -> TLSServerConfiguration {
        TLSServerConfiguration(certificateChainFile: pki.serverCertificate, privateKeyFile: pki.serverKey)
    }

    func clientConfiguration() -> TLSClientConfiguration {
        TLSClientConfiguration(caFile: pki.caCertificate)
    }

    func serverContext(_ adjust: (inout TLSServerConfiguration) -> Void = { _ in }) throws -> TLSContext {
        var config = serverConfiguration()
        adjust(&config)
        return try TLSContext(server: config)
    }

    func clientContext(_ adjust: (inout TLSClientConfiguration) -> Void = { _ in }) throws -> TLSContext {
        var config = clientConfiguration()
        adjust(&config)
        return try TLSContext(client: config)
    }
}

extension TLSError {
    /// OpenSSL's reasons, joined and lowercased, for `contains` checks.
    var reasons: String { openSSLErrors.joined(separator: " | ").lowercased() }
}
