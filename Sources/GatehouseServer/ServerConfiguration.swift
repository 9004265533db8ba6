public import GatehouseAuth
public import GatehouseJournal
public import GatehousePostgres
public import GatehouseTLS

/// Everything the server needs to run, already validated by the command line.
public struct ServerConfiguration: Sendable {
    public var host: String = "::"
    public var port: Int = 9999
    /// Worker threads; 0 means one per core.
    public var workers: Int = 0
    public var tls: TLSServerConfiguration
    public var tokensFile: String
    public var journalFile: String
    public var fsync: FsyncPolicy = .always
    /// `--store postgresql`: messages go to this database instead of the journal (nil: the
    /// journal). The journal's queue bounds apply to it as well.
    public var postgres: PostgresSettings?
    /// Roll the journal into numbered segments past this size (nil: one file forever).
    public var journalMaxBytes: Int?
    /// Messages queued for the journal (all workers) past which workers stop reading clients.
    public var journalMaxQueued: Int = 1 << 16
    /// Record bytes queued for the journal (all workers) past which workers stop reading clients.
    public var journalMaxQueuedBytes: Int = Journal.defaultMaxQueuedBytes
    /// Seconds after its last message before a stream may be forgotten (`--stream-retention`).
    public var streamRetentionSeconds: Int64 = Journal.defaultStreamRetention
    /// Streams remembered at most (`--max-streams`).
    public var maxStreams: Int = Journal.defaultMaxStreams
    /// Longest request line in bytes, CR and LF included.
    public var maxLine: Int = 65_536
    /// ERR replies a connection may receive before it is closed.
    public var errorBudget: Int = 10
    public var handshakeTimeoutMs: Int = 10_000
    /// Time from the greeting within which a connection must authenticate (ERR AUTH_TIMEOUT).
    public var authTimeoutMs: Int = 10_000
    public var idleTimeoutMs: Int = 300_000
    public var drainTimeoutMs: Int = 10_000
    public var maxConnections: Int = 10_000
    /// Connections past `maxConnections` that still get a handshake and `ERR BUSY`; past those,
    /// new connections are closed at once, before TLS.
    public var busyHandshakes: Int = 256
    /// Concurrent connections from one address (0: no limit). Past it, a plain close before TLS.
    public var maxConnectionsPerPeer: Int = 0
    /// Reply bytes queued for a client before the server stops reading from it.
    public var maxOutboundBytes: Int = 256 * 1024
    /// Messages of one connection waiting for the journal before the server stops reading from it.
    public var maxInFlightPerConnection: Int = 4096
    /// Journal bytes (text and record fields) of one connection's messages waiting for the
    /// journal before the server stops reading from it.
    public var maxInFlightBytesPerConnection: Int = 1 << 20
    /// Plaintext read from one connection per loop turn before the worker serves the others: one
    /// full TLS record. A client that pipelines faster than the worker parses gets this much per
    /// turn, like every other; in a debug build 16 KiB of PINGs take about 20 ms to answer.
    public var readBudgetBytes: Int = 16 * 1024

    /// Accept a private key, tokens file and client map that their group may read (never write);
    /// by default only their owner may (`SecretFile`).
    public var allowGroupReadableSecrets = false

    /// Every connection must start with a PROXY protocol header (v1 or v2), and come from one
    /// of `proxyFrom` (`--proxy-protocol`, `--proxy-from`).
    public var proxyProtocol = false
    public var proxyFrom: [AddressRange] = []

    /// Where `/metrics`, `/healthz` and `/readyz` are served over plain HTTP; nil: nowhere.
    public var metricsAddress: (host: String, port: Int)?

    /// Maps client-certificate names to users (`--client-map`); nil: the subject CN is the user.
    public var clientMapFile: String?
    /// Failed AUTHs a peer address may make in a burst before its AUTHs are answered RATE_LIMITED
    /// unchecked; 0 turns the throttle off.
    public var authFailureLimit: Int = 10
    /// Seconds over which a peer's whole allowance of failures refills.
    public var authFailureWindowSeconds: Double = 60
    /// Close new connections from a throttled address before TLS (`--throttle-refuse-connections`),
    /// as OpenSSH's PerSourcePenalties do; addresses in `throttleExempt` are never refused.
    public var throttleRefuseConnections = false
    public var throttleExempt: [AddressRange] = []
    /// MSG lines per second one connection may send (bursts of as many); past it, ERR RATE_LIMITED.
    /// 0: no limit.
    public var maxMessageRate: Int = 0
    /// OAuth 2.0 access tokens (`--jwt-*`): JWTs accepted by `AUTH` besides the tokens file.
    public var jwt: JWTConfiguration?

    public init(tls: TLSServerConfiguration, tokensFile: String, journalFile: String) {
        self.tls = tls
        self.tokensFile = tokensFile
        self.journalFile = journalFile
    }
}
