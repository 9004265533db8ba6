import GatehouseJWT
import Testing

/// Every check of `JWTValidator` but the cryptography, with a fake clock and a fake signature
/// scheme: a key named K "signs" by writing `signed by K` (so which key verified is visible).
@Suite struct JWTValidatorTests {
    static let now: Double = 1_800_000_000
    static let policy = JWTPolicy(issuer: "https://idp.example", audience: "gatehouse", leewaySeconds: 60)

    static let keys: [(jwk: JWK, key: String)] = [
        (JWK(keyID: "ec-1", algorithm: nil, material: .ec(curve: .p256, x: [], y: [])), "ec-1"),
        (JWK(keyID: "rsa-1", algorithm: nil, material: .rsa(modulus: [1], exponent: [3])), "rsa-1"),
        (JWK(keyID: "ed-1", algorithm: nil, material: .okp(curve: .ed25519, x: [])), "ed-1"),
        (JWK(keyID: nil, algorithm: nil, material: .ec(curve: .p256, x: [], y: [])), "ec-anonymous"),
    ]

    static var validator: JWTValidator<String> { JWTValidator(policy: policy, keys: keys) }

    static var claims: [String: String] {
        [
            "iss": #""https://idp.example""#, "aud": #""gatehouse""#, "sub": #""alice""#, "iat": "\(Int(now) - 10)",
            "exp": "\(Int(now) + 300)",
        ]
    }

    static func token(
        header: String = #"{"alg":"ES256","kid":"ec-1","typ":"at+jwt"}"#,
        claims: [String: String] = claims,
        signedBy signer: String = "ec-1"
    ) -> String {
        let payload =
            "{" + claims.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        return JWTBase64URL.encode(Array(header.utf8)) + "." + JWTBase64URL.encode(Array(payload.utf8)) + "."
            + JWTBase64URL.encode(Array("signed by \(signer)".utf8))
    }

    static func validate(
        _ token: String,
        user: String = "alice",
        now: Double = now,
        validator: JWTValidator<String> = validator
    )
        -> Result<VerifiedJWT, JWTFailure>
    {
        Array(token.utf8).withUnsafeBytes { bytes in
            validator.validate(token: bytes, user: user, now: now) { key, _, _, signature in
                signature == Array("signed by \(key)".utf8)
            }
        }
    }

    static func failure(_ token: String, user: String = "alice", now: Double = now) -> JWTCheck? {
        if case .failure(let f) = validate(token, user: user, now: now) { return f.check }
        return nil
    }

    static func with(_ changes: [String: String?]) -> [String: String] {
        var out = claims
        for (name, value) in changes { out[name] = value }
        return out
    }

    @Test func aGoodTokenNamesItsUserKeyAndExpiry() throws {
        let verified = try Self.validate(Self.token()).get()
        #expect(verified.user == "alice")
        #expect(verified.keyID == "ec-1")
        #expect(verified.algorithm == .es256)
        #expect(verified.expiresAt == Self.now + 300)
        #expect(verified.acceptedUntil == Self.now + 360)
    }

