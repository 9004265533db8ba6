/// The JWS signature algorithms Gatehouse can verify (RFC 7518 §3, RFC 8037 §3.1).
///
/// Asymmetric only. `none` and the HMAC algorithms (HS256, …) are not members at all, so no
/// configuration, token or key can select them: a server that verifies with public keys must
/// never treat a public key as an HMAC secret.
public enum JWSAlgorithm: String, CaseIterable, Sendable, Comparable {
    case es256 = "ES256"
    case es384 = "ES384"
    case es512 = "ES512"
    case rs256 = "RS256"
    case rs384 = "RS384"
    case rs512 = "RS512"
    case ps256 = "PS256"
    case ps384 = "PS384"
    case ps512 = "PS512"
    case edDSA = "EdDSA"

    public static let defaultAllowed: Set<JWSAlgorithm> = [.es256, .rs256, .edDSA]

    public static func < (a: JWSAlgorithm, b: JWSAlgorithm) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Parses a comma-separated list such as `ES256,RS256,EdDSA`; the error names the bad entry.
    public static func parseList(_ text: String) -> Result<Set<JWSAlgorithm>, JWKError> {
        var out: Set<JWSAlgorithm> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = String(item)
            if name.lowercased() == "none" {
                return .failure(JWKError(.algorithm, "'none' (unsigned tokens) is never accepted"))
            }
            if name.uppercased().hasPrefix("HS") {
                return .failure(
                    JWKError(
                        .algorithm,
                        "\(name): HMAC algorithms are never accepted (shared secrets, not public keys)"
                    )
                )
            }
            guard let algorithm = JWSAlgorithm(rawValue: name) else {
                let known = allCases.map(\.rawValue).joined(separator: ", ")
                return .failure(JWKError(.algorithm, "unknown algorithm '\(name)' (known: \(known))"))
            }
            out.insert(algorithm)
        }
        guard !out.isEmpty else { return .failure(JWKError(.algorithm, "no algorithm given")) }
        return .success(out)
    }
}

/// Curves of `kty: EC` keys, each tied to one algorithm (RFC 7518 §3.4).
public enum ECCurve: String, Sendable {
    case p256 = "P-256"
    case p384 = "P-384"
    case p521 = "P-521"

    /// Bytes of one coordinate, and of r and s in a signature.
    public var coordinateSize: Int {
        switch self {
        case .p256: 32
        case .p384: 48
        case .p521: 66
        }
    }

    public var algorithm: JWSAlgorithm {
        switch self {
        case .p256: .es256
        case .p384: .es384
        case .p521: .es512
        }
    }
}

/// Curves of `kty: OKP` signature keys (RFC 8037 §2).
public enum EdwardsCurve: String, Sendable {
    case ed25519 = "Ed25519"
    case ed448 = "Ed448"

    public var keySize: Int { self == .ed25519 ? 32 : 57 }
    public var signatureSize: Int { self == .ed25519 ? 64 : 114 }
}

/// A JWKS file, a key in it, or an algorithm list that cannot be used; `message` says why,
/// for the operator.
///
/// The module's error shape, as `TLSError`'s: `kind`, `message` (`description` is the message
/// alone) and the wrapped `cause` (the `JSONError` of a file that is not JSON). Two module errors
/// keep their own shapes on purpose: `JSONError` is the parser's leaf (a byte offset and a
/// reason, wrapped here as a cause), and `JWTFailure` is a verdict on a client's token whose
/// `check` names the failed rule for logs and metrics, not an error for an operator.
public struct JWKError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong. A struct over a private enum, so new kinds can be added.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable { case algorithm, key, document }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// An algorithm list names an unknown or a forbidden algorithm. The operator's.
        public static let algorithm = Kind(.algorithm)
        /// One key cannot be used (type, size, encoding, `alg`). The identity provider's.
        public static let key = Kind(.key)
        /// The JWKS document as a whole is refused (not JSON, too large, no usable key). The
        /// identity provider's or the operator's.
        public static let document = Kind(.document)

        public var description: String {
            switch base {
            case .algorithm: "algorithm"
            case .key: "key"
            case .document: "document"
            }
        }
    }

    public var kind: Kind
    public var message: String
    /// The error this one wraps, nil when it is the origin.
    public var cause: (any Error & Sendable)?

    public init(_ kind: Kind, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.kind = kind
        self.message = message
        self.cause = cause
    }

    /// A `.key` error.
    public init(_ message: String) { self.init(.key, message) }

    public var description: String { message }

    /// Equal when kind and message are: the cause is detail.
    public static func == (a: JWKError, b: JWKError) -> Bool { a.kind == b.kind && a.message == b.message }
}

