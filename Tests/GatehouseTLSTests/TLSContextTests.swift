import Foundation
import GatehouseTLS
import TestSupport
import Testing

/// Building contexts from files: each operator mistake gets its own typed error with OpenSSL's reasons.
@Suite struct TLSContextTests {
    @Test func validServerAndClientContextsBuild() throws {
        let certs = try Certificates()
        let server = try TLSContext(server: certs.serverConfiguration())
        let client = try TLSContext(client: certs.clientConfiguration())
        #expect(server.isServer)
        #expect(!client.isServer)
    }

    @Test func keyThatDoesNotMatchTheCertificateIsKeyMismatch() throws {
        let certs = try Certificates()
        var config = certs.serverConfiguration()
        config.privateKeyFile = certs.pki.clientKey("alice")  // a valid key, but not server.crt's
        let error = #expect(throws: TLSError.self) { try TLSContext(server: config) }
        #expect(error?.kind == .keyMismatch, "\(String(describing: error))")
        #expect(error?.message.contains(config.privateKeyFile) == true)
        #expect(error?.reasons.contains("key values mismatch") == true, "\(String(describing: error))")
    }

    @Test func keyOfAnotherTypeIsKeyMismatch() throws {
        let certs = try Certificates()
        let rsa = certs.directory.file("rsa.key")
        let made = try ProcessRunner.run(
            "openssl",
            ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa]
        )
        try #require(made.status == 0, "\(made.stderr)")
        var config = certs.serverConfiguration()
        config.privateKeyFile = rsa
        let error = #expect(throws: TLSError.self) { try TLSContext(server: config) }
        #expect(error?.kind == .keyMismatch, "\(String(describing: error))")
    }

    @Test func clientKeyThatDoesNotMatchItsCertificateIsKeyMismatch() throws {
        let certs = try Certificates()
        var config = certs.clientConfiguration()
        config.certificateChainFile = certs.pki.clientCertificate("alice")
        config.privateKeyFile = certs.pki.serverKey
        let error = #expect(throws: TLSError.self) { try TLSContext(client: config) }
        #expect(error?.kind == .keyMismatch, "\(String(describing: error))")
    }

    @Test func missingCertificateFileIsCertificateErrorWithOpenSSLReason() throws {
        let certs = try Certificates()
        var config = certs.serverConfiguration()
        config.certificateChainFile = certs.directory.file("absent.crt")
        let error = #expect(throws: TLSError.self) { try TLSContext(server: config) }
        #expect(error?.kind == .certificate)
        #expect(error?.message.contains("absent.crt") == true)
        #expect(error?.reasons.contains("no such file") == true, "\(String(describing: error))")
        #expect(error?.description.contains("certificate: ") == true)
    }

    @Test func missingKeyFileIsPrivateKeyErrorWithOpenSSLReason() throws {
        let certs = try Certificates()
        var config = certs.serverConfiguration()
        config.privateKeyFile = certs.directory.file("absent.key")
        let error = #expect(throws: TLSError.self) { try TLSContext(server: config) }
        #expect(error?.kind == .privateKey)
        #expect(error?.message.contains("absent.key") == true)
        #expect(error?.reasons.contains("no such file") == true, "\(String(describing: error))")
    }

    @Test func certificateFileThatIsNotPEMIsCertificateError() throws {
        let certs = try Certificates()
        let junk = certs.directory.file("junk.crt")
        try Data("this is not a certificate\n".utf8).write(to: URL(fileURLWithPath: junk))
        var config = certs.serverConfiguration()
        config.certificateChainFile = junk
        let error = #expect(throws: TLSError.self) { try TLSContext(server: config) }
        #expect(error?.kind == .certificate)
        #expect(error?.openSSLErrors.isEmpty == false, "\(String(describing: error))")
    }

    @Test func keyFileHoldingACertificateIsPrivateKeyError() throws {
        let certs = try Certificates()
        var config = certs.serverConfiguration()
        config.privateKeyFile = certs.pki.serverCertificate
        let error = #expect(throws: TLSError.self) { try TLSContext(server: config) }
        #expect(error?.kind == .privateKey)
        #expect(error?.openSSLErrors.isEmpty == false, "\(String(describing: error))")
    }

    @Test func clientAuthWithoutCAFileIsConfigurationError() throws {
        let certs = try Certificates()
        for mode in [ClientAuthMode.optional, .required] {
            var config = certs.serverConfiguration()
            config.clientAuth = mode
            let error = #expect(throws: TLSError.self) { try TLSContext(server: config) }
            #expect(error?.kind == .configuration)
        }
    }

    @Test func missingClientCABundleIsCertificateError() throws {
        let certs = try Certificates()
        var config = certs.serverConfiguration()
        config.clientAuth = .required
        config.clientCAFile = certs.directory.file("absent-ca.crt")
        let error = #expect(throws: TLSError.self) { try TLSContext(server: config) }
        #expect(error?.kind == .certificate)
        #expect(error?.openSSLErrors.isEmpty == false)
    }

    @Test func clientWithMissingCAFileIsCertificateError() throws {
        let certs = try Certificates()
        let error = #expect(throws: TLSError.self) {
            try TLSContext(client: TLSClientConfiguration(caFile: certs.directory.file("absent-ca.crt")))
        }
        #expect(error?.kind == .certificate)
        #expect(error?.reasons.contains("no such file") == true, "\(String(describing: error))")
    }

    @Test func errorKindsHaveDistinctDescriptions() {
        let kinds: [TLSError.Kind] = [
            .configuration, .certificate, .privateKey, .keyMismatch, .handshake, .io, .protocolViolation, .resource,
        ]
        #expect(Set(kinds).count == kinds.count)
        #expect(Set(kinds.map(\.description)).count == kinds.count)
        let error = TLSError(.handshake, "boom", openSSLErrors: ["a", "b"])
        #expect(error.description == "handshake: boom (a; b)")
        #expect(TLSError(.io, "reset").description == "io: reset")
    }
}

