import GatehouseAuth
import GatehouseJWT
import GatehouseProtocol
import Logging

/// Checking `AUTH` credentials, and the expiry of connections an access token authenticated.
///
/// A token with the shape of a JWT (two dots) is verified against the JWKS when `--jwt-jwks` is
/// set; any other token, and every token when it is not, against the tokens file. The JWT check
/// runs here, synchronously, on the worker: it is CPU only (no I/O, no lock but the one that
/// reads the current verifier), about as costly as one signature verification.
extension Worker {
    /// Checks `token` for `user`. When it is accepted, records what the credential means for the
    /// connection: a JWT sets an expiry and lets `AUTH` come again for the same user; a tokens-file
    /// token clears both. Returns nil when accepted, else the failed check for the log: `token`
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
                let expiry = now + UInt64(remaining * 1e9)
                if expiry < conn.authExpiry { timers.push(deadline: expiry, token: conn.token) }
                conn.authExpiry = expiry
                conn.session.allowsReauthentication = true
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
        conn.authExpiry = .max
        conn.session.allowsReauthentication = false
        return nil
    }

    /// The access token of `conn` expired without a fresh one: `ERR AUTH_EXPIRED`, then close.
    /// Replies already queued go out first; nothing more is read.
    func expireAuthentication(_ conn: Connection) {
        logger.info(
            "access token expired",
            metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "user": "\(conn.session.user ?? "-")"]
        )
        conn.enqueue(
            conn.session.closeNotice(.authExpired, "the access token expired; reconnect with a fresh one")
        )
        beginClosing(conn, reason: "access token expired")
    }
}
