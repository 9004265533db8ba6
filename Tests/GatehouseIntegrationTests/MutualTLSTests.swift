import Foundation
import TestSupport
import Testing

/// Client certificates against the real server, driven by `openssl s_client`: each
/// `--client-auth` mode with and without a certificate, certificates that must be refused
/// (another CA, expired, revoked), and the mapping of certificate names to users.
@Suite("Mutual TLS")
struct MutualTLSTests {
    /// A server with client certificates for `clients` (plus whatever `prepare` adds to the PKI),
    /// started with `--client-auth mode --client-ca ca.crt` and `arguments(pki)`.
    final class Fixture {
        let folder: TemporaryDirectory
        let pki: TestPKI
        let server: ServerProcess

        init(
            mode: String,
            clients: [String] = ["alice"],
            prepare: (TestPKI) throws -> Void = { _ in },
            arguments: (TestPKI) throws -> [String] = { _ in [] }
        ) throws {
            folder = try TemporaryDirectory(prefix: "gatehouse-mtls")
            pki = try TestPKI.make(in: folder.file("pki"), extraArguments: clients.flatMap { ["--client", $0] })
            try prepare(pki)
            server = try ServerProcess(
                arguments: ["--client-auth", mode, "--client-ca", pki.caCertificate] + (try arguments(pki)),
                pki: pki
            )
        }
    }

    static let session = "PING\nQUIT\n"

    // MARK: each mode, with and without a certificate

    @Test func offIgnoresAClientCertificate() throws {
        let f = try Fixture(mode: "off")
        let result = try f.server.sClient(Self.session, certificate: "alice")
        #expect(replyLines(result.stdout) == ["HELLO gatehouse/1", "PONG", "BYE"])
        let plain = try f.server.sClient(Self.session, certificate: nil)
        #expect(replyLines(plain.stdout) == ["HELLO gatehouse/1", "PONG", "BYE"])
    }