/// The libcrypto primitives the rest of Gatehouse uses.
@Suite struct CryptoTests {
    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    @Test(arguments: [
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
    ])
    func sha256MatchesKnownVectors(_ input: String, _ digest: String) {
        #expect(Self.hex(Crypto.sha256(Array(input.utf8))) == digest)
    }

    @Test func sha256AcceptsAnyByteCollection() {
        let bytes = Array("abc".utf8)
        #expect(Crypto.sha256(bytes[...]) == Crypto.sha256(bytes))
        #expect(Crypto.sha256("abc".utf8) == Crypto.sha256(bytes))
        #expect(Crypto.sha256(bytes).count == 32)
    }

    @Test func constantTimeEqualsComparesContentAndLength() {
        let a = Crypto.sha256(Array("a".utf8))
        var b = a
        #expect(Crypto.constantTimeEquals(a, b))
        b[31] ^= 0x80
        #expect(!Crypto.constantTimeEquals(a, b))
        b = a
        b[0] ^= 0x01
        #expect(!Crypto.constantTimeEquals(a, b))
        #expect(!Crypto.constantTimeEquals(a, Array(a.dropLast())))
        #expect(!Crypto.constantTimeEquals(Array(a.dropLast()), a))
        #expect(Crypto.constantTimeEquals([], []))
        #expect(!Crypto.constantTimeEquals([], [0]))
    }

    @Test(arguments: [0, 1, 16, 32, 1000])
    func randomBytesHaveTheRequestedLength(_ count: Int) {
        #expect(Crypto.randomBytes(count).count == count)
    }

    @Test func randomBytesDoNotRepeat() {
        var seen: Set<[UInt8]> = []
        for _ in 0..<100 { seen.insert(Crypto.randomBytes(32)) }
        #expect(seen.count == 100)
        // Not stuck on one value inside a draw either.
        #expect(Set(Crypto.randomBytes(1000)).count > 200)
    }
}
