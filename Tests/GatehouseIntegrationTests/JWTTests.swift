import Foundation
import TestSupport
import Testing

/// OAuth 2.0 access tokens through the real server: `AUTH <user> <jwt>` with tokens minted by
/// `scripts/dev-idp.sh`, every refusal logged with its reason, key rotation on SIGHUP, expiry and
/// re-authentication, and the throttle and the error budget.
@Suite("JWT access tokens")
struct JWTTests {
    static let keys: [(alg: String, kid: String)] = [("RS256", "rsa-1"), ("EdDSA", "ed-1"), ("ES256", "es-1")]

    @Test func validES256RS256AndEdDSATokensAuthenticate() throws {
        let idp = try DevIdP(keys: Self.keys)
        let server = try ServerProcess(arguments: idp.serverArguments())
        var input = ""
        for key in Self.keys {
            let token = try idp.mint(["--kid", key.kid])
            // s_client, as any client would: the JWT is just a longer token.
            let result = try server.sClient("AUTH alice \(token)\nMSG via \(key.alg)\nQUIT\n")
            #expect(replyLines(result.stdout) == ["HELLO gatehouse/1", "OK AUTH alice", "ACK 1", "BYE"], "\(key.alg)")
            input += "AUTH alice \(token)\n"
        }
        // The Swift client, and re-authentication with each algorithm in turn on one connection.
        let conn = try server.client().connect()
        for line in input.split(separator: "\n") { #expect(try conn.request(String(line)) == "OK AUTH alice") }
        #expect(try conn.request("MSG after three") == "ACK 1")
        // Tokens-file tokens still work beside JWTs.
        let opaque = try server.client().connect()
        #expect(try opaque.request("AUTH alice \(server.tokens["alice"]!)") == "OK AUTH alice")
        let records = try server.journalRecords()
        #expect(records.map { $0["user"] as? String } == Array(repeating: "alice", count: 4))
        #expect(records.map { $0["text"] as? String }.contains("via EdDSA"))
    }

    @Test func eachBadTokenIsAuthFailedAndLoggedWithItsReason() throws {
        let idp = try DevIdP(keys: Self.keys)
        let server = try ServerProcess(
            arguments: idp.serverArguments() + ["--error-budget", "100", "--auth-failure-limit", "0"]
        )
        let good = try idp.mint(["--kid", "es-1"])
        let cases: [(String, String)] = [
            (try idp.mint(["--iss", "https://other-idp.example"]), "jwt_issuer"),
            (try idp.mint(["--aud", "another-service"]), "jwt_audience"),
            (try idp.mint(["--ttl", "-120"]), "jwt_expired"),  // past exp plus the 60 s leeway
            (try idp.mint(["--nbf", "600"]), "jwt_not_yet_valid"),
            (DevIdP.badSignature(good), "jwt_signature"),
            (try idp.mint(["--header", #"{"alg":"ES256","kid":"no-such-key"}"#]), "jwt_unknown_kid"),
            (DevIdP.unsigned(payloadOf: good), "jwt_algorithm"),
            (
                try DevIdP.hmacForgery(payloadOf: good, kid: "es-1", publicKeyPEM: idp.publicKeyPEM("es-1")),
                "jwt_algorithm"
            ),
            (try idp.mint(sub: "bob"), "jwt_user_mismatch"),
            (try idp.mint(["--claims", "{\"pad\":\"\(String(repeating: "x", count: 9000))\"}"]), "jwt_too_large"),
            (try idp.mint(["--header", #"{"alg":"RS256","kid":"es-1"}"#]), "jwt_key_mismatch"),
            (try idp.mint(["--header", #"{"alg":"ES256","kid":"es-1","crit":["exp"]}"#]), "jwt_header"),
        ]
        let conn = try server.client().connect()
        var replies: Set<String> = []
        for (token, reason) in cases {
            let reply = try conn.request("AUTH alice \(token)")
            #expect(reply.hasPrefix("ERR AUTH_FAILED"), "\(reason): \(reply)")
            replies.insert(reply)
        }
        // One reply for all of them: the client learns nothing about which check failed.
        #expect(replies.count == 1)
        #expect(try conn.request("AUTH alice \(server.tokens["alice"]!)-wrong").hasPrefix("ERR AUTH_FAILED"))
        #expect(try conn.request("AUTH alice \(good)") == "OK AUTH alice")
        for (_, reason) in cases {
            #expect(server.waitForLog("reason=\(reason) "), "\(reason) not logged")
        }
        #expect(server.waitForLog("reason=token "))
        let log = server.log
        #expect(!log.contains(good.split(separator: ".")[2]), "a signature reached the log")
        for (token, _) in cases where token.count > 20 {
            #expect(!log.contains(token.split(separator: ".")[0] + "." + token.split(separator: ".")[1]))
        }
    }

    @Test func aJWKSReloadRotatesKeysWithoutDroppingConnections() throws {
        let idp = try DevIdP(keys: [("ES256", "old")])
        let server = try ServerProcess(arguments: idp.serverArguments())
        let established = try server.client().connect()
        #expect(try established.request("AUTH alice \(try idp.mint(["--kid", "old"]))") == "OK AUTH alice")

        try idp.addKey(alg: "EdDSA", kid: "new")  // jwks.json now lists old and new
        let signedByNew = try idp.mint(["--kid", "new"])
        #expect(try server.client().connect().request("AUTH alice \(signedByNew)").hasPrefix("ERR AUTH_FAILED"))
        #expect(server.waitForLog("reason=jwt_unknown_kid"))
        server.signal(SIGHUP, waitUpTo: 0)
        #expect(server.waitForLog("JWKS reloaded"))
        #expect(try server.client().connect().request("AUTH alice \(signedByNew)") == "OK AUTH alice")

        try idp.retire("old")
        server.signal(SIGHUP, waitUpTo: 0)
        #expect(server.waitForLog("JWKS reloaded", count: 2))
        #expect(
            try server.client().connect().request("AUTH alice \(try idp.mint(["--kid", "new"]))") == "OK AUTH alice"
        )
        #expect(server.waitForLog("keys=new "))
        // The connection the retired key authenticated keeps going until its token expires.
        #expect(try established.request("MSG still here") == "ACK 1")

        // A broken file is refused and the keys in force stay.
        try Data("{\"keys\": [ not json".utf8).write(to: URL(fileURLWithPath: idp.jwksFile))
        server.signal(SIGHUP, waitUpTo: 0)
        #expect(server.waitForLog("JWKS not reloaded"))
        #expect(
            try server.client().connect().request("AUTH alice \(try idp.mint(["--kid", "new"]))") == "OK AUTH alice"
        )
        #expect(server.isRunning)
    }

    @Test func anExpiredConnectionGetsAuthExpiredAndOneThatReauthenticatesKeepsGoing() throws {
        let idp = try DevIdP()
        let server = try ServerProcess(arguments: idp.serverArguments(leeway: 0))
        let shortLived = try idp.mint(["--ttl", "3"])  // exp is 2 to 3 s away (whole seconds)
        let expiring = try server.client().connect()
        let renewing = try server.client().connect()
        #expect(try expiring.request("AUTH alice \(shortLived)") == "OK AUTH alice")
        #expect(try renewing.request("AUTH alice \(shortLived)") == "OK AUTH alice")
        #expect(try expiring.request("MSG before expiry") == "ACK 1")

        // Re-authentication: the same user only, a failure changes nothing, a success renews.
        #expect(
            try renewing.request("AUTH bob \(try idp.mint(sub: "bob"))") == "ERR SYNTAX re-authenticate as alice only"
        )
        #expect(try renewing.request("AUTH alice \(DevIdP.badSignature(shortLived))").hasPrefix("ERR AUTH_FAILED"))
        #expect(try renewing.request("AUTH alice \(try idp.mint(["--ttl", "60"]))") == "OK AUTH alice")

        usleep(3_300_000)
        #expect(try expiring.readLine().hasPrefix("ERR AUTH_EXPIRED"))
        #expect(throws: (any Error).self) { try expiring.request("MSG after expiry") }
        #expect(try renewing.request("MSG after the first token's expiry") == "ACK 1")
        #expect(server.waitForLog("access token expired"))
        #expect(server.waitForLog("reason=access token expired"))
        #expect(
            try server.journalRecords().map { $0["text"] as? String } == [
                "before expiry", "after the first token's expiry",
            ]
        )
    }

    @Test func theThrottleAndTheErrorBudgetCountJWTFailures() throws {
        let idp = try DevIdP()
        let throttled = try ServerProcess(arguments: idp.serverArguments() + ["--auth-failure-limit", "2"])
        let forged = DevIdP.badSignature(try idp.mint())
        let conn = try throttled.client().connect()
        #expect(try conn.request("AUTH alice \(forged)").hasPrefix("ERR AUTH_FAILED"))
        #expect(try conn.request("AUTH alice \(forged)").hasPrefix("ERR AUTH_FAILED"))
        #expect(try conn.request("AUTH alice \(forged)").hasPrefix("ERR RATE_LIMITED"))

        let budgeted = try ServerProcess(
            arguments: idp.serverArguments() + ["--error-budget", "3", "--auth-failure-limit", "0"]
        )
        let spender = try budgeted.client().connect()
        #expect(try spender.request("AUTH alice \(forged)").hasPrefix("ERR AUTH_FAILED"))
        #expect(try spender.request("AUTH alice \(forged)").hasPrefix("ERR AUTH_FAILED"))
        #expect(try spender.request("AUTH alice \(forged)").hasPrefix("ERR TOO_MANY_ERRORS"))
    }

    @Test func badJWTConfigurationStopsTheStartWithTheReason() throws {
        let idp = try DevIdP()
        let base = idp.serverArguments()
        let cases: [([String], String)] = [
            (base + ["--jwt-leeway", "601"], "--jwt-leeway must be from 0.0 to 600.0 seconds"),
            (base + ["--jwt-leeway=-1"], "--jwt-leeway must be from 0.0 to 600.0 seconds"),
            (base + ["--jwt-algorithms", "ES256,none"], "'none'"),
            (base + ["--jwt-algorithms", "HS256"], "HMAC"),
            (["--jwt-jwks", idp.jwksFile, "--jwt-audience", "gatehouse"], "--jwt-issuer"),
            (["--jwt-issuer", "x", "--jwt-audience", "y"], "need --jwt-jwks"),
            (
                ["--jwt-jwks", idp.directory + "/missing.json", "--jwt-issuer", "x", "--jwt-audience", "y"],
                "cannot open JWKS"
            ),
            (base + ["--jwt-algorithms", "PS256"], "no key can verify"),
        ]
        for (arguments, message) in cases {
            #expect(performing: { _ = try ServerProcess(arguments: arguments) }, throws: { "\($0)".contains(message) })
        }
        // A JWKS holding a private key (RFC 8037 A.1) is the wrong file.
        try Data(
            #"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}"#
                .utf8
        )
        .write(to: URL(fileURLWithPath: idp.jwksFile))
        #expect(
            performing: { _ = try ServerProcess(arguments: base) },
            throws: { "\($0)".contains("private key material") }
        )
    }
}
