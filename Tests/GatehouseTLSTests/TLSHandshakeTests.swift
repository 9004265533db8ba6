import GatehouseTLS
import TestSupport
import Testing

/// Handshakes and data over memory BIOs: versions, ciphers, verification and mutual TLS.
@Suite struct TLSHandshakeTests {
    // MARK: the default handshake

    @Test func handshakeCompletesAndDataFlowsBothWays() throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(client: try certs.clientContext(), server: try certs.serverContext())
        let result = pair.handshake()
        #expect(result.succeeded, "client: \(result.client), server: \(result.server)")
        #expect(pair.client.isHandshakeComplete)
        #expect(pair.server.isHandshakeComplete)

        let request = Array("PING\n".utf8)
        #expect(try pair.send(request, from: pair.client, to: pair.server) == request)
        let reply = Array("PONG\n".utf8)
        #expect(try pair.send(reply, from: pair.server, to: pair.client) == reply)
        // More than one TLS record's worth (16 KiB) each way.
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(try pair.send(big, from: pair.client, to: pair.server) == big)
        #expect(try pair.send(big, from: pair.server, to: pair.client) == big)
    }

    @Test func negotiatesTLS13WithAES128GCMByDefault() throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(client: try certs.clientContext(), server: try certs.serverContext())
        try #require(pair.handshake().succeeded)
        for side in [pair.client, pair.server] {
            #expect(side.protocolVersion == "TLSv1.3")
            #expect(side.cipherName == "TLS_AES_128_GCM_SHA256")
            #expect(!side.sessionReused)
        }
    }

    @Test func cipherIsNoneBeforeTheHandshake() throws {
        let certs = try Certificates()
        let connection = try TLSConnection(inMemory: try certs.serverContext())
        #expect(connection.cipherName == "none")
        #expect(!connection.isHandshakeComplete)
        #expect(connection.verifiedPeerCommonName == nil)
    }

    @Test func clientSeesTheServerCertificateName() throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(client: try certs.clientContext(), server: try certs.serverContext())
        try #require(pair.handshake().succeeded)
        #expect(pair.client.verifiedPeerCommonName == "localhost")
        // No client certificate was asked for.
        #expect(pair.server.verifiedPeerCommonName == nil)
    }

    @Test func closeNotifyReachesThePeerAsClosed() throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(client: try certs.clientContext(), server: try certs.serverContext())
        try #require(pair.handshake().succeeded)
        _ = try pair.send(Array("QUIT\n".utf8), from: pair.client, to: pair.server)
        pair.client.shutdown()
        let result = pair.readResult(on: pair.server)
        guard case .closed = result else {
            Issue.record("expected .closed after close_notify, got \(result)")
            return
        }
    }

    @Test func tamperedRecordFailsTheRead() throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(client: try certs.clientContext(), server: try certs.serverContext())
        try #require(pair.handshake().succeeded)
        _ = try pair.send(Array("warm up\n".utf8), from: pair.server, to: pair.client)
        let message = Array("MSG secret\n".utf8)
        let written = message.withUnsafeBytes { pair.client.write($0) }
        guard case .done(message.count) = written else {
            Issue.record("write: \(written)")
            return
        }
        var record = pair.client.takeCiphertext()
        try #require(record.count > 10)
        record[record.count - 3] ^= 0x01  // flip one bit of the AEAD tag
        pair.server.feed(ciphertext: record)
        var buffer = [UInt8](repeating: 0, count: 256)
        let result = buffer.withUnsafeMutableBytes { pair.server.read(into: $0) }
        guard case .failed(let error) = result else {
            Issue.record("expected a failure for a tampered record, got \(result)")
            return
        }
        #expect(error.kind == .protocolViolation)
        #expect(!error.openSSLErrors.isEmpty)
    }

    // MARK: versions

    @Test func tls12ClientFailsAgainstDefaultServer() throws {
        let certs = try Certificates()
        let client = try certs.clientContext { $0.maximumVersion = .v1_2 }
        let pair = try InMemoryTLSPair(client: client, server: try certs.serverContext())
        let result = pair.handshake()
        #expect(!result.succeeded)
        let serverError = try #require(result.server.error, "server: \(result.server)")
        #expect(serverError.kind == .handshake)
        #expect(serverError.reasons.contains("unsupported protocol"), "\(serverError)")
        // The server's alert reaches the client, which fails too.
        let clientError = try #require(result.client.error, "client: \(result.client)")
        #expect(clientError.kind == .handshake)
        #expect(clientError.reasons.contains("protocol version"), "\(clientError)")
    }

    @Test func tls12WorksWhenTheServerAllowsIt() throws {
        let certs = try Certificates()
        let client = try certs.clientContext { $0.maximumVersion = .v1_2 }
        let server = try certs.serverContext { $0.minimumVersion = .v1_2 }
        let pair = try InMemoryTLSPair(client: client, server: server)
        let result = pair.handshake()
        try #require(result.succeeded, "client: \(result.client), server: \(result.server)")
        #expect(pair.client.protocolVersion == "TLSv1.2")
        #expect(pair.server.protocolVersion == "TLSv1.2")
        // ECDSA certificates from gen-certs.sh: forward-secret AEAD, AES-128-GCM preferred.
        #expect(pair.server.cipherName == "ECDHE-ECDSA-AES128-GCM-SHA256")
        #expect(pair.client.verifiedPeerCommonName == "localhost")
        let line = Array("MSG over 1.2\n".utf8)
        #expect(try pair.send(line, from: pair.client, to: pair.server) == line)
        #expect(try pair.send(line, from: pair.server, to: pair.client) == line)
    }

    @Test func serverAllowing12StillPrefers13() throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(
            client: try certs.clientContext(),
            server: try certs.serverContext { $0.minimumVersion = .v1_2 }
        )
        try #require(pair.handshake().succeeded)
        #expect(pair.server.protocolVersion == "TLSv1.3")
    }

    // MARK: verification

    @Test func serverFromAnotherCAFailsVerification() throws {
        let certs = try Certificates()
        let other = try certs.makeOtherPKI()
        let client = try TLSContext(client: TLSClientConfiguration(caFile: other.caCertificate))
        let pair = try InMemoryTLSPair(client: client, server: try certs.serverContext())
        let result = pair.handshake()
        #expect(!result.succeeded)
        let error = try #require(result.client.error, "client: \(result.client)")
        #expect(error.kind == .handshake)
        #expect(error.reasons.contains("certificate verify failed"), "\(error)")
        #expect(pair.client.verifiedPeerCommonName == nil)
    }

    @Test func verificationOffAcceptsAnyServerButNamesNoPeer() throws {
        let certs = try Certificates()
        let other = try certs.makeOtherPKI()
        var config = TLSClientConfiguration(caFile: other.caCertificate)
        config.verifyPeer = false
        let pair = try InMemoryTLSPair(client: try TLSContext(client: config), server: try certs.serverContext())
        #expect(pair.handshake().succeeded)
        // Nothing was verified, so there is no verified name to report.
        #expect(pair.client.verifiedPeerCommonName == nil)
    }

    @Test(arguments: ["example.com", "localhost.example", "local", "127.0.0.2", "10.0.0.1", "::2"])
    func wrongHostNameFailsVerification(_ name: String) throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(
            client: try certs.clientContext(),
            server: try certs.serverContext(),
            serverName: name
        )
        let result = pair.handshake()
        #expect(!result.succeeded)
        let error = try #require(result.client.error, "client: \(result.client)")
        #expect(error.kind == .handshake)
        #expect(error.reasons.contains("certificate verify failed"), "\(error)")
    }

    @Test(arguments: ["localhost", "LOCALHOST", "127.0.0.1", "::1"])
    func matchingHostNameOrAddressVerifies(_ name: String) throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(
            client: try certs.clientContext(),
            server: try certs.serverContext(),
            serverName: name
        )
        let result = pair.handshake()
        #expect(result.succeeded, "client: \(result.client), server: \(result.server)")
    }

    @Test func wrongNameIsAcceptedWhenHostVerificationIsOff() throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(
            client: try certs.clientContext(),
            server: try certs.serverContext(),
            serverName: "example.com",
            verifyHost: false
        )
        #expect(pair.handshake().succeeded)
        // The chain was still verified against the CA.
        #expect(pair.client.verifiedPeerCommonName == "localhost")
    }

    // MARK: mutual TLS

    func mutualServer(_ certs: Certificates, _ mode: ClientAuthMode) throws -> TLSContext {
        try certs.serverContext {
            $0.clientAuth = mode
            $0.clientCAFile = certs.pki.caCertificate
        }
    }

    func aliceClient(_ certs: Certificates, from pki: TestPKI? = nil) throws -> TLSContext {
        let pki = pki ?? certs.pki
        return try certs.clientContext {
            $0.certificateChainFile = pki.clientCertificate("alice")
            $0.privateKeyFile = pki.clientKey("alice")
        }
    }

    @Test(arguments: [ClientAuthMode.required, .optional])
    func clientCertificateNamesThePeerOnTheServer(_ mode: ClientAuthMode) throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(client: try aliceClient(certs), server: try mutualServer(certs, mode))
        let result = pair.handshake()
        try #require(result.succeeded, "client: \(result.client), server: \(result.server)")
        #expect(pair.server.verifiedPeerCommonName == "alice")
        #expect(pair.client.verifiedPeerCommonName == "localhost")
        let line = Array("MSG hi\n".utf8)
        #expect(try pair.send(line, from: pair.client, to: pair.server) == line)
    }

    @Test func requiredClientCertificateMissingFailsTheHandshake() throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(client: try certs.clientContext(), server: try mutualServer(certs, .required))
        let result = pair.handshake()
        #expect(!result.succeeded)
        let error = try #require(result.server.error, "server: \(result.server)")
        #expect(error.kind == .handshake)
        #expect(error.reasons.contains("peer did not return a certificate"), "\(error)")
        #expect(pair.server.verifiedPeerCommonName == nil)
        // In TLS 1.3 the client finishes first and learns of the refusal from the alert on its next read.
        let read = pair.readResult(on: pair.client)
        guard case .failed = read else {
            Issue.record("expected the client's read to fail after the server's alert, got \(read)")
            return
        }
    }

    @Test func optionalClientCertificateMissingStillConnectsAnonymously() throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(client: try certs.clientContext(), server: try mutualServer(certs, .optional))
        try #require(pair.handshake().succeeded)
        #expect(pair.server.verifiedPeerCommonName == nil)
        let line = Array("PING\n".utf8)
        #expect(try pair.send(line, from: pair.client, to: pair.server) == line)
    }

    @Test(arguments: [ClientAuthMode.required, .optional])
    func clientCertificateFromAnotherCAFails(_ mode: ClientAuthMode) throws {
        let certs = try Certificates()
        let other = try certs.makeOtherPKI()
        let pair = try InMemoryTLSPair(
            client: try aliceClient(certs, from: other),
            server: try mutualServer(certs, mode)
        )
        let result = pair.handshake()
        #expect(!result.succeeded)
        let error = try #require(result.server.error, "server: \(result.server)")
        #expect(error.kind == .handshake)
        #expect(error.reasons.contains("certificate verify failed"), "\(error)")
        #expect(pair.server.verifiedPeerCommonName == nil)
    }

    @Test func clientCertificateIsIgnoredWhenClientAuthIsOff() throws {
        let certs = try Certificates()
        let pair = try InMemoryTLSPair(client: try aliceClient(certs), server: try certs.serverContext())
        try #require(pair.handshake().succeeded)
        #expect(pair.server.verifiedPeerCommonName == nil)
    }
}
