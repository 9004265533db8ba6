import GatehouseAuth
import GatehouseJWT
import Testing

/// The published JWS examples, verified with the server's own code and OpenSSL: RFC 7515
/// Appendix A (HS256, RS256, ES256, ES512, unsecured) and RFC 8037 Appendix A.4 (Ed25519), with
/// keys in the JWK forms of RFC 7517/7518. Their payloads have no `aud` or `sub`, so a token
/// whose signature verifies stops at the first claim check after it: reaching `jwt_audience`
/// (or `jwt_claims` for a payload that is not JSON) is the proof that the signature was good.
@Suite struct JWTVectorTests {
    // RFC 7515 A.2 / A.3 / A.4 / A.1 / A.5 and RFC 8037 A.2 / A.4, verbatim.
    static let rs256Token =
        "eyJhbGciOiJSUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJd"
        + "bF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383"
        + "LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywl"
        + "VmtVrBp0igcN_IoypGlUPQGe77Rw"
    static let rsaKey = """
        {"kty":"RSA","kid":"rfc7515-a2","e":"AQAB",
         "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}
        """

    static let es256Token =
        "eyJhbGciOiJFUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
    static let p256Key = """
        {"kty":"EC","kid":"rfc7515-a3","crv":"P-256",
         "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        """

    static let es512Token =
        "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA"
        + ".AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZg"
        + "oXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn"
    static let p521Key = """
        {"kty":"EC","kid":"rfc7515-a4","crv":"P-521",
         "x":"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk",
         "y":"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2"}
        """

    static let edDSAToken =
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
        + ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    static let ed25519Key = """
        {"kty":"OKP","kid":"rfc8037-a2","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        """

    static let hs256Token =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    static let octKey = """
        {"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}
        """
    static let unsecuredToken =
        "eyJhbGciOiJub25lIn0"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."

    /// Before the examples' `exp` (2011-03-22), so that time is not what stops them.
    static let exampleTime: Double = 1_300_819_000

    static func verifier(
        _ keys: [String],
        algorithms: Set<JWSAlgorithm> = Set(JWSAlgorithm.allCases)
    ) throws
        -> JWTVerifier
    {
        let jwks = "{\"keys\":[\(keys.joined(separator: ","))]}"
        let policy = JWTPolicy(issuer: "joe", audience: "gatehouse", algorithms: algorithms, leewaySeconds: 0)
        return try JWTVerifier(
            configuration: JWTConfiguration(jwksFile: "-", policy: policy),
            jwks: Array(jwks.utf8)
        )
    }

    static func check(_ verifier: JWTVerifier, _ token: String, now: Double = exampleTime) -> JWTCheck? {
        let bytes = Array(token.utf8)
        let result = bytes.withUnsafeBytes { verifier.verify(user: "joe", token: $0, now: now) }
        switch result {
        case .success: return nil
        case .failure(let failure): return failure.check
        }
    }

    /// The token with one bit of its signature's first byte flipped.
    static func tampered(_ token: String) -> String {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var signature = JWTBase64URL.decode(parts[2].utf8)!
        signature[0] ^= 0x01
        return parts[0] + "." + parts[1] + "." + JWTBase64URL.encode(signature)
    }

    @Test(arguments: [
        ("RS256", rsaKey, rs256Token, JWTCheck.audience),
        ("ES256", p256Key, es256Token, .audience),
        ("ES512", p521Key, es512Token, .claims),  // its payload is the text "Payload"
        ("EdDSA", ed25519Key, edDSAToken, .claims),  // "Example of Ed25519 signing"
    ])
    func publishedSignaturesVerifyAndTamperedOnesDoNot(
        _ name: String,
        _ key: String,
        _ token: String,
        _ next: JWTCheck
    )
        throws
    {
        let verifier = try Self.verifier([key])
        #expect(Self.check(verifier, token) == next, "\(name)")
        #expect(Self.check(verifier, Self.tampered(token)) == .signature, "\(name)")
    }

