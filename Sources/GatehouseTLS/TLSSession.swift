import COpenSSL

/// One owned reference to an `SSL_SESSION`: what a client keeps to resume a later connection.
///
/// OpenSSL reference-counts sessions atomically, and a session taken with `SSL_get1_session`
/// after the handshake is not changed again by libssl; `SSL_set_session` only adds a reference.
/// So sharing one between threads is safe as long as nobody mutates it through OpenSSL, which
/// this type never does: that is the invariant behind `@unchecked Sendable`.
public final class TLSSession: @unchecked Sendable {
    let pointer: OpaquePointer

    /// Takes over one reference (from `SSL_get1_session`); `deinit` gives it back.
    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        SSL_SESSION_free(pointer)
    }

    /// Whether the session can still be offered for resumption (a TLS 1.3 session is only
    /// resumable once its ticket has arrived, after the handshake).
    public var isResumable: Bool { SSL_SESSION_is_resumable(pointer) == 1 }
}

extension TLSConnection {
    /// The connection's current session, or nil before a handshake. In TLS 1.3 the server's
    /// ticket arrives after the handshake: take the session after the first application data
    /// has been read, and check `isResumable`.
    public var session: TLSSession? {
        guard let pointer = SSL_get1_session(ssl) else { return nil }
        return TLSSession(taking: pointer)
    }

    /// Offers `session` for resumption; call before the handshake. The context must have been
    /// built with `enableResumption`. A session the server no longer accepts costs only a full
    /// handshake (`sessionReused` then stays false).
    public func setSession(_ session: TLSSession) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard SSL_set_session(ssl, session.pointer) == 1 else {
            throw .drained(.configuration, "SSL_set_session failed")
        }
    }
}

extension TLSConnection {
    /// Why the peer's certificate failed verification (`X509_verify_cert_error_string`), or nil
    /// when it verified or was not checked: "hostname mismatch", "unable to get local issuer
    /// certificate", ...
    public var verificationFailure: String? {
        let result = SSL_get_verify_result(ssl)
        guard result != Int(X509_V_OK) else { return nil }
        return String(cString: X509_verify_cert_error_string(result))
    }
}
