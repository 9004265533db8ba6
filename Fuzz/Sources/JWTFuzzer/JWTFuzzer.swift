import GatehouseJWT
import GatehouseProtocol

/// libFuzzer entry point for the JOSE code the server runs on every `AUTH <user> <jwt>` and
/// every JWKS load: base64url, the JSON parser, the compact-JWS split and header checks, key
/// selection, the claim checks and JWKS parsing. The signature check is faked (a signature is
/// good when it is the bytes `ok`), so that inputs reach the claim checks; the real one is
/// OpenSSL's, behind `SignaturePublicKey`. A failed invariant traps, which libFuzzer reports.
///
/// Input layout: byte 0 picks the mode (token, JWKS, base64url and JSON), byte 1 the clock and
/// the leeway; the rest is the token, the JWKS document or the text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let body = UnsafeRawBufferPointer(rebasing: input[2...])
    switch input[0] % 3 {
    case 0: checkToken(body, clock: input[1])
    case 1: checkJWKS(body)
    default: checkEncodings(body)
    }
    return 0
}

// SwiftPM links an executable target with `main` aliased to `<target>_main`: hand over to
// libFuzzer's driver from there (see ProtocolFuzzer).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("JWTFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput)
}

/// The keys a token may name: every type, with and without `kid`, one limited by its own `alg`.
let keys: [(jwk: JWK, key: Int)] = [
    (JWK(keyID: "ec", algorithm: nil, material: .ec(curve: .p256, x: [], y: [])), 0),
    (JWK(keyID: "rsa", algorithm: .ps256, material: .rsa(modulus: [1], exponent: [3])), 1),
    (JWK(keyID: "ed", algorithm: nil, material: .okp(curve: .ed25519, x: [])), 2),
    (JWK(keyID: nil, algorithm: nil, material: .ec(curve: .p256, x: [], y: [])), 3),
    (JWK(keyID: nil, algorithm: nil, material: .rsa(modulus: [1], exponent: [3])), 4),
]

func checkToken(_ token: UnsafeRawBufferPointer, clock: UInt8) {
    let now = 1_000 + Double(clock & 0x0F) * 100
    let leeway = Double(clock >> 4) * 10
    let allowed: Set<JWSAlgorithm> = clock & 1 == 0 ? [.es256, .rs256, .edDSA] : Set(JWSAlgorithm.allCases)
    let policy = JWTPolicy(issuer: "iss", audience: "aud", algorithms: allowed, leewaySeconds: leeway)
    let validator = JWTValidator(policy: policy, keys: keys)
    var goodSignatureSeen = false
    var tried: [Int] = []
    let result = validator.validate(token: token, user: "alice", now: now) { key, alg, input, signature in
        precondition(keys[key].jwk.permits(alg), "a key was asked to verify an algorithm its type does not do")
        precondition(allowed.contains(alg), "an algorithm outside the allow-list reached a key")
        precondition(input.count < token.count && token[input.count] == UInt8(ascii: "."), "bad signing input")
        tried.append(key)
        let good = signature == [UInt8(ascii: "o"), UInt8(ascii: "k")]
        goodSignatureSeen = goodSignatureSeen || good
        return good
    }
    precondition(tried.count <= max(1, JWTLimits.maxKeysTriedWithoutKeyID), "too many keys tried")
    // Deterministic: the same input gives the same answer.
    let again = validator.validate(token: token, user: "alice", now: now) { _, _, _, signature in
        signature == [UInt8(ascii: "o"), UInt8(ascii: "k")]
    }
    precondition(again == result, "validation is not deterministic")
    guard case .success(let verified) = result else { return }
    // A success needs a good signature, and claims that hold by a separate reading.
    precondition(goodSignatureSeen, "accepted without a good signature")
    precondition(token.count <= JWTLimits.maxTokenBytes)
    let parts = token.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
    precondition(parts.count == 3)
    guard let payload = JWTBase64URL.decode(parts[1]),
        let claims = try? JSONParser().parse(payload).object
    else { preconditionFailure("accepted a payload that does not parse") }
    precondition(claims["iss"] == .string("iss"), "accepted a wrong issuer")
    switch claims["aud"] {
    case .string(let a)?: precondition(a == "aud", "accepted a wrong audience")
    case .array(let list)?: precondition(list.contains(.string("aud")), "accepted a wrong audience")
    default: preconditionFailure("accepted a token without an audience")
    }
    guard case .number(let exp)? = claims["exp"] else { preconditionFailure("accepted a token without exp") }
    precondition(now < exp + leeway && verified.expiresAt == exp, "accepted an expired token")
    if case .number(let nbf)? = claims["nbf"] { precondition(now + leeway >= nbf, "accepted a token before nbf") }
    precondition(claims["sub"] == .string("alice") && verified.user == "alice", "accepted another user")
}

func checkJWKS(_ document: UnsafeRawBufferPointer) {
    guard let set = try? JWKSet(parsing: document) else { return }
    precondition(!set.keys.isEmpty && set.keys.count <= JWKSet.maxKeys)
    for key in set.keys {
        precondition(JWSAlgorithm.allCases.contains { key.permits($0) }, "a key that verifies nothing")
        if let kid = key.keyID { precondition(!kid.isEmpty && kid.utf8.count <= JWK.maxKeyIDBytes) }
        switch key.material {
        case .ec(let curve, let x, let y):
            precondition(x.count == curve.coordinateSize && y.count == curve.coordinateSize)
        case .rsa(let n, let e):
            precondition(n.first != 0 && e.first != 0 && e.last! & 1 == 1)
            precondition((JWK.minimumRSABits...JWK.maximumRSABits).contains(key.rsaBits!))
        case .okp(let curve, let x):
            precondition(x.count == curve.keySize)
        }
    }
}

func checkEncodings(_ text: UnsafeRawBufferPointer) {
    // Canonical base64url: whatever decodes encodes back to the same text.
    if let bytes = JWTBase64URL.decode(text) {
        precondition(Array(JWTBase64URL.encode(bytes).utf8) == Array(text), "base64url is not canonical")
    }
    // JSON: what parses, written out again, parses to the same value.
    if let value = try? JSONParser().parse(text) {
        var out = ""
        write(value, to: &out)
        guard let again = try? JSONParser().parse(Array(out.utf8)) else {
            preconditionFailure("re-serialized JSON does not parse: \(out)")
        }
        precondition(again == value, "JSON round trip changed the value")
    }
}

func write(_ value: JSONValue, to out: inout String) {
    switch value {
    case .null: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .number(let n): out += "\(n)"
    case .string(let s): writeString(s, to: &out)
    case .array(let list):
        out += "["
        for (i, v) in list.enumerated() {
            if i > 0 { out += "," }
            write(v, to: &out)
        }
        out += "]"
    case .object(let members):
        out += "{"
        for (i, (k, v)) in members.enumerated() {
            if i > 0 { out += "," }
            writeString(k, to: &out)
            out += ":"
            write(v, to: &out)
        }
        out += "}"
    }
}

func writeString(_ s: String, to out: inout String) {
    out += "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    out += "\""
}
