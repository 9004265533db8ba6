import GatehouseAuth
import GatehouseJWT
import GatehouseProtocol
import GatehouseSystem
import Logging

/// Checking `AUTH` credentials, and the expiry of connections an access token authenticated.
///
/// A token with the shape of a JWT (two dots) is verified against the JWKS when `--jwt-jwks` is
/// set; any other token, and every token when it is not, against the tokens file. The JWT check
/// runs here, synchronously, on the worker: it is CPU only (no I/O, no lock but the one that
/// reads the current verifier), about as costly as one signature verification.
extension Worker {
    /// Checks `token` for `user`. When it is accepted, notes when the credential expires in
    /// `conn.credentialExpiry` (a JWT: its exp plus leeway; a tokens-file token: never), which the
    /// state machine takes with the result: it then lets `AUTH` come again for the same user, and
    /// answers `ERR AUTH_EXPIRED` and closes at expiry. Returns nil when accepted, else the failed check for the log: `token`
    /// (unknown user or wrong token) or a JWT check (`jwt_expired`, `jwt_signature`, …).
    func checkCredential(_ conn: Connection, user: String, token: UnsafeRawBufferPointer) -> String? {
        // The shape first: an opaque token takes no lock here.
        if CompactJWS.looksLikeJWT(token), let jwt = shared.jwt() {
            let wallNow = WallClock.now()
            switch jwt.verify(user: user, token: token, now: wallNow) {
            case .failure(let failure):
                return failure.check.rawValue
            case .success(let verified):
                // From wall-clock seconds to the worker's monotonic clock (capped: exp may be far).
                let remaining = min(max(0, verified.acceptedUntil - wallNow), 10 * 365 * 86_400)
                conn.credentialExpiry = now + UInt64(remaining * 1e9)
                logger.debug(
                    "access token accepted",
                    metadata: [
                        "conn": "\(conn.id)", "user": "\(user)", "alg": "\(verified.algorithm.rawValue)",
                        "kid": "\(verified.keyID ?? "-")", "expires_in": "\(Int(remaining))",
                    ]
                )
                return nil
            }
        }
        guard shared.tokens().verify(user: user, token: token) else { return "token" }
        conn.credentialExpiry = nil
        return nil
    }
}
