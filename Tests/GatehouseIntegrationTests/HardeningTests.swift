import Foundation
import GatehouseClient
import TestSupport
import Testing

/// What the server refuses: old protocol versions, weak TLS 1.2 suites, files others can read,
/// repeated authentication failures, and (by configuration) clients that send too fast.
@Suite("Hardening")
struct HardeningTests {
    static let session = "PING\nQUIT\n"

    // MARK: TLS policy

    // s_client's own default security level would refuse TLS 1.0/1.1 before sending anything;
    // SECLEVEL=0 makes it offer them, so it is the server that refuses.
    @Test(arguments: ["-tls1", "-tls1_1"])
    func oldProtocolVersionsAreRefusedEvenWithTLS12Enabled(_ version: String) throws {
        for arguments in [[], ["--min-tls", "1.2"]] {
            let server = try ServerProcess(arguments: arguments)
            let result = try server.sClient(Self.session, extra: [version, "-cipher", "DEFAULT@SECLEVEL=0"])
            #expect(!result.stdout.contains("HELLO"))
            #expect(result.stderr.contains("alert protocol version"), "\(version) \(arguments): \(result.stderr)")
        }
    }

    @Test(arguments: [
        "AES128-SHA",  // RSA key exchange (no forward secrecy), CBC
        "AES128-GCM-SHA256",  // AEAD but no forward secrecy
        "ECDHE-ECDSA-AES128-SHA",  // forward secret but CBC with SHA-1
        "ECDHE-ECDSA-AES256-SHA384",  // forward secret but CBC
        "ECDHE-RSA-AES128-SHA",
    ])
    func tls12SuitesWithoutForwardSecrecyOrAEADAreRefused(_ cipher: String) throws {
        let server = try ServerProcess(arguments: ["--min-tls", "1.2"])
        let result = try server.sClient(Self.session, extra: ["-tls1_2", "-cipher", cipher])
        #expect(!result.stdout.contains("HELLO"))
        #expect(result.stderr.contains("alert handshake failure"), "\(cipher): \(result.stderr)")
    }

    @Test func tls12WorksOnlyWhenEnabledAndThenWithAnECDHEAEADSuite() throws {
        let refused = try ServerProcess().sClient(Self.session, extra: ["-tls1_2"])
        #expect(!refused.stdout.contains("HELLO"))
        let server = try ServerProcess(arguments: ["--min-tls", "1.2"])
        let result = try server.sClient(Self.session, extra: ["-tls1_2"])
        #expect(replyLines(result.stdout) == ["HELLO gatehouse/1", "PONG", "BYE"], "\(result.stderr)")
        #expect(server.waitForLog("tls=TLSv1.2"))
        #expect(server.log.contains("cipher=ECDHE-ECDSA-AES128-GCM-SHA256"), "\(server.log)")
    }

    // MARK: files others can read

    @Test func aPrivateKeyOthersCanReadKeepsTheServerFromStarting() throws {
        let folder = try TemporaryDirectory(prefix: "gatehouse-perm")
        let pki = try TestPKI.make(in: folder.file("pki"))
        chmod(pki.serverKey, 0o644)
        #expect {
            _ = try ServerProcess(pki: pki)
        } throws: { error in
            "\(error)".contains("chmod 600 \(pki.serverKey)")
        }
    }

    // MARK: authentication throttling

    @Test func aThrottledAddressHasItsFailuresClosedButItsRightTokensAcceptedUntilTheBucketRefills() throws {
        // Three failures, then one more allowed per second.
        let server = try ServerProcess(arguments: ["--auth-failure-limit", "3", "--auth-failure-window", "3"])
        let token = server.tokens["alice"]!
        let conn = try server.client().connect()
        for _ in 0..<3 { #expect(try conn.request("AUTH alice wrong").hasPrefix("ERR AUTH_FAILED")) }
        // Throttled now: a failure is RATE_LIMITED and ends the connection.
        #expect(try conn.request("AUTH alice wrong").hasPrefix("ERR RATE_LIMITED"))
        #expect(throws: ClientError.self) { _ = try conn.readLine() }
        // The limit is per address: another connection from it gets the same for a failure...
        let other = try server.client().connect()
        #expect(try other.request("AUTH bob wrong").hasPrefix("ERR RATE_LIMITED"))
        #expect(throws: ClientError.self) { _ = try other.request("PING") }
        // ...while the right token still authenticates (a client behind the same NAT).
        let legitimate = try server.client().connect()
        #expect(try legitimate.request("AUTH alice \(token)") == "OK AUTH alice")
        #expect(try legitimate.request("MSG while throttled") == "ACK 1")
        // Once a failure's worth has refilled, a failure is an ordinary AUTH_FAILED again.
        usleep(1_200_000)
        let later = try server.client().connect()
        #expect(try later.request("AUTH alice wrong").hasPrefix("ERR AUTH_FAILED"))
        #expect(try later.request("PING") == "PONG")
        #expect(server.log.contains("authentication failed from a throttled address"))
        // Logged once the closed connections have lingered (until EOF or 2 s).
        #expect(server.waitForLog("reason=auth throttled"))
        #expect(!server.log.contains(token))
    }

    @Test func authFailureLimitZeroTurnsThrottlingOff() throws {
        let server = try ServerProcess(arguments: ["--auth-failure-limit", "0", "--error-budget", "100"])
        let conn = try server.client().connect()
        for _ in 0..<20 { #expect(try conn.request("AUTH alice wrong").hasPrefix("ERR AUTH_FAILED")) }
        #expect(try conn.request("AUTH alice \(server.tokens["alice"]!)") == "OK AUTH alice")
    }

    // MARK: message rate

    @Test func messagesPastTheRateAreRateLimitedAndTheConnectionStays() throws {
        let server = try ServerProcess(arguments: ["--max-msg-rate", "5/s"])
        let conn = try server.authenticatedConnection()
        let burst = (1...17).map { "MSG m\($0)\n" }.joined()
        try conn.writeRaw(Array(burst.utf8))
        var replies: [String] = []
        for _ in 0..<17 { replies.append(try conn.readLine()) }
        #expect(Array(replies.prefix(5)) == ["ACK 1", "ACK 2", "ACK 3", "ACK 4", "ACK 5"])
        #expect(replies.dropFirst(5).allSatisfy { $0.hasPrefix("ERR RATE_LIMITED") }, "\(replies)")
        // No error budget spent: 12 RATE_LIMITED would have spent the default 10 and closed it, and numbering
        // goes on from the last accepted message once the bucket has refilled.
        usleep(400_000)
        #expect(try conn.request("MSG later") == "ACK 6")
        #expect(try server.journalRecords().map { $0["text"] as? String } == ["m1", "m2", "m3", "m4", "m5", "later"])
    }

    @Test func badRateFlagsAreRefused() throws {
        for arguments in [
            ["--max-msg-rate", "fast"], ["--auth-failure-limit", "-1"], ["--crl", "/dev/null"],
            ["--auth-timeout", "0"], ["--auth-timeout", "100000"], ["--max-in-flight-bytes", "100"],
            ["--throttle-exempt", "10.0.0.0/8"], ["--throttle-refuse-connections", "--throttle-exempt", "10.0.0.0/33"],
        ] {
            #expect(throws: (any Error).self, "\(arguments)") { _ = try ServerProcess(arguments: arguments) }
        }
    }
}
