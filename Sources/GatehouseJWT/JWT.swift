import GatehouseProtocol

/// What a JWT must satisfy besides its signature (RFC 7519 §4.1, RFC 9068 §4).
public struct JWTPolicy: Equatable, Sendable {
    /// `iss` must equal this exactly.
    public var issuer: String
    /// `aud` (a string, or an array of strings) must contain this exactly.
    public var audience: String
    /// The claim that names the user; it must equal the user of `AUTH <user>`.
    public var userClaim: String
    public var algorithms: Set<JWSAlgorithm>
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    public var leewaySeconds: Double

    public init(
        issuer: String,
        audience: String,
        userClaim: String = "sub",
        algorithms: Set<JWSAlgorithm> = JWSAlgorithm.defaultAllowed,
        leewaySeconds: Double = 60
    ) {
        self.issuer = issuer
        self.audience = audience
        self.userClaim = userClaim
        self.algorithms = algorithms
        self.leewaySeconds = leewaySeconds
    }
}

/// The check a token failed, named for the log (`reason=jwt_expired`). The client is told none
/// of this: every failure is the same `ERR AUTH_FAILED`.
public enum JWTCheck: String, Sendable, CaseIterable {
    /// Longer than `JWTLimits.maxTokenBytes`, or a part decodes to more than its limit.
    case tooLarge = "jwt_too_large"
    /// Not three base64url parts, or a header that is not a JSON object.
    case malformed = "jwt_malformed"
    /// A header member Gatehouse will not honour: `crit`, an unexpected `typ`, `b64`, `zip`, `enc`.
    case header = "jwt_header"
    /// `alg` missing, `none`, HMAC, unknown, or not in `--jwt-algorithms`.
    case algorithm = "jwt_algorithm"
    /// `kid` names no key of the JWKS.
    case unknownKey = "jwt_unknown_kid"
    /// The key `kid` names is of another type than `alg` (or names another `alg` itself).
    case keyMismatch = "jwt_key_mismatch"
    /// No `kid`, and no key of the JWKS fits `alg`.
    case noKey = "jwt_no_key"
    case signature = "jwt_signature"
    /// The payload is not a JSON object, or a registered claim has the wrong type.
    case claims = "jwt_claims"
    case issuer = "jwt_issuer"
    case audience = "jwt_audience"
    case expired = "jwt_expired"
    case notYetValid = "jwt_not_yet_valid"
    case issuedInFuture = "jwt_issued_in_future"
    /// The user claim is missing or not a valid Gatehouse user name.
    case userClaim = "jwt_user_claim"
    /// The user claim names another user than `AUTH <user>`.
    case userMismatch = "jwt_user_mismatch"
}

public struct JWTFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var check: JWTCheck
    public init(_ check: JWTCheck) { self.check = check }
    public var description: String { check.rawValue }
}

/// Size limits, checked before anything is decoded.
public enum JWTLimits {
    public static let maxTokenBytes = 8192
    public static let maxHeaderBytes = 2048
    public static let maxPayloadBytes = 6144
    /// An RSA-8192 signature.
    public static let maxSignatureBytes = 1024
    /// A token without `kid` is tried against at most this many keys of its algorithm's type.
    public static let maxKeysTriedWithoutKeyID = 4
    /// Entries of an `aud` array.
    public static let maxAudiences = 64
    /// NumericDate values above this (year 5138) are refused as nonsense.
    public static let maxNumericDate: Double = 1e11
}

/// A token that passed every check.
public struct VerifiedJWT: Equatable, Sendable {
    public var user: String
    public var algorithm: JWSAlgorithm
    public var keyID: String?
    /// The `exp` claim (seconds since the epoch).
    public var expiresAt: Double
    /// `exp` plus the leeway: the last moment this token is accepted, and when a connection it
    /// authenticated gets `ERR AUTH_EXPIRED`.
    public var acceptedUntil: Double
}

/// A compact-serialized JWS split into its parts, its header checked; the signature is not.
public struct CompactJWS: Equatable, Sendable {
    public var algorithm: JWSAlgorithm
    public var keyID: String?
    /// Bytes of `header.payload` at the start of the token: what the signature covers.
    public var signingInputLength: Int
    /// The payload part, still base64url, as a range of the token.
    public var payloadRange: Range<Int>
    public var signature: [UInt8]

    /// Whether `token` has the shape of a compact JWS (two dots); opaque Gatehouse tokens never do.
    public static func looksLikeJWT(_ token: UnsafeRawBufferPointer) -> Bool {
        var dots = 0
        for b in token where b == UInt8(ascii: ".") { dots += 1 }
        return dots == 2
    }

    public static func looksLikeJWT(_ token: [UInt8]) -> Bool {
        token.withUnsafeBytes { looksLikeJWT($0) }
    }

