import Foundation
import GatehouseTLS
import TestSupport
import Testing

/// `verifiedPeerIdentity`, the code the server uses to name a client from its certificate, on
/// certificates the openssl command line cannot make: two CNs, NUL bytes, every SAN type,
/// non-ASCII text. They are issued by the test CA with Python's `cryptography`, then presented
/// in a real (in-memory) mutual-TLS handshake.
@Suite("Peer identity")
struct PeerIdentityTests {
    /// Issues `client-NAME` signed by the PKI's CA. `names` are Python expressions for the
    /// subject's attributes; `san` Python expressions for GeneralNames.
    func issue(_ certs: Certificates, _ name: String, names: [String], san: [String] = []) throws {
        let script = """
            import datetime, ipaddress, sys
            from cryptography import x509
            from cryptography.x509.oid import NameOID
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            d = sys.argv[1]
            ca_cert = x509.load_pem_x509_certificate(open(d + "/ca.crt", "rb").read())
            ca_key = serialization.load_pem_private_key(open(d + "/ca.key", "rb").read(), None)
            key = ec.generate_private_key(ec.SECP256R1())
            now = datetime.datetime.now(datetime.timezone.utc)
            b = (x509.CertificateBuilder()
                .subject_name(x509.Name([\(names.joined(separator: ", "))]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
            san = [\(san.joined(separator: ", "))]
            if san:
                b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
            cert = b.sign(ca_key, hashes.SHA256())
            open(d + "/client-\(name).crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
            open(d + "/client-\(name).key", "wb").write(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            """
        let result = try ProcessRunner.run("python3", ["-c", script, certs.pki.directory], timeout: 30)
        guard result.status == 0 else { throw TestSupportError("python3 failed: \(result.stderr)") }
    }

    /// The identity the server reads after a handshake with client certificate `name`.
    func identity(_ certs: Certificates, _ name: String) throws -> CertificateIdentity? {
        let server = try certs.serverContext {
            $0.clientAuth = .required
            $0.clientCAFile = certs.pki.caCertificate
        }
        let client = try certs.clientContext {
            $0.certificateChainFile = certs.pki.clientCertificate(name)
            $0.privateKeyFile = certs.pki.clientKey(name)
        }
        let pair = try InMemoryTLSPair(client: client, server: server)
        let result = pair.handshake()
        try #require(result.succeeded, "client: \(result.client), server: \(result.server)")
        return pair.server.verifiedPeerIdentity
    }

    static func cn(_ python: String) -> String { "x509.NameAttribute(NameOID.COMMON_NAME, \(python))" }

    @Test func aPlainCertificateNamesItsCommonName() throws {
        let certs = try Certificates()
        #expect(try identity(certs, "alice") == CertificateIdentity(commonName: "alice", dnsNames: []))
    }

    @Test func twoCommonNamesNameNobody() throws {
        let certs = try Certificates()
        try issue(certs, "two", names: [Self.cn("'alice'"), Self.cn("'mallory'")])
        let id = try #require(try identity(certs, "two"))
        #expect(id.commonName == nil)
    }

    @Test func aNULInsideTheCommonNameOrASANEntryIsRefused() throws {
        let certs = try Certificates()
        try issue(
            certs,
            "nul",
            names: [Self.cn("'alice\\x00.evil'")],
            san: ["x509.DNSName('good.example')", "x509.DNSName('alice\\x00.evil')"]
        )
        let id = try #require(try identity(certs, "nul"))
        #expect(id.commonName == nil)
        #expect(id.dnsNames == ["good.example"])
    }

    @Test func eachSANTypeLandsInItsPlaceAndOthersAreIgnored() throws {
        let certs = try Certificates()
        try issue(
            certs,
            "sans",
            names: [Self.cn("'svc'")],
            san: [
                "x509.DNSName('a.example')", "x509.RFC822Name('ops@example.org')",
                "x509.UniformResourceIdentifier('spiffe://example.org/svc')",
                "x509.IPAddress(ipaddress.ip_address('192.0.2.7'))",
                "x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'root')]))",
                "x509.DNSName('b.example')",
            ]
        )
        let id = try #require(try identity(certs, "sans"))
        #expect(id.commonName == "svc")
        #expect(id.dnsNames == ["a.example", "b.example"])
        #expect(id.emails == ["ops@example.org"])
        #expect(id.uris == ["spiffe://example.org/svc"])
    }

    /// A UTF-8 CN comes back as the exact bytes of the certificate (here decomposed, NFD), so
    /// the client map can compare byte for byte; a control character in it is escaped in logs.
    @Test func nonASCIICommonNamesKeepTheirBytesAndLogEscaped() throws {
        let certs = try Certificates()
        try issue(certs, "zoe", names: [Self.cn("'Zoe\\u0308 \\u202e\\nFAKE'")])
        let id = try #require(try identity(certs, "zoe"))
        let expected = "Zoe\u{0308} \u{202E}\nFAKE"
        #expect(id.commonName.map { Array($0.utf8) } == Array(expected.utf8))
        #expect(id.description == "CN=Zoe\u{0308} \\u{202e}\\u{a}FAKE")
        #expect(!id.description.contains("\n"))
    }
}
