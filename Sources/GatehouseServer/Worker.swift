import DequeModule
import GatehouseAuth
import GatehouseJournal
import GatehouseProtocol
import GatehouseSystem
import GatehouseTLS
import Logging

/// One worker thread: its own epoll loop, listening socket and connections.
///
/// Everything here runs on the worker's thread; other threads reach it only through `inbox`.
final class Worker {
    let index: Int
    let shared: ServerShared
    /// The worker's epoll instance and listening socket, owned: closed when the worker ends.
    let epollFD: OwnedFD
    let listenerFD: OwnedFD
    var epoll: Int32 { epollFD.raw }
    var listener: Int32 { listenerFD.raw }
    let inbox: WorkerInbox
    var logger: Logger
    /// What this worker counts for /metrics (written by this thread only).
    let stats: WorkerStats

    var connections: [Connection?] = []
    var generations: [UInt32] = []
    var freeSlots: [Int] = []
    var openCount = 0
    var timers = TimerHeap()
    var dirty: [Connection] = []
    /// Connections to read on the next loop turn: their read budget ran out, or their reading
    /// resumed (OpenSSL may hold plaintext that epoll will not announce).
    var readAgain: [Connection] = []
    /// Handshakes whose bytes arrived after this turn's handshake budget was spent, oldest
    /// first, unwatched meanwhile so that epoll reports the established connections at once:
    /// those already under way (their next step is short: the client's Finished, the ticket,
    /// the greeting) before those not begun (a key exchange and a signature each). Their
    /// handshake timers stop while they wait (`ConnectionStateMachine.handshakeQueued`).
    var startedHandshakes = Deque<Connection>()
    var newHandshakes = Deque<Connection>()
    /// Handshake steps left in this turn (`handshakesPerTurn` at its start).
    var handshakeBudget = 0
    /// A step costs up to ~0.6 ms of crypto (a full handshake's first), so eight keep a turn
    /// under ~5 ms: under a reconnect storm of thousands, established clients still get their
    /// ACKs within a turn or two instead of after every ready handshake (epoll's whole ready list).
    static let handshakesPerTurn = 8
    /// Closed connections that held a stream and still have messages in flight: the stream is
    /// released when their outcomes are in (`Worker+Streams`).
    var closedHolders: [UInt64: Connection] = [:]
    /// Connections not read while the journal's queue is full.
    var stalled: [Connection] = []
    var batch: JournalBatch
    var clock = JournalClock()
    var batchTime: [UInt8] = []
    /// The worker's one clock (monotonic ns), read once per loop turn; every event carries it.
    var now: UInt64 = 0
    /// Loop turns so far: a connection's read budget is per turn.
    var turn: UInt64 = 0
    let limits: ConnectionLimits.Shared
    var accepting = true
    /// Set while accepting is paused after EMFILE and friends.
    var acceptPausedUntil: UInt64?
    var acceptFailures = 0
    var draining = false
    var readBuffer: UnsafeMutableRawBufferPointer
    /// The one BIO all this worker's TLS sessions take turns on (`SharedSocketBIO`).
    let socketBIO: SharedSocketBIO

    /// Ciphertext a connection may hold unsent (two full TLS records): beyond it, OpenSSL is told
    /// to retry, as a full socket told it before (`SocketBIO`).
    static let ciphertextLimit = 2 * (16 * 1024 + 256)

    static let listenerToken = UInt64.max
    static let inboxToken = UInt64.max - 1

    init(
        index: Int,
        shared: ServerShared,
        listener: consuming OwnedFD,
        epoll: consuming OwnedFD,
        inbox: WorkerInbox
    ) throws(SystemError) {
        self.index = index
        self.shared = shared
        self.listenerFD = listener
        self.epollFD = epoll
        self.inbox = inbox
        self.logger = shared.logger
        self.stats = shared.workerStats.indices.contains(index) ? shared.workerStats[index] : WorkerStats()
        self.logger[metadataKey: "worker"] = "\(index)"
        self.batch = JournalBatch(worker: index)
        self.limits = ConnectionLimits.Shared(ConnectionLimits(shared.config))
        self.readBuffer = .allocate(byteCount: 16 * 1024 + 512, alignment: 16)
        do { self.socketBIO = try SharedSocketBIO() } catch { throw .outOfMemory("BIO_new") }
        try Epoll.add(epollFD.raw, listenerFD.raw, events: Epoll.readable, data: Worker.listenerToken)
        try Epoll.add(epollFD.raw, inbox.wakeFD, events: Epoll.readable, data: Worker.inboxToken)
    }

