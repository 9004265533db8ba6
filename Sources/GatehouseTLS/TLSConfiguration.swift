/// The lowest TLS version a context accepts.
public enum TLSMinimumVersion: String, Sendable, CaseIterable {
    /// TLS 1.3 only: the default.
    case v1_3 = "1.3"
    /// TLS 1.2 and 1.3; TLS 1.2 limited to forward-secret AEAD suites.
    case v1_2 = "1.2"
}

/// Whether a server asks for client certificates.
public enum ClientAuthMode: String, Sendable, CaseIterable {
    case off, optional, required
}

/// What a server context is built from. Plain data; `TLSContext(server:)` validates it.
public struct TLSServerConfiguration: Sendable {
    /// PEM file: the server's certificate first, then any intermediates.
    public var certificateChainFile: String
    /// PEM file: the private key of the first certificate.
    public var privateKeyFile: String
    public var minimumVersion: TLSMinimumVersion = .v1_3
    /// TLS 1.3 session tickets sent after each full handshake (each costs about 30 µs).
    public var sessionTickets: Int = 1
    public var clientAuth: ClientAuthMode = .off
    /// PEM bundle of CAs that client certificates must chain to; required unless `clientAuth` is off.
    public var clientCAFile: String?
    /// PEM file of certificate revocation lists, one per CA in the client chain; with it every
    /// client certificate (and intermediate) is checked for revocation. Needs `clientAuth` on.
    public var crlFile: String?
    /// The private key's PEM text, when the caller has read the file itself (to check its owner
    /// and mode on the open descriptor); `privateKeyFile` then only names it in messages.
    public var privateKeyPEM: [UInt8]?
    /// The session-ticket keys, shared by every context of the process so that a reload keeps
    /// tickets valid; nil makes the context a ring of its own.
    public var ticketKeys: TicketKeyRing?

    public init(certificateChainFile: String, privateKeyFile: String) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
    }
}

/// What a client context is built from.
public struct TLSClientConfiguration: Sendable {
    /// PEM bundle to verify the server against; nil means the system's default store.
    public var caFile: String?
    /// Verify the server's chain and name. Off only in tests that probe the server itself.
    public var verifyPeer: Bool = true
    public var certificateChainFile: String?
    public var privateKeyFile: String?
    public var minimumVersion: TLSMinimumVersion = .v1_2
    /// The highest TLS version to offer; nil offers TLS 1.3. For tests that play an older client.
    public var maximumVersion: TLSMinimumVersion?
    /// Keep sessions so that a later connection can resume.
    public var enableResumption: Bool = false

    public init(caFile: String? = nil) {
        self.caFile = caFile
    }
}

/// The cipher policy shared by server and client, in one place.
enum CipherPolicy {
    // AES-128-GCM first: it is the cheapest on CPUs with AES-NI and SHA extensions.
    static let tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    // TLS 1.2: ECDHE (forward secrecy) with an AEAD only. No RSA key exchange, no CBC, no SHA-1 MAC.
    static let tls12Ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        + "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        + "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    static let groups = "X25519:P-256"
}
