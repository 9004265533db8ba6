import Foundation
import TestSupport
import Testing

/// TLS session resumption against the real server, driven by `openssl s_client -sess_out` /
/// `-sess_in` as curl, Java, Go or Python clients resume: every client-auth mode, a reload that
/// keeps sessions, and a revocation that must not be bypassed by resuming.
@Suite("Session resumption")
struct SessionResumptionTests {
    /// One s_client session (`PING`, `QUIT`), saving or offering a TLS session in `file`.
    /// Not `-quiet`: s_client then prints whether the session was `New` or `Reused`.
    func connect(
        _ server: ServerProcess,
        certificate name: String?,
        sessionOut: String? = nil,
        sessionIn: String? = nil
    ) throws -> ProcessResult {
        var arguments = [
            "s_client", "-connect", "\(server.host):\(server.port)", "-CAfile", server.pki.caCertificate,
            "-verify_return_error", "-verify_hostname", "localhost", "-ign_eof",
        ]
        if let name { arguments += ["-cert", server.pki.clientCertificate(name), "-key", server.pki.clientKey(name)] }
        if let sessionOut { arguments += ["-sess_out", sessionOut] }
        if let sessionIn { arguments += ["-sess_in", sessionIn] }
        return try ProcessRunner.run("openssl", arguments, stdin: Data("PING\nQUIT\n".utf8), timeout: 20)
    }

    /// The greeting line. s_client's own report and the server's lines share stdout through two
    /// buffers, so the greeting may start mid-line: take it from its prefix to the line's end.
    func greeting(_ result: ProcessResult) -> String? {
        guard let start = result.stdout.range(of: "HELLO gatehouse/1") else { return nil }
        let rest = result.stdout[start.lowerBound...]
        return String(rest.prefix { $0 != "\n" && $0 != "\r" })
    }

    func fixture(_ mode: String, clients: [String] = ["alice"], crl: Bool = false) throws -> MutualTLSTests.Fixture {
        try MutualTLSTests.Fixture(
            mode: mode,
            clients: clients,
            prepare: { pki in if crl { try pki.regenerate(["--crl"]) } },
            arguments: { pki in crl ? ["--crl", pki.crlFile] : [] }
        )
    }

    @Test(arguments: ["off", "optional", "required"])
    func aSecondConnectionResumesAndIsGreetedTheSame(_ mode: String) throws {
        let f = try fixture(mode)
        let certificate: String? = mode == "off" ? nil : "alice"
        let file = f.folder.file("session.pem")
        let first = try connect(f.server, certificate: certificate, sessionOut: file)
        #expect(first.stdout.contains("New, TLSv1.3"), "\(first.stdout)\(first.stderr)")
        let second = try connect(f.server, certificate: certificate, sessionIn: file)
        #expect(second.stdout.contains("Reused, TLSv1.3"), "\(second.stdout)\(second.stderr)")
        let expected = mode == "off" ? "HELLO gatehouse/1" : "HELLO gatehouse/1 AUTHENTICATED alice"
        #expect(greeting(first) == expected)
        #expect(greeting(second) == expected)
        #expect(second.stdout.contains("PONG\nBYE\n"), "\(second.stdout)")
        #expect(f.server.waitForLog("resumed=true"))
        #expect(!f.server.log.contains("session id context uninitialized"))
    }

    /// SIGHUP with nothing changed keeps who may resume: tickets issued before still resume.
    @Test func aReloadThatChangesNothingKeepsSessions() throws {
        let f = try fixture("required")
        let file = f.folder.file("session.pem")
        _ = try connect(f.server, certificate: "alice", sessionOut: file)
        #expect(f.server.signal(SIGHUP, waitUpTo: 0) == nil)
        #expect(f.server.waitForLog("sessions_kept=true"), "\(f.server.log)")
        let resumed = try connect(f.server, certificate: "alice", sessionIn: file)
        #expect(resumed.stdout.contains("Reused, TLSv1.3"), "\(resumed.stdout)")
        #expect(greeting(resumed) == "HELLO gatehouse/1 AUTHENTICATED alice")
    }

    /// Revoke alice's certificate, reload the CRL: her saved session does not resume, and the
    /// full handshake that follows refuses her certificate, so she is not authenticated.
    @Test(arguments: ["optional", "required"])
    func aSessionFromBeforeARevocationDoesNotAuthenticate(_ mode: String) throws {
        let f = try fixture(mode, clients: ["alice", "bob"], crl: true)
        let file = f.folder.file("session.pem")
        let before = try connect(f.server, certificate: "alice", sessionOut: file)
        #expect(greeting(before) == "HELLO gatehouse/1 AUTHENTICATED alice", "\(before.stderr)")
        try f.pki.regenerate(["--revoke", "alice"])
        #expect(f.server.signal(SIGHUP, waitUpTo: 0) == nil)
        #expect(f.server.waitForLog("sessions_kept=false"), "\(f.server.log)")
        let after = try connect(f.server, certificate: "alice", sessionIn: file)
        #expect(!after.stdout.contains("Reused"), "\(after.stdout)")
        #expect(!after.stdout.contains("AUTHENTICATED alice"), "\(after.stdout)")
        #expect(after.stderr.contains("alert certificate revoked"), "\(after.stderr)")
        // Bob, not revoked, still authenticates.
        let bob = try connect(f.server, certificate: "bob")
        #expect(greeting(bob) == "HELLO gatehouse/1 AUTHENTICATED bob")
    }
}
