public import GatehouseJWT
import GatehouseTLS

/// Where the identity provider's keys are and what its tokens must say (`--jwt-*`).
public struct JWTConfiguration: Sendable {
    /// A JWKS document (RFC 7517 §5), read at start and on SIGHUP.
    public var jwksFile: String
    public var policy: JWTPolicy

    public init(jwksFile: String, policy: JWTPolicy) {
        self.jwksFile = jwksFile
        self.policy = policy
    }
}

/// Verifies `AUTH <user> <jwt>` against the provider's public keys, synchronously, on the
/// calling worker thread.
///
/// Immutable once loaded; a reload builds a new one and swaps it in whole. Parsing and every
/// check but the signature are `GatehouseJWT`'s (pure, fuzzed); the signature is checked by the
/// OpenSSL the server already links, through `GatehouseTLS`. One verification costs one
/// public-key operation per key tried (one with a `kid`), plus small JSON parses.
public struct JWTVerifier: Sendable {
    public let configuration: JWTConfiguration
    private let validator: JWTValidator<SignaturePublicKey>
    /// Notes on keys of the file that were skipped, for the log.
    public let skipped: [String]

    public var policy: JWTPolicy { configuration.policy }
    public var keyCount: Int { validator.keys.count }
    /// `kid`s of the loaded keys (`-` for a key without one), for the log.
    public var keyIDs: [String] { validator.keys.map { $0.jwk.keyID ?? "-" } }

    /// Reads and checks the JWKS file and builds a key for each usable entry.
    ///
    /// > Warning: blocking file I/O. Call at start-up or on SIGHUP, never on a worker.
    public static func load(_ configuration: JWTConfiguration) throws(AuthError) -> JWTVerifier {
        let path = configuration.jwksFile
        // Public keys need no secrecy, but whoever can write this file can log in as anyone.
        let jwks = try SecretFile.readProtected(path, what: "JWKS file")
        return try JWTVerifier(configuration: configuration, jwks: jwks, source: path)
    }

    /// Builds a verifier from a JWKS document already in memory (`source` names it in errors).
    public init(configuration: JWTConfiguration, jwks: [UInt8], source: String = "JWKS") throws(AuthError) {
        let set: JWKSet
        do { set = try JWKSet(parsing: jwks) } catch { throw AuthError("\(source): \(error.message)", cause: error) }
        var keys: [(jwk: JWK, key: SignaturePublicKey)] = []
        var skipped = set.skipped
        for jwk in set.keys {
            do {
                keys.append((jwk, try Self.makeKey(jwk.material)))
            } catch {
                // A point off its curve, a modulus OpenSSL refuses: skip that key, keep the rest.
                skipped.append("kid \(jwk.keyID ?? "-"): \(error.summary)")
            }
        }
        guard !keys.isEmpty else { throw AuthError("\(source): no usable key (\(skipped.joined(separator: "; ")))") }
        let usable = keys.filter { entry in configuration.policy.algorithms.contains { entry.jwk.permits($0) } }
        guard !usable.isEmpty else {
            let allowed = configuration.policy.algorithms.sorted().map(\.rawValue).joined(separator: ",")
            throw AuthError("\(source): no key can verify any of the allowed algorithms (\(allowed))")
        }
        self.configuration = configuration
        self.validator = JWTValidator(policy: configuration.policy, keys: keys)
        self.skipped = skipped
    }

    private static func makeKey(_ material: JWK.Material) throws(TLSError) -> SignaturePublicKey {
        switch material {
        case .ec(let curve, let x, let y): try SignaturePublicKey.ec(curve: curve.rawValue, x: x, y: y)
        case .rsa(let n, let e): try SignaturePublicKey.rsa(modulus: n, exponent: e)
        case .okp(let curve, let x): try SignaturePublicKey.edwards(curve: curve.rawValue, x: x)
        }
    }

    /// Verifies `token` for `user` at wall-clock time `now` (seconds since the epoch).
    public func verify(user: String, token: UnsafeRawBufferPointer, now: Double) -> Result<VerifiedJWT, JWTFailure> {
        validator.validate(token: token, user: user, now: now) { key, algorithm, input, signature in
            key.verify(Self.scheme(for: algorithm), message: input, signature: signature)
        }
    }

    /// The OpenSSL scheme of a JWS algorithm (RFC 7518 §3.1, RFC 8037 §3.1).
    static func scheme(for algorithm: JWSAlgorithm) -> SignaturePublicKey.Scheme {
        switch algorithm {
        case .es256: .ecdsaFixedWidth(.sha256)
        case .es384: .ecdsaFixedWidth(.sha384)
        case .es512: .ecdsaFixedWidth(.sha512)
        case .rs256: .rsaPKCS1(.sha256)
        case .rs384: .rsaPKCS1(.sha384)
        case .rs512: .rsaPKCS1(.sha512)
        case .ps256: .rsaPSS(.sha256)
        case .ps384: .rsaPSS(.sha384)
        case .ps512: .rsaPSS(.sha512)
        case .edDSA: .eddsa
        }
    }
}
