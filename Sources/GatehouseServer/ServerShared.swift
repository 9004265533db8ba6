import GatehouseAuth
import GatehouseJournal
import GatehouseTLS
import Logging
import Synchronization

/// What every worker shares: configuration, TLS context, tokens, journal, metrics, logger.
///
/// Immutable except for the reloadable material (TLS context, tokens, client map, JWKS), each behind
/// its own mutex and swapped whole, so a worker reads one consistent version, and the
/// authentication-failure throttle, which every worker updates under its mutex.
final class ServerShared: Sendable {
    let config: ServerConfiguration
    let logger: Logger
    let metrics = ServerMetrics()
    /// The journal or the PostgreSQL store (`--store`): workers submit to either alike.
    let journal: any MessageStore
    let health: ServerHealth
    /// One per worker, by index: what each counts for /metrics.
    let workerStats: [WorkerStats]
    private let tlsContext: Mutex<TLSContext>
    private let tokenStore: Mutex<TokenStore>
    private let clientMap: Mutex<ClientIdentityMap?>
    private let jwtVerifier: Mutex<JWTVerifier?>
    private let authThrottle: Mutex<AuthFailureThrottle>
    private let connectionCounter = Atomic<UInt64>(0)
    /// Open connections per peer address (IPv6 by /64), kept only when a per-address limit is set.
    private let peers: Mutex<PeerConnectionCounts>
    /// Which connection holds each open stream (PROTOCOL.md, Streams).
    let streams = Mutex(StreamRegistry())
    /// Every worker's inbox, by worker index: a stream's old and new connections may be on
    /// different workers.
    let inboxes: [WorkerInbox]

    init(
        config: ServerConfiguration,
        logger: Logger,
        tls: TLSContext,
        tokens: TokenStore,
        clientMap: ClientIdentityMap?,
        jwt: JWTVerifier?,
        journal: any MessageStore,
        health: ServerHealth = ServerHealth(),
        workerStats: [WorkerStats] = [],
        inboxes: [WorkerInbox] = []
    ) {
        self.workerStats = workerStats
        self.inboxes = inboxes
        self.health = health
        self.config = config
        self.logger = logger
        self.tlsContext = Mutex(tls)
        self.tokenStore = Mutex(tokens)
        self.clientMap = Mutex(clientMap)
        self.jwtVerifier = Mutex(jwt)
        self.authThrottle = Mutex(
            AuthFailureThrottle(limit: config.authFailureLimit, windowSeconds: config.authFailureWindowSeconds)
        )
        self.journal = journal
        self.peers = Mutex(PeerConnectionCounts(limit: max(1, config.maxConnectionsPerPeer)))
    }

    func currentTLSContext() -> TLSContext { tlsContext.withLock { $0 } }
    func tokens() -> TokenStore { tokenStore.withLock { $0 } }
    func replace(tokens: TokenStore) { tokenStore.withLock { $0 = tokens } }
    func replace(tls: TLSContext) { tlsContext.withLock { $0 = tls } }
    func replace(clientMap map: ClientIdentityMap?) { clientMap.withLock { $0 = map } }
    /// The JWT verifier in force, nil when `--jwt-jwks` is not set.
    func jwt() -> JWTVerifier? { jwtVerifier.withLock { $0 } }
    func replace(jwt: JWTVerifier) { jwtVerifier.withLock { $0 = jwt } }

    /// The user a verified client certificate authenticates as, under the current map.
    func certificateUser(for identity: CertificateIdentity) -> String? {
        let map = clientMap.withLock { $0 }
        return ClientIdentityMap.user(for: identity, map: map)
    }

    /// Whether AUTH from `peer` must be answered RATE_LIMITED without checking the token.
    func authenticationThrottled(peer: String, now: UInt64) -> Bool {
        guard config.authFailureLimit > 0 else { return false }
        let key = PeerKey(peer: peer)
        return authThrottle.withLock { $0.isThrottled(key, now: now) }
    }

    func recordAuthenticationFailure(peer: String, now: UInt64) {
        guard config.authFailureLimit > 0 else { return }
        let key = PeerKey(peer: peer)
        authThrottle.withLock { $0.recordFailure(key, now: now) }
    }

    func nextConnectionID() -> UInt64 { connectionCounter.add(1, ordering: .relaxed).newValue }

    /// Counts a new connection from `peer` (an address, with or without a port); false if its
    /// address (IPv6: its /64) is at its limit.
    func admit(peer: String) -> Bool {
        guard config.maxConnectionsPerPeer > 0 else { return true }
        let key = PeerKey(peer: peer)
        return peers.withLock { $0.admit(key) }
    }

    /// Forgets one connection from `peer`.
    func release(peer: String) {
        guard config.maxConnectionsPerPeer > 0 else { return }
        let key = PeerKey(peer: peer)
        peers.withLock { $0.release(key) }
    }
}