    @Test(arguments: ["optional", "required"])
    func aVerifiedCertificateAuthenticatesItsCommonName(_ mode: String) throws {
        let f = try Fixture(mode: mode)
        let result = try f.server.sClient("MSG by certificate\nQUIT\n", certificate: "alice")
        #expect(
            replyLines(result.stdout) == ["HELLO gatehouse/1 AUTHENTICATED alice", "ACK 1", "BYE"],
            "\(result.stderr)"
        )
        #expect(try f.server.journalRecords().map { $0["user"] as? String } == ["alice"])
        #expect(f.server.log.contains("user=alice"))
    }

    @Test func optionalWithoutACertificateFallsBackToTokens() throws {
        let f = try Fixture(mode: "optional")
        let token = f.server.tokens["alice"]!
        let result = try f.server.sClient("MSG early\nAUTH alice \(token)\nMSG late\nQUIT\n", certificate: nil)
        let lines = replyLines(result.stdout)
        #expect(lines.first == "HELLO gatehouse/1")
        #expect(lines.dropFirst().first?.hasPrefix("ERR NOAUTH") == true)
        #expect(Array(lines.dropFirst(2)) == ["OK AUTH alice", "ACK 1", "BYE"])
    }

    @Test func requiredWithoutACertificateFailsTheHandshakeWithAnAlert() throws {
        let f = try Fixture(mode: "required")
        let result = try f.server.sClient(Self.session, certificate: nil)
        #expect(!result.stdout.contains("HELLO"))
        #expect(result.stderr.contains("alert certificate required"), "\(result.stderr)")
        #expect(f.server.waitForLog("peer did not return a certificate"), "\(f.server.log)")
    }

    // MARK: certificates that must be refused

    @Test(arguments: ["optional", "required"])
    func aCertificateFromAnotherCAIsRefused(_ mode: String) throws {
        let f = try Fixture(mode: mode)
        let other = try TestPKI.make(in: f.folder.file("other"), extraArguments: ["--client", "alice"])
        let result = try f.server.sClient(
            Self.session,
            extra: ["-cert", other.clientCertificate("alice"), "-key", other.clientKey("alice")]
        )
        #expect(!result.stdout.contains("HELLO"))
        #expect(result.stderr.contains("alert unknown ca"), "\(result.stderr)")
        #expect(
            f.server.waitForLog("peer certificate refused: unable to get local issuer certificate"),
            "\(f.server.log)"
        )
    }

    @Test(arguments: ["optional", "required"])
    func anExpiredCertificateIsRefused(_ mode: String) throws {
        let f = try Fixture(mode: mode, prepare: { try $0.issueClient("old", days: -1) })
        let result = try f.server.sClient(Self.session, certificate: "old")
        #expect(!result.stdout.contains("HELLO"))
        #expect(result.stderr.contains("alert certificate expired"), "\(result.stderr)")
        #expect(f.server.waitForLog("peer certificate refused: certificate has expired"), "\(f.server.log)")
    }

    @Test(arguments: ["optional", "required"])
    func aRevokedCertificateIsRefusedAndOthersStillWork(_ mode: String) throws {
        let f = try Fixture(
            mode: mode,
            clients: ["alice", "bob"],
            prepare: { try $0.regenerate(["--revoke", "bob"]) },
            arguments: { ["--crl", $0.crlFile] }
        )
        let revoked = try f.server.sClient(Self.session, certificate: "bob")
        #expect(!revoked.stdout.contains("HELLO"))
        #expect(revoked.stderr.contains("alert certificate revoked"), "\(revoked.stderr)")
        #expect(f.server.waitForLog("peer certificate refused: certificate revoked"), "\(f.server.log)")
        let fine = try f.server.sClient(Self.session, certificate: "alice")
        #expect(replyLines(fine.stdout) == ["HELLO gatehouse/1 AUTHENTICATED alice", "PONG", "BYE"])
    }

    @Test func aCRLFileThatIsNotACRLKeepsTheServerFromStarting() throws {
        #expect(throws: (any Error).self) {
            _ = try Fixture(mode: "required", arguments: { ["--crl", $0.caCertificate] })
        }
    }

    // MARK: names to users

    @Test func aCommonNameThatIsNoUserNameAuthenticatesNobody() throws {
        let f = try Fixture(mode: "optional", prepare: { try $0.issueClient("spaced", subject: "/CN=Alice Example") })
        let result = try f.server.sClient(Self.session, certificate: "spaced")
        #expect(replyLines(result.stdout) == ["HELLO gatehouse/1", "PONG", "BYE"])
        #expect(f.server.waitForLog("names no user"))
    }

    @Test func theClientMapMapsSubjectsAndSANEntriesToUsers() throws {
        let f = try Fixture(
            mode: "required",
            prepare: { pki in
                try pki.issueClient(
                    "sensor",
                    subject: "/CN=Sensor 7",
                    san: "email:Sensor7@Example.org, URI:spiffe://example.org/s7"
                )
                try pki.issueClient("uri", subject: "/CN=whoever", san: "URI:spiffe://example.org/svc")
                let map = """
                    # client map
                    email:sensor7@example.org   sensors
                    URI:spiffe://example.org/svc  service
                    CN:alice                    alice-admin
                    """
                let path = pki.directory + "/client-map"
                try Data(map.utf8).write(to: URL(fileURLWithPath: path))
                chmod(path, 0o600)
            },
            arguments: { ["--client-map", $0.directory + "/client-map"] }
        )
        let expectations = [("sensor", "sensors"), ("uri", "service"), ("alice", "alice-admin")]
        for (cert, user) in expectations {
            let result = try f.server.sClient(Self.session, certificate: cert)
            #expect(replyLines(result.stdout).first == "HELLO gatehouse/1 AUTHENTICATED \(user)", "\(cert)")
        }
    }

    @Test func aClientMapOthersCanReadKeepsTheServerFromStarting() throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-map")
        let pki = try TestPKI.make(in: folder.file("pki"))
        let path = folder.file("client-map")
        try Data("CN:alice alice\n".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o644)
        #expect {
            _ = try ServerProcess(
                arguments: ["--client-auth", "optional", "--client-ca", pki.caCertificate, "--client-map", path],
                pki: pki
            )
        } throws: { error in
            "\(error)".contains("chmod 600")
        }
    }
}