    @Test func theHMACExampleIsRefusedAndItsKeyIsNeverLoaded() throws {
        // The oct key alone: nothing usable, so the file is refused.
        #expect(throws: AuthError.self) { try Self.verifier([Self.octKey]) }
        // With a public key beside it, the oct key is skipped and HS256 is not an algorithm.
        let verifier = try Self.verifier([Self.octKey, Self.p256Key])
        #expect(verifier.keyCount == 1)
        #expect(verifier.skipped.count == 1)
        #expect(Self.check(verifier, Self.hs256Token) == .algorithm)
    }

    @Test func theUnsecuredExampleIsRefused() throws {
        let verifier = try Self.verifier([Self.p256Key, Self.rsaKey])
        #expect(Self.check(verifier, Self.unsecuredToken) == .algorithm)
    }

    @Test func aSignatureOfOneAlgorithmIsNeverCheckedWithAKeyOfAnother() throws {
        // The ES256 example relabelled RS256 (and the other way round): the key type decides.
        let verifier = try Self.verifier([Self.p256Key, Self.rsaKey])
        let es = Self.es256Token.split(separator: ".").map(String.init)
        let rs = Self.rs256Token.split(separator: ".").map(String.init)
        let rsHeader = JWTBase64URL.encode(Array(#"{"alg":"RS256","kid":"rfc7515-a3"}"#.utf8))
        #expect(Self.check(verifier, "\(rsHeader).\(es[1]).\(es[2])") == .keyMismatch)
        let esHeader = JWTBase64URL.encode(Array(#"{"alg":"ES256"}"#.utf8))
        #expect(Self.check(verifier, "\(esHeader).\(rs[1]).\(rs[2])") == .signature)
    }

    @Test func anAlgorithmOutsideTheAllowListIsRefusedEvenWithItsKey() throws {
        let verifier = try Self.verifier([Self.p521Key, Self.p256Key], algorithms: [.es256])
        #expect(Self.check(verifier, Self.es512Token) == .algorithm)
        #expect(Self.check(verifier, Self.es256Token) == .audience)
    }

    @Test func aKeyIDSelectsTheKey() throws {
        let verifier = try Self.verifier([Self.rsaKey, Self.p256Key])
        let parts = Self.es256Token.split(separator: ".").map(String.init)
        func withKid(_ kid: String) -> String {
            JWTBase64URL.encode(Array("{\"alg\":\"ES256\",\"kid\":\"\(kid)\"}".utf8)) + ".\(parts[1]).\(parts[2])"
        }
        // A new header changes what was signed: the named key is found, fits, and refuses it.
        #expect(Self.check(verifier, withKid("rfc7515-a3")) == .signature)
        #expect(Self.check(verifier, withKid("no-such-key")) == .unknownKey)
        #expect(Self.check(verifier, withKid("rfc7515-a2")) == .keyMismatch)
    }

    @Test func aPointOffTheCurveIsNotAKey() throws {
        // The A.3 key with y changed: no longer on P-256. Skipped, so only the RSA key is left.
        let bad = Self.p256Key.replacingOccurrences(of: "x_FEzRu9", with: "x_FEzRu8")
        let verifier = try Self.verifier([bad, Self.rsaKey])
        #expect(verifier.keyCount == 1)
        #expect(verifier.skipped.first?.contains("rfc7515-a3") == true)
        #expect(Self.check(verifier, Self.es256Token) == .noKey)
    }

    @Test func timeIsCheckedOnlyAfterTheSignature() throws {
        let verifier = try Self.verifier([Self.p256Key])
        // Long after the example's exp: a good signature is expired, a bad one is a bad signature.
        #expect(Self.check(verifier, Self.es256Token, now: 2_000_000_000) == .audience)
        #expect(Self.check(verifier, Self.tampered(Self.es256Token), now: 2_000_000_000) == .signature)
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