    deinit {
        readBuffer.deallocate()
    }

    // MARK: the loop

    /// Runs until the server stops or, when draining, until the last connection closes.
    func run() {
        let ready = EpollEvents(capacity: 256)
        let events = ready.events
        let data = ready.data
        now = Process.monotonicNanoseconds()
        while true {
            let timeout = nextTimeoutMs()
            let n: Int
            do { n = try ready.wait(on: epoll, timeoutMs: timeout) } catch {
                logger.critical("epoll failed", metadata: ["error": "\(error)"])
                return
            }
            now = Process.monotonicNanoseconds()
            turn &+= 1
            batchTime = []
            var stop = false
            // Reads of the previous turn that ran out of budget or were resumed; taken before the
            // events, so a connection re-queued in this turn waits for the next one.
            let again = readAgain
            readAgain = []
            handshakeBudget = Worker.handshakesPerTurn
            // Journal outcomes first, and their ACKs out at once: a connection that spends this
            // turn's read budget must not delay the replies of the others.
            for i in 0..<n where data[i] == Worker.inboxToken {
                stop = processInbox() || stop
                flushDirty()
            }
            runQueuedHandshakes()
            for i in 0..<n {
                switch data[i] {
                case Worker.listenerToken: acceptAll()
                case Worker.inboxToken: continue
                default: handle(events: events[i], token: data[i])
                }
            }
            resumeAcceptingIfDue()
            if !stalled.isEmpty && !shared.journal.isSaturated {
                for conn in stalled where !conn.isClosed {
                    perform(conn.machine.journalCaughtUp(), conn)
                    sync(conn)
                }
                stalled.removeAll()
            }
            for conn in again {
                conn.isQueuedForRead = false
                readAvailable(conn)
            }
            fireTimers()
            submitBatch()
            flushDirty()
            if stop || (draining && openCount == 0) { break }
        }
        for case let conn? in connections { close(conn, conn.machine.close(.serverStopped)) }
    }

    func nextTimeoutMs() -> Int32 {
        if !readAgain.isEmpty || !startedHandshakes.isEmpty || !newHandshakes.isEmpty { return 0 }
        // While the journal is saturated, look again soon: its completions may go to other workers.
        var stallWait: Int32 = stalled.isEmpty ? -1 : 2
        if let until = acceptPausedUntil {
            let wait = until > now ? Int32(clamping: (until - now + 999_999) / 1_000_000) : 0
            stallWait = stallWait < 0 ? wait : min(stallWait, wait)
        }
        guard let next = timers.nextDeadline else { return stallWait }
        if next <= now { return 0 }
        let timerWait = Int32(clamping: (next - now + 999_999) / 1_000_000)
        return stallWait < 0 ? timerWait : min(stallWait, timerWait)
    }

    // MARK: accepting

    func acceptAll() {
        guard accepting, acceptPausedUntil == nil else { return }
        // Bound one round, so a flood of connections cannot starve the established ones.
        for _ in 0..<64 {
            let accepted: (fd: Int32, peer: SocketAddress)?
            do { accepted = try Socket.accept(listener) } catch {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: the kernel keeps the connection queued. Stop
                // watching the listener for a moment instead of spinning on it, and say so once.
                acceptFailures += 1
                if acceptFailures == 1 {
                    logger.error("accept failed; pausing accepts for 100 ms at a time", metadata: ["error": "\(error)"])
                }
                Epoll.remove(epoll, listener)
                acceptPausedUntil = now + 100_000_000
                return
            }
            if acceptFailures > 0 {
                logger.notice("accepting again", metadata: ["failed_accepts": "\(acceptFailures)"])
                acceptFailures = 0
            }
            guard let (fd, peer) = accepted else { return }
            open(fd: fd, peer: peer)
        }
    }

    /// Watches the listener again once an accept pause is over.
    func resumeAcceptingIfDue() {
        guard let until = acceptPausedUntil, now >= until else { return }
        acceptPausedUntil = nil
        if accepting { try? Epoll.add(epoll, listener, events: Epoll.readable, data: Worker.listenerToken) }
        acceptAll()
    }

