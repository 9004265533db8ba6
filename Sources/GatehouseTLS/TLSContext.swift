import COpenSSL

/// An `SSL_CTX`: certificate, key, versions, ciphers and groups, built once and shared.
///
/// Immutable after `init`; OpenSSL documents `SSL_CTX` as safe to share between threads once
/// configured, so `@unchecked Sendable` holds as long as nothing mutates it after construction.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    public let isServer: Bool
    /// The ring that encrypts this server context's session tickets (kept alive here: the C
    /// callback holds only an unretained pointer). Nil for clients and with tickets off.
    public let ticketKeys: TicketKeyRing?
    /// Who may resume a session: a digest of the client-auth mode, the client CA bundle and the
    /// CRL (empty for a client context). A session made under another value is not resumed.
    public let sessionIDContext: [UInt8]

    /// Builds a server context. Fails with a typed error when a file is missing or bad, or when
    /// the key does not match the certificate.
    public init(server config: TLSServerConfiguration) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        let sessionIDContext = TLSContext.sessionIDContext(for: config)
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw .drained(.resource, "SSL_CTX_new failed")
        }
        self.ctx = ctx
        self.isServer = true
        self.ticketKeys = config.sessionTickets > 0 ? (config.ticketKeys ?? TicketKeyRing()) : nil
        self.sessionIDContext = sessionIDContext
        try applyCommonPolicy(minimum: config.minimumVersion)

        // Never give the server context the system's default verify paths: with them, libssl
        // searches for a chain on every handshake. Load the chain as given, and stop libssl
        // building one automatically.
        _ = COpenSSL_SSL_CTX_set_mode(ctx, COpenSSL_SSL_MODE_NO_AUTO_CHAIN)
        guard SSL_CTX_use_certificate_chain_file(ctx, config.certificateChainFile) == 1 else {
            throw .drained(.certificate, "cannot load certificate chain from \(config.certificateChainFile)")
        }
        try usePrivateKey(config)
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw .drained(.keyMismatch, "the private key \(config.privateKeyFile) does not match the certificate")
        }
        // Stateless tickets only: the server keeps no session cache (no memory per client),
        // and sends the configured number of tickets (one is enough to resume).
        _ = COpenSSL_SSL_CTX_set_session_cache_mode(ctx, COpenSSL_SSL_SESS_CACHE_OFF)
        // Read whole socket contents into the record buffer: one read per wake-up instead of a
        // 5-byte header read and a body read per record. The buffer is still released when idle.
        COpenSSL_SSL_CTX_set_read_ahead(ctx, 1)
        _ = SSL_CTX_set_num_tickets(ctx, max(0, config.sessionTickets))
        if let ticketKeys {
            useTicketKeys(ticketKeys)
        } else {
            _ = SSL_CTX_set_options(ctx, COpenSSL_SSL_OP_NO_TICKET)
        }
        // Without a session-id context OpenSSL refuses to resume any session once peer
        // verification is on ("session id context uninitialized"): every client certificate
        // holder's second connection failed. With one that digests who may resume, a reload
        // that changes the client CA, the CRL or the mode stops older sessions resuming.
        guard
            sessionIDContext.withUnsafeBufferPointer({
                SSL_CTX_set_session_id_context(ctx, $0.baseAddress, UInt32($0.count))
            }) == 1
        else { throw .drained(.configuration, "cannot set the session-id context") }
        _ = SSL_CTX_set_options(ctx, COpenSSL_SSL_OP_CIPHER_SERVER_PREFERENCE)

        switch config.clientAuth {
        case .off:
            SSL_CTX_set_verify(ctx, COpenSSL_SSL_VERIFY_NONE, nil)
        case .optional, .required:
            guard let caFile = config.clientCAFile else {
                throw TLSError(.configuration, "client authentication needs a client CA file")
            }
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw .drained(.certificate, "cannot load client CA bundle from \(caFile)")
            }
            if let names = SSL_load_client_CA_file(caFile) {
                SSL_CTX_set_client_CA_list(ctx, names)
            }
            if let crlFile = config.crlFile { try loadRevocationLists(crlFile) }
            // A leaf, up to two intermediates and the root: deeper chains are refused. OpenSSL
            // counts the intermediates only (depth N allows the leaf, N CAs and the trust anchor).
            SSL_CTX_set_verify_depth(ctx, 2)
            var mode = COpenSSL_SSL_VERIFY_PEER
            if config.clientAuth == .required { mode |= COpenSSL_SSL_VERIFY_FAIL_IF_NO_PEER_CERT }
            // No callback: a certificate that fails verification fails the handshake with the
            // matching alert; TLSConnection reads the reason from SSL_get_verify_result.
            SSL_CTX_set_verify(ctx, mode, nil)
        }
        if config.crlFile != nil && config.clientAuth == .off {
            throw TLSError(.configuration, "a CRL file needs client authentication (optional or required)")
        }
    }

    /// Builds a client context: verification against `caFile` (or the system store), optional
    /// client certificate.
    public init(client config: TLSClientConfiguration) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw .drained(.resource, "SSL_CTX_new failed")
        }
        self.ctx = ctx
        self.isServer = false
        self.ticketKeys = nil
        self.sessionIDContext = []
        try applyCommonPolicy(minimum: config.minimumVersion)
        if let maximum = config.maximumVersion {
            let max: Int32 = maximum == .v1_3 ? COpenSSL_TLS1_3_VERSION : COpenSSL_TLS1_2_VERSION
            guard COpenSSL_SSL_CTX_set_max_proto_version(ctx, max) == 1 else {
                throw .drained(.configuration, "cannot set the maximum TLS version")
            }
        }
        if config.verifyPeer {
            if let caFile = config.caFile {
                guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                    throw .drained(.certificate, "cannot load CA bundle from \(caFile)")
                }
            } else {
                guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                    throw .drained(.certificate, "cannot load the system's CA store")
                }
            }
            SSL_CTX_set_verify(ctx, COpenSSL_SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(ctx, COpenSSL_SSL_VERIFY_NONE, nil)
        }
        if let chain = config.certificateChainFile {
            guard SSL_CTX_use_certificate_chain_file(ctx, chain) == 1 else {
                throw .drained(.certificate, "cannot load client certificate from \(chain)")
            }
            let keyFile = config.privateKeyFile ?? chain
            guard SSL_CTX_use_PrivateKey_file(ctx, keyFile, COpenSSL_SSL_FILETYPE_PEM) == 1 else {
                if OpenSSLErrorQueue.lastIsKeyMismatch() {
                    throw .drained(.keyMismatch, "the client key \(keyFile) does not match the certificate")
                }
                throw .drained(.privateKey, "cannot load client key from \(keyFile)")
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                throw .drained(.keyMismatch, "the client key \(keyFile) does not match the certificate")
            }
        }
        _ = COpenSSL_SSL_CTX_set_session_cache_mode(
            ctx,
            config.enableResumption ? COpenSSL_SSL_SESS_CACHE_CLIENT : COpenSSL_SSL_SESS_CACHE_OFF
        )
    }

    private func applyCommonPolicy(minimum: TLSMinimumVersion) throws(TLSError) {
        let min: Int32 = minimum == .v1_3 ? COpenSSL_TLS1_3_VERSION : COpenSSL_TLS1_2_VERSION
        guard COpenSSL_SSL_CTX_set_min_proto_version(ctx, min) == 1 else {
            throw .drained(.configuration, "cannot set the minimum TLS version")
        }
        _ = SSL_CTX_set_options(
            ctx,
            COpenSSL_SSL_OP_NO_RENEGOTIATION | COpenSSL_SSL_OP_NO_COMPRESSION
                | COpenSSL_SSL_OP_IGNORE_UNEXPECTED_EOF
        )
        guard SSL_CTX_set_ciphersuites(ctx, CipherPolicy.tls13Suites) == 1,
            SSL_CTX_set_cipher_list(ctx, CipherPolicy.tls12Ciphers) == 1
        else {
            throw .drained(.configuration, "OpenSSL refused the cipher policy")
        }
        guard COpenSSL_SSL_CTX_set1_groups_list(ctx, CipherPolicy.groups) == 1 else {
            throw .drained(.configuration, "OpenSSL refused the key-exchange groups \(CipherPolicy.groups)")
        }
        // Writes may be partial and may be retried from a buffer that moved (the connection's
        // output buffer grows). Every session gives its record buffers (about 34 KB) back whenever
        // they are empty, from the start: a handshake waiting for the client's next flight holds
        // none either, so thousands of handshakes under way at once (a reconnect storm, clients
        // that stall after their hello) cost little memory. Measured (2026-12-01): no change in
        // CPU per handshake beyond the noise; 100 bytes less per idle connection after 10,000
        // connected, as fewer freed buffers are left between the long-lived allocations.
        _ = COpenSSL_SSL_CTX_set_mode(
            ctx,
            COpenSSL_SSL_MODE_RELEASE_BUFFERS | COpenSSL_SSL_MODE_ENABLE_PARTIAL_WRITE
                | COpenSSL_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
        )
    }

    deinit {
        SSL_CTX_free(ctx)
    }
}
