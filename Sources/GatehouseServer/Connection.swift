import GatehouseAuth
import GatehouseProtocol
import GatehouseTLS

/// One client connection: its socket, TLS session, framer, protocol session and queues.
///
/// Owned by one worker and touched by that worker's thread alone; it is not Sendable.
/// The worker drives it; this type holds state and the small operations on it.
final class Connection {
    enum Phase {
        /// TLS handshake under way; the handshake deadline applies.
        case handshaking
        /// Greeting sent; lines are read and answered.
        case open
        /// No more lines are read; queued replies are sent, then the connection closes.
        case closing
    }

    /// A reply in its place in the order: ready now, or waiting for the journal.
    enum Pending {
        case reply(Reply)
        case ack(Int)
    }

    let slot: Int
    let generation: UInt32
    let fd: Int32
    /// Server-wide connection number, as in logs and journal records.
    let id: UInt64
    let peer: String
    /// The peer's address without the port, for per-address limits.
    let peerHost: String
    let tls: TLSConnection
    var framer: LineFramer
    var session: Session
    var phase: Phase = .handshaking
    let openedAt: UInt64

    /// Encrypted-to-be reply bytes; `out[outStart...]` is not yet accepted by SSL_write.
    var out: [UInt8] = []
    var outStart = 0
    /// Replies that must wait for an earlier message's ACK.
    var pending = FIFO<Pending>()
    /// Journal outcomes received for this connection's messages, in order (true: stored).
    var outcomes = FIFO<Bool>()
    /// Messages handed to the journal whose outcome has not been applied yet.
    var inFlight = 0

    /// When the current phase's timer fires (monotonic ns); pushed lazily to the worker's heap.
    var deadline: UInt64
    /// The epoll events currently registered.
    var interest: UInt32 = 0
    /// Reading is suspended because the outbound queue or the journal backlog is full.
    var readPaused = false
    /// Paused because the journal's queue is full (resumed by the worker, not by draining).
    var stalledOnJournal = false
    /// Close once every pending reply is written.
    var closeWhenFlushed = false
    var closeReason = "closed"
    /// Listed in the worker's set of connections with output to write.
    var isDirty = false
    /// The TLS layer asked for a writable socket before it can go on.
    var tlsWantsWrite = false
    /// Past the connection limit: after the handshake, refuse with ERR BUSY.
    var refuseAsBusy = false
    /// `","user":…,"peer":…,"conn":N` for the journal, set at authentication.
    var journalFields: [UInt8] = []
    var messagesAcked = 0
    /// The per-connection message rate limit (`--max-msg-rate`), nil when there is none.
    var messageBucket: TokenBucket?
    /// When the access token (JWT) that authenticated the connection expires (monotonic ns);
    /// `.max` when its credential does not expire. See Worker+Credentials.swift.
    var authExpiry: UInt64 = .max

    init(
        slot: Int,
        generation: UInt32,
        fd: Int32,
        id: UInt64,
        peer: String,
        peerHost: String,
        tls: TLSConnection,
        maxLine: Int,
        errorBudget: Int,
        now: UInt64,
        handshakeDeadline: UInt64
    ) {
        self.slot = slot
        self.generation = generation
        self.fd = fd
        self.id = id
        self.peer = peer
        self.peerHost = peerHost
        self.tls = tls
        self.framer = LineFramer(maxLine: maxLine)
        self.session = Session(errorBudget: errorBudget)
        self.openedAt = now
        self.deadline = handshakeDeadline
    }

    /// The epoll data word: slot in the low half, generation in the high half.
    var token: UInt64 { UInt64(slot) | UInt64(generation) << 32 }

    var unsentBytes: Int { out.count - outStart }

    /// Puts a reply in order: straight into the output when nothing waits before it.
    @inline(__always)
    func enqueue(_ reply: Reply) {
        if pending.isEmpty {
            reply.encode(into: &out)
        } else {
            pending.push(.reply(reply))
        }
    }

    /// Moves every reply that is now ready, in order, into the output. Returns ACKs and
    /// UNAVAILABLEs sent.
    func releaseReady() -> (acked: Int, failed: Int) {
        var acked = 0
        var failed = 0
        while let next = pending.first {
            switch next {
            case .reply(let reply):
                reply.encode(into: &out)
            case .ack(let n):
                guard let stored = outcomes.pop() else { return (acked, failed) }
                if stored {
                    Reply.ack(n).encode(into: &out)
                    acked += 1
                } else {
                    session.journalFailed().encode(into: &out)
                    failed += 1
                }
            }
            _ = pending.pop()
        }
        return (acked, failed)
    }

    /// Drops written bytes; gives the buffer back when it is empty and large.
    func consumeOutput(_ n: Int) {
        outStart += n
        if outStart == out.count {
            if out.capacity > 2048 { out = [] } else { out.removeAll(keepingCapacity: true) }
            outStart = 0
        }
    }
}