    /// Splits `token` and checks its header against `allowed`. Only the header is parsed as
    /// JSON here: the payload is read after the signature has been checked.
    public static func parse(
        _ token: UnsafeRawBufferPointer,
        allowed: Set<JWSAlgorithm>
    ) -> Result<
        CompactJWS, JWTFailure
    > {
        guard token.count <= JWTLimits.maxTokenBytes else { return .failure(JWTFailure(.tooLarge)) }
        guard let firstDot = token.firstIndex(of: UInt8(ascii: ".")),
            let secondDot = token[(firstDot + 1)...].firstIndex(of: UInt8(ascii: ".")),
            token[(secondDot + 1)...].firstIndex(of: UInt8(ascii: ".")) == nil
        else { return .failure(JWTFailure(.malformed)) }
        let headerPart = token[0..<firstDot]
        let payloadRange = (firstDot + 1)..<secondDot
        let signaturePart = token[(secondDot + 1)...]
        // An empty signature part is let through to the header checks, so that an unsigned
        // (`alg: none`) token is logged for its algorithm.
        guard !headerPart.isEmpty, !payloadRange.isEmpty else { return .failure(JWTFailure(.malformed)) }
        guard JWTBase64URL.decodedLength(ofEncodedLength: headerPart.count) <= JWTLimits.maxHeaderBytes,
            JWTBase64URL.decodedLength(ofEncodedLength: payloadRange.count) <= JWTLimits.maxPayloadBytes,
            JWTBase64URL.decodedLength(ofEncodedLength: signaturePart.count) <= JWTLimits.maxSignatureBytes
        else { return .failure(JWTFailure(.tooLarge)) }
        // The payload is decoded only once the signature holds (`JWTValidator.validate`).
        guard let headerBytes = JWTBase64URL.decode(headerPart), let signature = JWTBase64URL.decode(signaturePart)
        else { return .failure(JWTFailure(.malformed)) }
        guard let header = try? JSONParser(maxDepth: 4, maxContainerCount: 64).parse(headerBytes).object else {
            return .failure(JWTFailure(.malformed))
        }
        guard let name = header["alg"]?.string, let algorithm = JWSAlgorithm(rawValue: name),
            allowed.contains(algorithm)
        else { return .failure(JWTFailure(.algorithm)) }
        guard !signature.isEmpty else { return .failure(JWTFailure(.signature)) }
        // `crit` lists extensions the verifier must understand (RFC 7515 §4.1.11); Gatehouse
        // understands none. `b64` changes what is signed (RFC 7797); `zip` and `enc` are JWE.
        for member in ["crit", "b64", "zip", "enc"] where header[member] != nil {
            return .failure(JWTFailure(.header))
        }
        if let typ = header["typ"] {
            // RFC 9068 access tokens say `at+jwt`; many providers still say `JWT`.
            guard let text = typ.string?.lowercased(), ["jwt", "at+jwt", "application/at+jwt"].contains(text) else {
                return .failure(JWTFailure(.header))
            }
        }
        var keyID: String?
        if let kid = header["kid"] {
            guard let text = kid.string, !text.isEmpty, text.utf8.count <= JWK.maxKeyIDBytes else {
                return .failure(JWTFailure(.header))
            }
            keyID = text
        }
        // `jku`, `x5u`, `jwk`, `x5c`: keys offered by the token itself. Never fetched, never
        // trusted: only the configured JWKS decides.
        return .success(
            CompactJWS(
                algorithm: algorithm,
                keyID: keyID,
                signingInputLength: secondDot,
                payloadRange: payloadRange,
                signature: signature
            )
        )
    }
}

/// Verifies tokens against a JWKS and a policy. `Key` is whatever the signature check needs
/// (an OpenSSL key in the server; anything in tests and the fuzzer): this type does everything
/// but the cryptography, and is pure.
public struct JWTValidator<Key> {
    public let policy: JWTPolicy
    public let keys: [(jwk: JWK, key: Key)]

    public init(policy: JWTPolicy, keys: [(jwk: JWK, key: Key)]) {
        self.policy = policy
        self.keys = keys
    }