    func open(fd: Int32, peer: SocketAddress) {
        let open = shared.metrics.connectionsOpen.load(ordering: .relaxed)
        // Far past the limit, or over the per-address limit: close before spending a handshake.
        if open >= shared.config.maxConnections + shared.config.busyHandshakes {
            shared.metrics.busyRefusals.add(1, ordering: .relaxed)
            Socket.close(fd)
            return
        }
        let host = peer.host
        let description = SocketAddress.describe(host: host, port: peer.port)
        // Behind a load balancer: only its addresses may connect, and each connection starts
        // with a PROXY header that names the client; the per-address checks wait for it.
        let proxied = shared.config.proxyProtocol
        if proxied && !shared.config.proxyFrom.contains(where: { $0.contains(host: host) }) {
            shared.metrics.proxyRefusals.add(1, ordering: .relaxed)
            logger.info("connection refused: not from a --proxy-from address", metadata: ["peer": "\(description)"])
            Socket.close(fd)
            return
        }
        if !proxied && refusedAsThrottled(peer: description, host: host) {
            shared.metrics.throttleRefusals.add(1, ordering: .relaxed)
            logger.debug("connection refused: address throttled", metadata: ["peer": "\(description)"])
            Socket.close(fd)
            return
        }
        guard proxied || shared.admit(peer: host) else {
            shared.metrics.peerLimitRefusals.add(1, ordering: .relaxed)
            logger.debug("connection refused: per-address limit", metadata: ["peer": "\(description)"])
            Socket.close(fd)
            return
        }
        let tls: TLSConnection
        do {
            tls = try TLSConnection(
                context: shared.currentTLSContext(),
                bufferedSocket: fd,
                outputLimit: Worker.ciphertextLimit,
                sharing: socketBIO
            )
        } catch {
            logger.error("cannot create TLS session", metadata: ["error": "\(error)"])
            if !proxied { shared.release(peer: host) }
            Socket.close(fd)
            return
        }
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = connections.count
            connections.append(nil)
            generations.append(0)
        }
        generations[slot] &+= 1
        let id = shared.nextConnectionID()
        let nowOpen = shared.metrics.connectionsOpen.add(1, ordering: .relaxed).newValue
        shared.metrics.connectionsAccepted.add(1, ordering: .relaxed)
        let conn = Connection(
            slot: slot,
            generation: generations[slot],
            fd: fd,
            id: id,
            peer: description,
            peerHost: host,
            tls: tls,
            limits: limits,
            now: now,
            busy: nowOpen > shared.config.maxConnections
        )
        if proxied {
            conn.admitted = false
            conn.proxyReader = ProxyHeaderReader()
        }
        connections[slot] = conn
        openCount += 1
        conn.interest = Epoll.readable
        do { try Epoll.add(epoll, fd, events: conn.interest, data: conn.token) } catch {
            logger.error("cannot watch connection", metadata: ["error": "\(error)"])
            close(conn, conn.machine.close(.setupFailed))
            return
        }
        scheduleTimer(conn)
        logger.debug("connection accepted", metadata: ["conn": "\(id)", "peer": "\(conn.peer)"])
    }

    /// With `--throttle-refuse-connections`: whether `peer`'s address is throttled for failed
    /// AUTHs and not exempt, so that its connection is closed before it costs a TLS handshake.
    func refusedAsThrottled(peer: String, host: String) -> Bool {
        let config = shared.config
        guard config.throttleRefuseConnections, shared.authenticationThrottled(peer: peer, now: now) else {
            return false
        }
        return !config.throttleExempt.contains { $0.contains(host: host) }
    }

    // MARK: events

    func connection(for token: UInt64) -> Connection? {
        let slot = Int(token & 0xFFFF_FFFF)
        guard slot < connections.count, let conn = connections[slot], conn.generation == UInt32(token >> 32) else {
            return nil
        }
        return conn
    }

    func handle(events: UInt32, token: UInt64) {
        guard let conn = connection(for: token) else { return }
        // Only an event says the socket may hold bytes again after a read found it empty.
        if events & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 { conn.tls.socketReadable() }
        if conn.machine.isHandshaking {
            if conn.writeBlocked {
                // The flight waits for writability: send it at the end of this turn.
                conn.writeBlocked = false
                markDirty(conn)
            }
            if conn.proxyReader != nil {
                readProxyHeader(conn)
            } else if conn.queuedForHandshake {
                return  // its turn comes from the queue
            } else if handshakeBudget > 0 || conn.writeBlocked || conn.tlsWantsWrite {
                handshakeBudget -= 1
                advanceHandshake(conn)
            } else {
                conn.queuedForHandshake = true
                if conn.tls.isHandshakeStarted { startedHandshakes.append(conn) } else { newHandshakes.append(conn) }
                conn.machine.handshakeQueued(now: now)
                setInterest(conn, 0)  // the socket's bytes wait; epoll stops reporting them
            }
            return
        }
        if events & (Epoll.hangup | Epoll.error) != 0 && !conn.machine.wantsToRead {
            // Gone both ways (a reset, or a close after our FIN) while nothing reads: nothing
            // more can be delivered.
            close(conn, conn.machine.close(.peerWentAway))
            return
        }
        if conn.writeBlocked {
            // Any event may be what a blocked write waited for (writable, or the read a TLS
            // key update needed): try the write again at the end of this turn.
            conn.writeBlocked = false
            markDirty(conn)
        }
        if events & Epoll.writable != 0 && conn.tlsWantsWrite {
            // OpenSSL wanted to write during a read; retry the read now.
            conn.tlsWantsWrite = false
            readAvailable(conn)
        }
        if events & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 {
            readAvailable(conn)
        }
    }

    /// Advances queued handshakes while this turn's budget lasts, those under way first, oldest
    /// first; each one's timer runs again, and it sets its interest again (`advanceHandshake`)
    /// or closes.
    func runQueuedHandshakes() {
        while handshakeBudget > 0, let conn = startedHandshakes.popFirst() ?? newHandshakes.popFirst() {
            conn.queuedForHandshake = false
            guard connections[conn.slot] === conn, !conn.isClosed else { continue }
            handshakeBudget -= 1
            conn.machine.handshakeDequeued(now: now)
            advanceHandshake(conn)
            if conn.machine.isHandshaking { sync(conn) }  // the timer, at its new deadline
        }
    }

    func advanceHandshake(_ conn: Connection) {
        switch conn.tls.handshake() {
        case .done:
            shared.metrics.handshakesCompleted.add(1, ordering: .relaxed)
            handshakeCompleted(conn)
        case .wantRead:
            // The flight OpenSSL wrote waits in the connection's buffer: out at the end of the turn.
            if conn.tls.pendingCiphertext > 0 { markDirty(conn) }
            setInterest(conn, Epoll.readable | (conn.writeBlocked ? Epoll.writable : 0))
        case .wantWrite:
            // The ciphertext buffer is full (a very long chain): `flush` sends it and comes back.
            conn.tlsWantsWrite = true
            markDirty(conn)
        case .closed:
            shared.metrics.handshakesFailed.add(1, ordering: .relaxed)
            close(conn, conn.machine.peerClosed(now: now))
        case .failed(let error):
            shared.metrics.handshakesFailed.add(1, ordering: .relaxed)
            // Peer-caused almost always (version, cipher, certificate, garbage): info, not error.
            logger.info(
                "handshake failed",
                metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "reason": "\(error.summary)"]
            )
            close(conn, conn.machine.close(.handshakeFailed))
        }
    }

    func handshakeCompleted(_ conn: Connection) {
        var certificateUser: String?
        if conn.machine.isBusyRefusal {
            shared.metrics.busyRefusals.add(1, ordering: .relaxed)
        } else if shared.config.tls.clientAuth != .off, let identity = conn.tls.verifiedPeerIdentity {
            if let user = shared.certificateUser(for: identity), CommandParser.isValidUserName(user) {
                certificateUser = user
            } else {
                logger.info(
                    "client certificate verified but names no user; token authentication still possible",
                    metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "certificate": "\(identity)"]
                )
            }
        }
        conn.machine.handshakeCompleted(now: now, certificateUser: certificateUser, draining: draining)
        stats.handshakeSeconds.observe(Double(now &- conn.acceptedAt) / 1e9)
        if conn.tls.sessionReused { stats.count(stats.resumed) }
        if certificateUser != nil { stats.auth(.certificate, .ok) }
        if let certificateUser { authenticated(conn, user: certificateUser) }
        if conn.machine.isOpen || conn.machine.closeReason == .shutdown {
            logger.info(
                "connection opened",
                metadata: [
                    "conn": "\(conn.id)", "peer": "\(conn.peer)", "tls": "\(conn.tls.protocolVersion)",
                    "cipher": "\(conn.tls.cipherName)", "resumed": "\(conn.tls.sessionReused)",
                ]
            )
        }
        sync(conn)
        readAvailable(conn)
    }

    func authenticated(_ conn: Connection, user: String) {
        conn.journalFields = JSON.connectionFields(user: user, peer: conn.peer, connection: conn.id)
        logger.info("authenticated", metadata: ["conn": "\(conn.id)", "user": "\(user)"])
    }

}
