import Foundation
import TestSupport
import Testing

/// SIGHUP reloads the TLS material, the client map and the tokens without dropping anyone:
/// established connections keep their session, new handshakes get the new material, and a
/// broken file leaves the old material in force.
@Suite("Reload")
struct ReloadTests {
    @Test func newCertificateServesNewHandshakesWhileAnOpenClientKeepsWorking() throws {
        let server = try ServerProcess()
        let before = try server.presentedFingerprint()
        #expect(before == (try fingerprint(ofCertificateFile: server.pki.serverCertificate)))
        let established = try server.authenticatedConnection()
        #expect(try established.request("MSG before") == "ACK 1")

        try server.pki.regenerate([])  // same CA, new server key and certificate
        let renewed = try fingerprint(ofCertificateFile: server.pki.serverCertificate)
        #expect(renewed != before)
        server.signal(SIGHUP, waitUpTo: 0)
        #expect(server.waitForLog("TLS material reloaded"), "\(server.log)")

        #expect(try server.presentedFingerprint() == renewed)
        #expect(try established.request("MSG after") == "ACK 2")
        let fresh = try server.authenticatedConnection()
        #expect(try fresh.request("MSG new handshake") == "ACK 1")
        #expect(server.isRunning)
    }

    @Test(arguments: ["garbage", "wrong key", "readable key"])
    func aBrokenFileIsRefusedAndTheOldCertificateStays(_ breakage: String) throws {
        let server = try ServerProcess()
        let before = try server.presentedFingerprint()
        let established = try server.authenticatedConnection()
        switch breakage {
        case "garbage":
            try Data("-----BEGIN CERTIFICATE-----\nnot base64\n".utf8).write(
                to: URL(fileURLWithPath: server.pki.serverCertificate)
            )
        case "wrong key":
            // A key of another pair: the certificate and key no longer match.
            let other = try TestPKI.make(in: server.directory.file("other"))
            try FileManager.default.removeItem(atPath: server.pki.serverKey)
            try FileManager.default.copyItem(atPath: other.serverKey, toPath: server.pki.serverKey)
        default:
            chmod(server.pki.serverKey, 0o644)
        }
        server.signal(SIGHUP, waitUpTo: 0)
        #expect(server.waitForLog("TLS material not reloaded"), "\(server.log)")
        #expect(try server.presentedFingerprint() == before)
        #expect(try established.request("MSG still here") == "ACK 1")
        #expect(try server.authenticatedConnection().request("PING") == "PONG")
    }

    @Test func revokingAClientAndReloadingRefusesItsNextHandshake() throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-reload")
        let pki = try TestPKI.make(in: folder.file("pki"), extraArguments: ["--client", "alice", "--client", "bob"])
        try pki.regenerate(["--crl"])  // an empty CRL to start with
        let server = try ServerProcess(
            arguments: ["--client-auth", "optional", "--client-ca", pki.caCertificate, "--crl", pki.crlFile],
            pki: pki
        )
        let first = try server.sClient("PING\nQUIT\n", certificate: "bob")
        #expect(replyLines(first.stdout).first == "HELLO gatehouse/1 AUTHENTICATED bob")

        try pki.regenerate(["--revoke", "bob"])
        server.signal(SIGHUP, waitUpTo: 0)
        #expect(server.waitForLog("TLS material reloaded"))
        let refused = try server.sClient("PING\nQUIT\n", certificate: "bob")
        #expect(refused.stderr.contains("alert certificate revoked"), "\(refused.stderr)")
        let alice = try server.sClient("PING\nQUIT\n", certificate: "alice")
        #expect(replyLines(alice.stdout).first == "HELLO gatehouse/1 AUTHENTICATED alice")
    }

    @Test func clientMapAndTokensAreReloadedAndABrokenMapKeepsTheOldOne() throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-reload")
        let pki = try TestPKI.make(in: folder.file("pki"), extraArguments: ["--client", "alice"])
        let map = folder.file("client-map")
        func writeMap(_ text: String) throws {
            try Data(text.utf8).write(to: URL(fileURLWithPath: map))
            chmod(map, 0o600)
        }
        try writeMap("CN:alice first\n")
        let server = try ServerProcess(
            arguments: ["--client-auth", "optional", "--client-ca", pki.caCertificate, "--client-map", map],
            pki: pki
        )
        func greeting() throws -> String? {
            replyLines(try server.sClient("QUIT\n", certificate: "alice").stdout).first
        }
        #expect(try greeting() == "HELLO gatehouse/1 AUTHENTICATED first")

        try writeMap("CN:alice second\n")
        let carol = try server.issueToken("carol")
        server.signal(SIGHUP, waitUpTo: 0)
        #expect(server.waitForLog("client map reloaded") && server.waitForLog("tokens reloaded"))
        #expect(try greeting() == "HELLO gatehouse/1 AUTHENTICATED second")
        let auth = try server.sClient("AUTH carol \(carol)\nQUIT\n", certificate: nil)
        #expect(replyLines(auth.stdout) == ["HELLO gatehouse/1", "OK AUTH carol", "BYE"])

        try writeMap("CN:alice not/a/user\n")
        server.signal(SIGHUP, waitUpTo: 0)
        #expect(server.waitForLog("client map not reloaded"))
        #expect(try greeting() == "HELLO gatehouse/1 AUTHENTICATED second")
    }
}