    @Test(
        arguments: [
            (["iss": #""https://evil.example""#], JWTCheck.issuer), (["iss": nil], .issuer), (["iss": "1"], .issuer),
            (["aud": #""other""#], .audience), (["aud": #"["a","b"]"#], .audience), (["aud": nil], .audience),
            (["aud": #"["a",1,"gatehouse"]"#], .audience), (["aud": "[]"], .audience),
            (["exp": "\(Int(now) - 61)"], .expired), (["exp": nil], .claims), (["exp": #""soon""#], .claims),
            (["exp": "-1"], .claims), (["exp": "1e12"], .claims),
            (["nbf": "\(Int(now) + 61)"], .notYetValid), (["nbf": "true"], .claims),
            (["iat": "\(Int(now) + 61)"], .issuedInFuture),
            (["iat": "\(Int(now) + 500)", "exp": "\(Int(now) + 400)"], .issuedInFuture),
            (["sub": #""bob""#], .userMismatch), (["sub": nil], .userClaim), (["sub": #""al ice""#], .userClaim),
            (["sub": #""""#], .userClaim), (["sub": "42"], .userClaim),
            (["sub": "\"\(String(repeating: "a", count: 65))\""], .userClaim),
        ] as [([String: String?], JWTCheck)]
    )
    func eachClaimCheckFailsWithItsOwnReason(_ changes: [String: String?], _ check: JWTCheck) {
        #expect(Self.failure(Self.token(claims: Self.with(changes))) == check, "\(changes)")
    }

    @Test func claimsThatHoldPassIncludingAnAudienceArrayAndLeeway() {
        for changes: [String: String?] in [
            ["aud": #"["other","gatehouse"]"#], ["exp": "\(Int(Self.now) - 59)", "iat": nil],
            ["nbf": "\(Int(Self.now) + 59)"],
            ["iat": "\(Int(Self.now) + 59)"], ["iat": nil], ["exp": "\(Int(Self.now) + 300).5"],
            ["scope": #"{"a":[1,2]}"#],
        ] {
            #expect(Self.failure(Self.token(claims: Self.with(changes))) == nil, "\(changes)")
        }
    }

    @Test func anotherUserClaimCanNameTheUser() {
        var policy = Self.policy
        policy.userClaim = "preferred_username"
        let validator = JWTValidator(policy: policy, keys: Self.keys)
        let token = Self.token(claims: Self.with(["sub": #""f3a1-uuid""#, "preferred_username": #""alice""#]))
        #expect((try? Self.validate(token, validator: validator).get())?.user == "alice")
        #expect(Self.failure(Self.token(claims: Self.with(["preferred_username": nil]))) == nil)  // default: sub
    }

    @Test(arguments: [
        (#"{"alg":"none"}"#, JWTCheck.algorithm), (#"{"alg":"HS256","kid":"ec-1"}"#, .algorithm),
        (#"{"kid":"ec-1"}"#, .algorithm),
        (#"{"alg":"ES384","kid":"ec-1"}"#, .algorithm),  // not allowed by the policy
        (#"{"alg":"es256","kid":"ec-1"}"#, .algorithm), (#"{"alg":["ES256"]}"#, .algorithm),
        (#"{"alg":"ES256","kid":"nope"}"#, .unknownKey), (#"{"alg":"RS256","kid":"ec-1"}"#, .keyMismatch),
        (#"{"alg":"EdDSA","kid":"rsa-1"}"#, .keyMismatch),
        (#"{"alg":"ES256","kid":"ec-1","crit":["exp"]}"#, .header),
        (#"{"alg":"ES256","kid":"ec-1","b64":false}"#, .header),
        (#"{"alg":"ES256","kid":"ec-1","typ":"dpop+jwt"}"#, .header),
        (#"{"alg":"ES256","kid":"ec-1","zip":"DEF"}"#, .header),
        (#"{"alg":"ES256","kid":7}"#, .header), (#"{"alg":"ES256","kid":""}"#, .header),
        (#"{"alg":"ES256","alg":"none","kid":"ec-1"}"#, .malformed), (#"["ES256"]"#, .malformed),
        ("not json", .malformed),
    ])
    func headerChecks(_ header: String, _ check: JWTCheck) {
        #expect(Self.failure(Self.token(header: header)) == check, "\(header)")
    }

    @Test func typMayBeJWTOrAccessTokenOrAbsent() {
        for typ in [#","typ":"JWT""#, #","typ":"at+JWT""#, #","typ":"application/at+jwt""#, ""] {
            #expect(Self.failure(Self.token(header: #"{"alg":"ES256","kid":"ec-1""# + typ + "}")) == nil, "\(typ)")
        }
    }

    @Test func embeddedKeysAreIgnored() {
        // A token that brings its own key (jwk, jku, x5c) is still checked against the JWKS alone.
        let header = #"{"alg":"ES256","kid":"ec-1","jwk":{"kty":"EC"},"jku":"https://evil","x5c":["AA"]}"#
        #expect(Self.failure(Self.token(header: header, signedBy: "attacker")) == .signature)
        #expect(Self.failure(Self.token(header: header)) == nil)
    }

    @Test func theSignatureMustComeFromTheSelectedKey() {
        #expect(Self.failure(Self.token(signedBy: "rsa-1")) == .signature)
        #expect(Self.failure(Self.token(signedBy: "ec-anonymous")) == .signature)
        // Without kid, every key of the algorithm's type is tried, and only those.
        #expect(Self.failure(Self.token(header: #"{"alg":"ES256"}"#, signedBy: "ec-anonymous")) == nil)
        #expect(Self.failure(Self.token(header: #"{"alg":"ES256"}"#, signedBy: "ec-1")) == nil)
        #expect(Self.failure(Self.token(header: #"{"alg":"ES256"}"#, signedBy: "rsa-1")) == .signature)
        #expect(Self.failure(Self.token(header: #"{"alg":"RS256"}"#, signedBy: "rsa-1")) == nil)
    }

    @Test func aTokenWithoutKidTriesABoundedNumberOfKeys() {
        let many = (0..<10).map { i in
            (jwk: JWK(keyID: nil, algorithm: nil, material: .ec(curve: .p256, x: [], y: [])), key: "k\(i)")
        }
        let validator = JWTValidator(policy: Self.policy, keys: many)
        var tried = 0
        let token = Array(Self.token(header: #"{"alg":"ES256"}"#, signedBy: "k9").utf8)
        let result = token.withUnsafeBytes { bytes in
            validator.validate(token: bytes, user: "alice", now: Self.now) { _, _, _, _ in
                tried += 1
                return false
            }
        }
        #expect(result == .failure(JWTFailure(.signature)))
        #expect(tried == JWTLimits.maxKeysTriedWithoutKeyID)
    }

    @Test func noKeyOfTheAlgorithmsType() {
        let validator = JWTValidator(policy: Self.policy, keys: [Self.keys[0]])
        let token = Self.token(header: #"{"alg":"EdDSA"}"#, signedBy: "ec-1")
        #expect(throws: JWTFailure(.noKey)) { try Self.validate(token, validator: validator).get() }
    }

    @Test func shapeAndSizeLimits() {
        let good = Self.token()
        let parts = good.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        #expect(Self.failure(parts[0] + "." + parts[1]) == .malformed)
        #expect(Self.failure(good + ".x") == .malformed)
        #expect(Self.failure("." + parts[1] + "." + parts[2]) == .malformed)
        #expect(Self.failure(parts[0] + ".." + parts[2]) == .malformed)
        #expect(Self.failure(parts[0] + "." + parts[1] + ".") == .signature)  // no signature at all
        #expect(Self.failure(parts[0] + "=." + parts[1] + "." + parts[2]) == .malformed)
        #expect(Self.failure(parts[0] + "." + parts[1] + "." + parts[2] + "=") == .malformed)
        #expect(Self.failure(parts[0] + "." + parts[1] + "!." + parts[2]) == .malformed)
        // Over the whole-token limit, and a part over its own limit inside it.
        let huge = Self.token(claims: Self.with(["pad": "\"\(String(repeating: "x", count: 7000))\""]))
        #expect(huge.utf8.count > JWTLimits.maxTokenBytes)
        #expect(Self.failure(huge) == .tooLarge)
        let bigHeader = #"{"alg":"ES256","kid":"ec-1","x":""# + String(repeating: "h", count: 2100) + #""}"#
        #expect(Self.failure(Self.token(header: bigHeader)) == .tooLarge)
        let bigPayload = Self.with(["pad": "\"\(String(repeating: "x", count: 4000))\""])
        #expect(Self.failure(Self.token(claims: bigPayload)) == nil)
    }

    @Test func thePayloadIsNotReadBeforeTheSignatureHolds() {
        // A payload that is not JSON: with a bad signature the failure is the signature's.
        let header = JWTBase64URL.encode(Array(#"{"alg":"ES256","kid":"ec-1"}"#.utf8))
        let payload = JWTBase64URL.encode(Array("{{{{".utf8))
        #expect(Self.failure("\(header).\(payload).\(JWTBase64URL.encode(Array("forged".utf8)))") == .signature)
        #expect(Self.failure("\(header).\(payload).\(JWTBase64URL.encode(Array("signed by ec-1".utf8)))") == .claims)
    }

    @Test func looksLikeJWTMeansTwoDots() {
        #expect(CompactJWS.looksLikeJWT(Array("a.b.c".utf8)))
        #expect(!CompactJWS.looksLikeJWT(Array("Zm9vYmFyYmF6cXV4".utf8)))
        #expect(!CompactJWS.looksLikeJWT(Array("a.b".utf8)))
        #expect(!CompactJWS.looksLikeJWT(Array("a.b.c.d.e".utf8)))
    }

    @Test func unverifiedExpiryIsReadForTheClient() {
        #expect(UnverifiedJWT.expiry(of: Self.token()) == Self.now + 300)
        #expect(UnverifiedJWT.expiry(of: Self.token(claims: Self.with(["exp": nil]))) == nil)
        #expect(UnverifiedJWT.expiry(of: "opaque-token") == nil)
    }
}