/// One public signature key from a JWKS (RFC 7517), checked and decoded.
public struct JWK: Equatable, Sendable {
    public enum Material: Equatable, Sendable {
        case ec(curve: ECCurve, x: [UInt8], y: [UInt8])
        /// Big-endian, without leading zero bytes.
        case rsa(modulus: [UInt8], exponent: [UInt8])
        case okp(curve: EdwardsCurve, x: [UInt8])
    }

    public static let minimumRSABits = 2048
    public static let maximumRSABits = 8192
    public static let maxKeyIDBytes = 256

    public var keyID: String?
    /// The key's own `alg`, when it names one: then it verifies that algorithm only.
    public var algorithm: JWSAlgorithm?
    public var material: Material

    public init(keyID: String?, algorithm: JWSAlgorithm?, material: Material) {
        self.keyID = keyID
        self.algorithm = algorithm
        self.material = material
    }

    /// Whether this key may verify a signature made with `alg`. The key's type decides: an EC
    /// key verifies only its curve's ES algorithm, an RSA key only RS and PS, an OKP key only
    /// EdDSA; and a key that names its own `alg` verifies only that one.
    public func permits(_ alg: JWSAlgorithm) -> Bool {
        if let own = algorithm, own != alg { return false }
        switch material {
        case .ec(let curve, _, _): return curve.algorithm == alg
        case .rsa: return [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512].contains(alg)
        case .okp: return alg == .edDSA
        }
    }

    /// Bits of an RSA modulus (nil for other keys).
    public var rsaBits: Int? {
        guard case .rsa(let n, _) = material, let first = n.first else { return nil }
        return n.count * 8 - first.leadingZeroBitCount
    }

    /// Decodes one member of the `keys` array. Throws for a key that must stop the whole file
    /// (private key material); returns nil with `skipped` set for a key that is simply not a
    /// signature key Gatehouse uses (another `use`, HMAC, an unknown type or curve).
    public static func parse(_ value: JSONValue, skipped: inout String?) throws(JWKError) -> JWK? {
        guard let members = value.object else { throw JWKError("a key is not a JSON object") }
        guard let kty = members["kty"]?.string else { throw JWKError("a key has no 'kty'") }
        var keyID: String?
        if let kid = members["kid"] {
            guard let text = kid.string, !text.isEmpty, text.utf8.count <= maxKeyIDBytes else {
                throw JWKError("a key's 'kid' is not a string of 1 to \(maxKeyIDBytes) bytes")
            }
            keyID = text
        }
        // Private parts in a file of public keys mean the wrong file was given, and one that
        // must not be world-readable: refuse it rather than quietly use the public half.
        for secret in ["d", "p", "q", "dp", "dq", "qi", "oth"] where members[secret] != nil && kty != "oct" {
            throw JWKError(
                "key \(keyID ?? "without kid") holds private key material ('\(secret)'); give the public JWKS"
            )
        }
        if kty == "oct" {
            skipped = "symmetric ('oct') keys are never used: HMAC is not accepted"
            return nil
        }
        if let use = members["use"] {
            guard use.string == "sig" else {
                skipped = "'use' is not 'sig'"
                return nil
            }
        }
        if let ops = members["key_ops"] {
            guard let list = ops.array, list.contains(.string("verify")) else {
                skipped = "'key_ops' does not include 'verify'"
                return nil
            }
        }
        var algorithm: JWSAlgorithm?
        if let alg = members["alg"] {
            guard let name = alg.string, let known = JWSAlgorithm(rawValue: name) else {
                skipped = "its 'alg' is not an asymmetric signature algorithm Gatehouse verifies"
                return nil
            }
            algorithm = known
        }
        let material: Material
        switch kty {
        case "EC":
            guard let crv = members["crv"]?.string, let curve = ECCurve(rawValue: crv) else {
                skipped = "unsupported EC curve"
                return nil
            }
            // RFC 7518 §6.2.1.2-3: each coordinate is exactly the curve's size, leading zeros kept.
            guard let x = bytes(members["x"]), let y = bytes(members["y"]), x.count == curve.coordinateSize,
                y.count == curve.coordinateSize
            else {
                throw JWKError("key \(keyID ?? "without kid"): 'x'/'y' are not \(curve.coordinateSize)-byte base64url")
            }
            material = .ec(curve: curve, x: x, y: y)
        case "RSA":
            guard var n = bytes(members["n"]), var e = bytes(members["e"]) else {
                throw JWKError("key \(keyID ?? "without kid"): 'n'/'e' are not base64url")
            }
            // RFC 7518 §6.3.1 wants no leading zeros; some providers add one. Same integer.
            while n.first == 0 { n.removeFirst() }
            while e.first == 0 { e.removeFirst() }
            guard e.count <= 8, let last = e.last, last & 1 == 1, e != [1] else {
                throw JWKError("key \(keyID ?? "without kid"): the RSA exponent is not an odd number from 3 to 2^64")
            }
            material = .rsa(modulus: n, exponent: e)
            let key = JWK(keyID: keyID, algorithm: algorithm, material: material)
            guard let bits = key.rsaBits, (minimumRSABits...maximumRSABits).contains(bits) else {
                skipped = "RSA modulus outside \(minimumRSABits) to \(maximumRSABits) bits"
                return nil
            }
        case "OKP":
            guard let crv = members["crv"]?.string, let curve = EdwardsCurve(rawValue: crv) else {
                skipped = "not an Ed25519 or Ed448 signature key"
                return nil
            }
            guard let x = bytes(members["x"]), x.count == curve.keySize else {
                throw JWKError("key \(keyID ?? "without kid"): 'x' is not \(curve.keySize)-byte base64url")
            }
            material = .okp(curve: curve, x: x)
        default:
            skipped = "unknown key type '\(kty.prefix(16))'"
            return nil
        }
        let key = JWK(keyID: keyID, algorithm: algorithm, material: material)
        if let algorithm, !key.permits(algorithm) {
            throw JWKError("key \(keyID ?? "without kid"): its 'alg' \(algorithm.rawValue) does not fit its type")
        }
        return key
    }

