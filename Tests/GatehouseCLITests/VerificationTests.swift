import Foundation
import TestSupport
import Testing

@Suite("gatehouse: server verification and mutual TLS")
struct VerificationTests {
    @Test func refusesACertificateForAnotherHost() throws {
        let server = try ServerProcess()
        var client = Client(server)
        client.serverName = "elsewhere.example"
        let result = try client.run(["send", "hello"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("hostname mismatch"), "\(result.stderr)")
        #expect(try server.journalRecords().isEmpty)
    }

    @Test func refusesAServerFromAnotherCA() throws {
        let server = try ServerProcess()
        let other = try TemporaryDirectory(prefix: "gatehouse-other-ca")
        let otherPKI = try TestPKI.make(in: other.file("pki"))
        var client = Client(server)
        client.ca = otherPKI.caCertificate
        let result = try client.run(["send", "hello"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("certificate verify failed"), "\(result.stderr)")
        #expect(try server.journalRecords().isEmpty)

        client.ca = server.pki.caCertificate
        let good = try client.run(["send", "hello"])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdoutLines == ["ACK 1"])
    }

    @Test func mutualTLSWhenTheServerRequiresIt() throws {
        let pkiDirectory = try TemporaryDirectory(prefix: "gatehouse-mtls")
        let pki = try TestPKI.make(in: pkiDirectory.file("pki"), extraArguments: ["--client", "carol"])
        let server = try ServerProcess(
            users: ["alice"],
            arguments: ["--client-auth", "required", "--client-ca", pki.caCertificate],
            pki: pki
        )
        var client = Client(server, user: "carol")
        client.token = nil

        let without = try client.run(["send", "hello"])
        #expect(without.status == 2)
        #expect(without.stderr.contains("client certificate"), "\(without.stderr)")

        let with = try client.run([
            "send", "--cert", pki.clientCertificate("carol"), "--key", pki.clientKey("carol"), "hello",
        ])
        #expect(with.status == 0, "\(with.stderr)")
        #expect(with.stdoutLines == ["ACK 1"])
        let records = try server.journalRecords()
        #expect(records.count == 1)
        #expect(records.first?["user"] as? String == "carol")
    }
}
