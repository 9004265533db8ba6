import GatehouseJournal
import GatehouseProtocol
import GatehouseSystem
import GatehouseTLS

/// One client connection: its socket and TLS session, its framer, and its state machine.
///
/// Owned by one worker and touched by that worker's thread alone; it is not Sendable. All of its
/// protocol and lifecycle state is in `machine` (pure, tested on its own); this type adds what
/// the worker needs to do the machine's I/O: descriptor, TLS, epoll bookkeeping.
final class Connection {
    let slot: Int
    let generation: UInt32
    /// The socket, owned: closed once, by `Worker.close(_:_:)` (guarded by the slot check and
    /// the machine's `.closed`), or when the connection is freed if that never ran.
    var socket: OwnedFD?
    /// The socket's number, for the calls of the hot path; not used once `socket` is closed.
    let fd: Int32
    /// Server-wide connection number, as in logs and journal records.
    let id: UInt64
    /// The client's address: the socket's peer, or the one a trusted load balancer's PROXY
    /// header carries (set once the header is read, before TLS).
    var peer: String
    /// The peer's address without the port, for per-address limits.
    var peerHost: String
    /// Counted in the per-address table (`ServerShared.admit`): released at close.
    var admitted = true
    /// Set while a PROXY header is expected before the TLS handshake (`--proxy-protocol`).
    var proxyReader: ProxyHeaderReader?
    let tls: TLSConnection
    /// When it was accepted (monotonic ns): the handshake's duration for the metrics.
    let acceptedAt: UInt64
    var framer: LineFramer
    var machine: ConnectionStateMachine

    /// `","user":…,"peer":…,"conn":N` for the journal, set at authentication.
    var journalFields: [UInt8] = []
    /// The stream this connection opened (`STREAM`), and its pre-encoded journal fields.
    var streamKey: StreamKey?
    var streamFields: [UInt8] = []
    /// Input read after a `STREAM` that waits for the stream's other connection: framed once the
    /// stream is opened. At most one read's worth (reading stops while it waits).
    var heldInput: [UInt8] = []
    /// The epoll events currently registered.
    var interest: UInt32 = 0
    /// The earliest deadline this connection has in the worker's timer heap (.max: none known).
    var timerAt: UInt64 = .max
    /// Listed in the worker's set of connections with output to write.
    var isDirty = false
    /// Listed in the worker's list of connections to read on the next loop turn.
    var isQueuedForRead = false
    /// In one of its worker's handshake queues, unwatched until the queue reaches it.
    var queuedForHandshake = false
    /// The TLS layer asked for a writable socket before a read can go on.
    var tlsWantsWrite = false
    /// The last write would have blocked: wait for the next epoll event before writing again.
    var writeBlocked = false
    /// Lingering: close_notify waits for writability, and the FIN (shutdown) after it.
    var shutdownPending = false
    /// When the credential `checkCredential` last accepted expires (monotonic ns; an access
    /// token's exp plus leeway), nil when it does not; handed to the state machine with the result.
    var credentialExpiry: UInt64?

    init(
        slot: Int,
        generation: UInt32,
        fd: Int32,
        id: UInt64,
        peer: String,
        peerHost: String,
        tls: TLSConnection,
        limits: ConnectionLimits.Shared,
        now: UInt64,
        busy: Bool
    ) {
        self.slot = slot
        self.generation = generation
        self.fd = fd
        self.socket = OwnedFD(taking: fd)
        self.id = id
        self.peer = peer
        self.peerHost = peerHost
        self.tls = tls
        self.acceptedAt = now
        self.framer = LineFramer(maxLine: limits.value.maxLine)
        self.machine = ConnectionStateMachine(limits: limits, now: now, busy: busy)
    }

    /// The epoll data word: slot in the low half, generation in the high half.
    var token: UInt64 { UInt64(slot) | UInt64(generation) << 32 }

    /// Closed, or being closed: nothing may read or write its descriptor any more (the number
    /// may already belong to a new connection).
    var isClosed: Bool { machine.isClosed }
}