    /// Checks `token` for `user` at `now` (seconds since the epoch). `verify` checks one
    /// signature: (key, algorithm, signing input, signature) → valid.
    public func validate(
        token: UnsafeRawBufferPointer,
        user: String,
        now: Double,
        verify: (Key, JWSAlgorithm, UnsafeRawBufferPointer, [UInt8]) -> Bool
    ) -> Result<VerifiedJWT, JWTFailure> {
        let jws: CompactJWS
        switch CompactJWS.parse(token, allowed: policy.algorithms) {
        case .success(let parsed): jws = parsed
        case .failure(let failure): return .failure(failure)
        }
        let candidates: [Int]
        switch self.candidates(for: jws) {
        case .success(let found): candidates = found
        case .failure(let failure): return .failure(failure)
        }
        let input = UnsafeRawBufferPointer(rebasing: token[0..<jws.signingInputLength])
        guard candidates.contains(where: { verify(keys[$0].key, jws.algorithm, input, jws.signature) }) else {
            return .failure(JWTFailure(.signature))
        }
        // Decoded only now that the signature vouches for it.
        guard let payload = JWTBase64URL.decode(token[jws.payloadRange]) else {
            return .failure(JWTFailure(.malformed))
        }
        return checkClaims(payload, user: user, now: now).map { expiry in
            VerifiedJWT(
                user: user,
                algorithm: jws.algorithm,
                keyID: jws.keyID,
                expiresAt: expiry,
                acceptedUntil: expiry + policy.leewaySeconds
            )
        }
    }

    /// The keys to try, in order. With a `kid`: the keys of that id, which must fit `alg`.
    /// Without: the keys whose type fits `alg`, at most `JWTLimits.maxKeysTriedWithoutKeyID`.
    public func candidates(for jws: CompactJWS) -> Result<[Int], JWTFailure> {
        if let kid = jws.keyID {
            let named = keys.indices.filter { keys[$0].jwk.keyID == kid }
            guard !named.isEmpty else { return .failure(JWTFailure(.unknownKey)) }
            let fitting = named.filter { keys[$0].jwk.permits(jws.algorithm) }
            guard !fitting.isEmpty else { return .failure(JWTFailure(.keyMismatch)) }
            return .success(fitting)
        }
        let fitting = keys.indices.filter { keys[$0].jwk.permits(jws.algorithm) }
        guard !fitting.isEmpty else { return .failure(JWTFailure(.noKey)) }
        return .success(Array(fitting.prefix(JWTLimits.maxKeysTriedWithoutKeyID)))
    }

    /// Checks the claims of a payload whose signature is valid; returns `exp`.
    public func checkClaims(_ payload: [UInt8], user: String, now: Double) -> Result<Double, JWTFailure> {
        guard let claims = try? JSONParser(maxDepth: 8, maxContainerCount: 256).parse(payload).object else {
            return .failure(JWTFailure(.claims))
        }
        let leeway = policy.leewaySeconds
        guard claims["iss"]?.string == policy.issuer else { return .failure(JWTFailure(.issuer)) }
        switch claims["aud"] {
        case .string(let audience)?:
            guard audience == policy.audience else { return .failure(JWTFailure(.audience)) }
        case .array(let list)?:
            guard list.count <= JWTLimits.maxAudiences, list.allSatisfy({ $0.string != nil }),
                list.contains(.string(policy.audience))
            else { return .failure(JWTFailure(.audience)) }
        default:
            return .failure(JWTFailure(.audience))
        }
        var times: [String: Double] = [:]
        for name in ["exp", "nbf", "iat"] {
            guard let value = claims[name] else { continue }
            guard let seconds = value.number, seconds >= 0, seconds <= JWTLimits.maxNumericDate else {
                return .failure(JWTFailure(.claims))
            }
            times[name] = seconds
        }
        // An access token without an expiry would be valid forever: refused.
        guard let exp = times["exp"] else { return .failure(JWTFailure(.claims)) }
        guard now < exp + leeway else { return .failure(JWTFailure(.expired)) }
        if let nbf = times["nbf"], now + leeway < nbf { return .failure(JWTFailure(.notYetValid)) }
        if let iat = times["iat"] {
            guard iat <= now + leeway else { return .failure(JWTFailure(.issuedInFuture)) }
            guard iat <= exp else { return .failure(JWTFailure(.claims)) }
        }
        guard let named = claims[policy.userClaim]?.string, CommandParser.isValidUserName(named) else {
            return .failure(JWTFailure(.userClaim))
        }
        guard named == user else { return .failure(JWTFailure(.userMismatch)) }
        return .success(exp)
    }
}

extension JWTValidator: Sendable where Key: Sendable {}

/// Reads claims without verifying anything: for a client deciding when to fetch a fresh token.
/// Never use the result to trust a token.
public enum UnverifiedJWT {
    /// The `exp` claim of a compact JWT, or nil when the token is not one or has none.
    public static func expiry(of token: String) -> Double? {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].count <= JWTLimits.maxTokenBytes,
            let payload = JWTBase64URL.decode(parts[1]),
            let claims = try? JSONParser().parse(payload).object,
            let exp = claims["exp"]?.number, exp >= 0, exp <= JWTLimits.maxNumericDate
        else { return nil }
        return exp
    }
}
