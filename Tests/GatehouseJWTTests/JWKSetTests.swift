import GatehouseJWT
import Testing

/// Reading a JWKS: which keys are used, which are skipped, which files are refused.
@Suite struct JWKSetTests {
    static let p256 =
        #""kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0""#
    static let ed25519 = #""kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo""#
    // A 2048-bit modulus: 0xC0 then 255 bytes (the value does not matter to parsing).
    static let rsaN = JWTBase64URL.encode([0xC0] + [UInt8](repeating: 0x5A, count: 255))
    static var rsa: String { "\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"\(rsaN)\"" }

    func set(_ keys: String...) throws(JWKError) -> JWKSet {
        try JWKSet(parsing: Array("{\"keys\":[\(keys.map { "{\($0)}" }.joined(separator: ","))]}".utf8))
    }

    @Test func readsECRSAAndOKPKeysWithTheirIDs() throws {
        let jwks = try set(Self.p256 + #","kid":"a""#, Self.rsa + #","kid":"b","alg":"PS256""#, Self.ed25519)
        #expect(jwks.keys.map(\.keyID) == ["a", "b", nil])
        #expect(jwks.keys[1].algorithm == .ps256)
        #expect(jwks.keys[1].rsaBits == 2048)
        #expect(jwks.skipped.isEmpty)
    }

    @Test func theKeyTypeDecidesTheAlgorithms() throws {
        let jwks = try set(Self.p256, Self.rsa, Self.ed25519, Self.rsa + #","alg":"RS256""#)
        let permitted = jwks.keys.map { key in JWSAlgorithm.allCases.filter { key.permits($0) } }
        #expect(permitted[0] == [.es256])
        #expect(permitted[1] == [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512])
        #expect(permitted[2] == [.edDSA])
        #expect(permitted[3] == [.rs256])  // its own alg narrows it
    }

    @Test func skipsKeysThatAreNotSignatureKeysItUses() throws {
        let jwks = try set(
            Self.p256,
            #""kty":"oct","k":"c2VjcmV0""#,
            Self.p256 + #","use":"enc""#,
            Self.p256 + #","key_ops":["encrypt"]"#,
            Self.p256 + #","alg":"HS256""#,
            Self.rsa + #","alg":"RSA-OAEP""#,
            #""kty":"OKP","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo""#,
            #""kty":"EC","crv":"secp256k1","x":"AA","y":"AA""#,
            #""kty":"RSA","e":"AQAB","n":"\#(JWTBase64URL.encode([0xC0] + [UInt8](repeating: 1, count: 127)))""#,
            #""kty":"XYZ""#
        )
        #expect(jwks.keys.count == 1)
        #expect(jwks.skipped.count == 9, "\(jwks.skipped)")
        #expect(jwks.skipped.contains { $0.contains("HMAC") })
        #expect(jwks.skipped.contains { $0.contains("2048") })
    }

    @Test(arguments: [
        // Private key material: the wrong file.
        Self.p256 + #","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI""#,
        Self.rsa + #","d":"AQAB","p":"AQAB""#,
        // RFC 7518 §6.2.1.2: a coordinate is the curve's full size (here one byte short).
        #""kty":"EC","crv":"P-256","x":"\#(JWTBase64URL.encode([UInt8](repeating: 1, count: 31)))","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0""#,
        #""kty":"OKP","crv":"Ed25519","x":"AAAA""#,
        Self.rsa.replacingExponent("AQAA"),  // even exponent
        Self.rsa.replacingExponent("AQ"),  // exponent 1
        Self.rsa.replacingExponent("AQAB=="),  // padded base64
        Self.p256 + #","kid":"""#,
        Self.p256 + #","kid":7"#,
        Self.p256 + #","alg":"RS256""#,  // an alg its type cannot do
        #""crv":"P-256""#,  // no kty
    ])
    func refusesAFileWithABrokenOrPrivateKey(_ key: String) {
        #expect(throws: JWKError.self) { try set(key) }
    }

    @Test func refusesDocumentsThatAreNotAJWKSOrHaveNoUsableKey() {
        for text in [
            "", "[]", "{}", #"{"keys":{}}"#, #"{"keys":[]}"#, #"{"keys":[{"kty":"oct","k":"AA"}]}"#, "{\"keys\":[1]}",
        ] {
            #expect(throws: JWKError.self, "\(text)") { try JWKSet(parsing: Array(text.utf8)) }
        }
        let many = "{\"keys\":[" + Array(repeating: "{\(Self.p256)}", count: 65).joined(separator: ",") + "]}"
        #expect(throws: JWKError.self) { try JWKSet(parsing: Array(many.utf8)) }
    }

    @Test func algorithmListsNeverAdmitNoneOrHMAC() throws {
        #expect(try JWSAlgorithm.parseList("ES256,RS256,EdDSA").get() == [.es256, .rs256, .edDSA])
        #expect(try JWSAlgorithm.parseList("PS512").get() == [.ps512])
        for bad in ["none", "ES256,none", "NONE", "HS256", "ES256,HS512", "", "ES256,", "es256", "ES257"] {
            #expect((try? JWSAlgorithm.parseList(bad).get()) == nil, "\(bad)")
        }
    }
}

extension String {
    fileprivate func replacingExponent(_ e: String) -> String {
        split(separator: "\"AQAB\"", omittingEmptySubsequences: false).joined(separator: "\"\(e)\"")
    }

    @Test func aFileThatIsNotJSONIsADocumentErrorCausedByTheParser() {
        let error = #expect(throws: JWKError.self) { try JWKSet(parsing: Array("{\"keys\":[}".utf8)) }
        #expect(error?.kind == .document)
        #expect(error?.message.hasPrefix("not JSON: ") == true)
        #expect(error?.cause is JSONError)
        #expect(JWKError(.key, "x", cause: error) == JWKError("x"))
    }
}