    private static func bytes(_ value: JSONValue?) -> [UInt8]? {
        guard let text = value?.string, !text.isEmpty else { return nil }
        return JWTBase64URL.decode(text.utf8)
    }
}

/// A JWKS document (RFC 7517 §5): the keys Gatehouse can use, and a note for each one skipped.
public struct JWKSet: Equatable, Sendable {
    public static let maxFileBytes = 1 << 20
    public static let maxKeys = 64

    public var keys: [JWK]
    /// `key N (kid K): why`, for the log.
    public var skipped: [String]

    public init(keys: [JWK], skipped: [String] = []) {
        self.keys = keys
        self.skipped = skipped
    }

    /// Parses a JWKS document. Throws when it is not one, when a key is malformed, when it holds
    /// private key material, or when no usable key is left.
    public init(parsing bytes: some Collection<UInt8>) throws(JWKError) {
        guard bytes.count <= Self.maxFileBytes else {
            throw JWKError(.document, "larger than \(Self.maxFileBytes) bytes")
        }
        let document: JSONValue
        do { document = try JSONParser(maxDepth: 8, maxContainerCount: 4096).parse(bytes) } catch {
            throw JWKError(.document, "not JSON: \(error)", cause: error)
        }
        guard let list = document.object?["keys"]?.array else { throw JWKError(.document, "no \"keys\" array") }
        guard list.count <= Self.maxKeys else { throw JWKError(.document, "more than \(Self.maxKeys) keys") }
        var keys: [JWK] = []
        var skipped: [String] = []
        for (index, value) in list.enumerated() {
            var why: String?
            if let key = try JWK.parse(value, skipped: &why) {
                keys.append(key)
            } else {
                let kid = value.object?["kid"]?.string.map { " (kid \($0.prefix(64)))" } ?? ""
                skipped.append("key \(index + 1)\(kid): \(why ?? "unusable")")
            }
        }
        guard !keys.isEmpty else {
            throw JWKError(.document, "no usable signature key (\(skipped.joined(separator: "; ")))")
        }
        self.keys = keys
        self.skipped = skipped
    }
}
