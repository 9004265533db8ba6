import ArgumentParser
import GatehouseAuth
import GatehouseJWT
import GatehouseProtocol

/// `--jwt-*`: OAuth 2.0 access tokens (signed JWTs) accepted by `AUTH`, checked against the
/// identity provider's public keys. Off unless `--jwt-jwks` is given.
struct JWTOptions: ParsableArguments {
    static let leewayRange: ClosedRange<Double> = 0...600

    @Option(
        name: .customLong("jwt-jwks"),
        help: ArgumentHelp(
            "JWKS file of the identity provider's public keys: AUTH then also accepts its signed JWTs (reloaded on SIGHUP).",
            valueName: "file"
        )
    )
    var jwks: String?
    @Option(name: .customLong("jwt-issuer"), help: "The 'iss' a JWT must carry (required with --jwt-jwks).")
    var issuer: String?
    @Option(
        name: .customLong("jwt-audience"),
        help: "The 'aud' a JWT must carry, e.g. this server's URL (required with --jwt-jwks)."
    )
    var audience: String?
    @Option(name: .customLong("jwt-user-claim"), help: "The claim that must equal the user of AUTH <user>.")
    var userClaim: String = "sub"
    @Option(
        name: .customLong("jwt-algorithms"),
        help: "Signature algorithms accepted, of ES256 ES384 ES512 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA."
    )
    var algorithms: String = "ES256,RS256,EdDSA"
    @Option(name: .customLong("jwt-leeway"), help: "Seconds of clock skew tolerated on exp, nbf and iat (0 to 600).")
    var leeway: Double = 60

    func validate() throws {
        guard let _ = jwks else {
            if issuer != nil || audience != nil {
                throw FlagRange.Error("--jwt-issuer and --jwt-audience need --jwt-jwks FILE")
            }
            return
        }
        guard let issuer, !issuer.isEmpty else {
            throw FlagRange.Error("--jwt-jwks needs --jwt-issuer (the 'iss' to accept)")
        }
        guard let audience, !audience.isEmpty else {
            throw FlagRange.Error("--jwt-jwks needs --jwt-audience (the 'aud' to accept)")
        }
        try FlagRange.check("--jwt-leeway", leeway, Self.leewayRange, unit: "seconds")
        guard (1...64).contains(userClaim.utf8.count), userClaim.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw FlagRange.Error("--jwt-user-claim must be 1 to 64 printable ASCII characters")
        }
        if case .failure(let error) = JWSAlgorithm.parseList(algorithms) {
            throw FlagRange.Error("--jwt-algorithms: \(error.message)")
        }
    }

    /// The configuration, or nil when JWTs are not accepted. Call after `validate()`.
    var configuration: JWTConfiguration? {
        guard let jwks, let issuer, let audience, case .success(let allowed) = JWSAlgorithm.parseList(algorithms) else {
            return nil
        }
        let policy = JWTPolicy(
            issuer: issuer,
            audience: audience,
            userClaim: userClaim,
            algorithms: allowed,
            leewaySeconds: leeway
        )
        return JWTConfiguration(jwksFile: jwks, policy: policy)
    }
}
