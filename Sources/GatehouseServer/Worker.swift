import GatehouseAuth
import GatehouseJournal
import GatehouseProtocol
import GatehouseSystem
import GatehouseTLS
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One worker thread: its own epoll loop, listening socket and connections.
///
/// Everything here runs on the worker's thread; other threads reach it only through `inbox`.
final class Worker {
    let index: Int
    let shared: ServerShared
    let epoll: Int32
    let listener: Int32
    let inbox: WorkerInbox
    var logger: Logger

    var connections: [Connection?] = []
    var generations: [UInt32] = []
    var freeSlots: [Int] = []
    var openCount = 0
    var timers = TimerHeap()
    var dirty: [Connection] = []
    /// Connections whose reading resumed: OpenSSL may hold plaintext epoll will not announce.
    var readAgain: [Connection] = []
    /// Connections not read while the journal's queue is full.
    var stalled: [Connection] = []
    var batch: JournalBatch
    var clock = JournalClock()
    var batchTime: [UInt8] = []
    var now: UInt64 = 0
    var accepting = true
    /// Set while accepting is paused after EMFILE and friends.
    var acceptPausedUntil: UInt64?
    var acceptFailures = 0
    var draining = false
    var readBuffer: UnsafeMutableRawBufferPointer

    static let listenerToken = UInt64.max
    static let inboxToken = UInt64.max - 1

    init(index: Int, shared: ServerShared, listener: Int32, epoll: Int32, inbox: WorkerInbox) throws(SystemError) {
        self.index = index
        self.shared = shared
        self.listener = listener
        self.epoll = epoll
        self.inbox = inbox
        self.logger = shared.logger
        self.logger[metadataKey: "worker"] = "\(index)"
        self.batch = JournalBatch(worker: index)
        self.readBuffer = .allocate(byteCount: 16 * 1024 + 512, alignment: 16)
        try Epoll.add(epoll, listener, events: Epoll.readable, data: Worker.listenerToken)
        try Epoll.add(epoll, inbox.wakeFD, events: Epoll.readable, data: Worker.inboxToken)
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
            batchTime = []
            var stop = false
            for i in 0..<n {
                switch data[i] {
                case Worker.listenerToken: acceptAll()
                case Worker.inboxToken: stop = processInbox() || stop
                default: handle(events: events[i], token: data[i])
                }
            }
            resumeAcceptingIfDue()
            if !stalled.isEmpty && !shared.journal.isSaturated {
                for conn in stalled where conn.stalledOnJournal && connections[conn.slot] === conn {
                    conn.stalledOnJournal = false
                    conn.readPaused = false
                    readAgain.append(conn)
                }
                stalled.removeAll()
            }
            while let conn = readAgain.popLast() { readAvailable(conn) }
            fireTimers()
            submitBatch()
            flushDirty()
            if stop || (draining && openCount == 0) { break }
        }
        for case let conn? in connections { close(conn, reason: "server stopped") }
    }

    func nextTimeoutMs() -> Int32 {
        if !readAgain.isEmpty { return 0 }
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
        guard shared.admit(peer: host) else {
            shared.metrics.peerLimitRefusals.add(1, ordering: .relaxed)
            logger.debug("connection refused: per-address limit", metadata: ["peer": "\(peer)"])
            Socket.close(fd)
            return
        }
        let tls: TLSConnection
        do { tls = try TLSConnection(context: shared.currentTLSContext(), fd: fd) } catch {
            logger.error("cannot create TLS session", metadata: ["error": "\(error)"])
            shared.release(peer: host)
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
        let deadline = now + UInt64(shared.config.handshakeTimeoutMs) * 1_000_000
        let conn = Connection(
            slot: slot,
            generation: generations[slot],
            fd: fd,
            id: id,
            peer: peer.description,
            peerHost: host,
            tls: tls,
            maxLine: shared.config.maxLine,
            errorBudget: shared.config.errorBudget,
            now: now,
            handshakeDeadline: deadline
        )
        let nowOpen = shared.metrics.connectionsOpen.add(1, ordering: .relaxed).newValue
        shared.metrics.connectionsAccepted.add(1, ordering: .relaxed)
        conn.refuseAsBusy = nowOpen > shared.config.maxConnections
        connections[slot] = conn
        openCount += 1
        timers.push(deadline: deadline, token: conn.token)
        conn.interest = Epoll.readable
        do { try Epoll.add(epoll, fd, events: conn.interest, data: conn.token) } catch {
            logger.error("cannot watch connection", metadata: ["error": "\(error)"])
            close(conn, reason: "epoll failed")
            return
        }
        logger.debug("connection accepted", metadata: ["conn": "\(id)", "peer": "\(conn.peer)"])
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
        if conn.phase == .handshaking {
            advanceHandshake(conn)
            return
        }
        if events & Epoll.writable != 0 {
            if conn.tlsWantsWrite {
                // OpenSSL wanted to write during a read; retry the read now.
                conn.tlsWantsWrite = false
                readAvailable(conn)
            }
            markDirty(conn)
        }
        if events & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 {
            if conn.phase == .open && !conn.readPaused {
                readAvailable(conn)
            } else if events & (Epoll.hangup | Epoll.error) != 0 {
                close(conn, reason: "peer went away")
            } else if conn.phase == .closing {
                // Not reading any more, but the peer may have closed: watch for it once.
                drainClosed(conn)
            }
        }
    }

    func advanceHandshake(_ conn: Connection) {
        switch conn.tls.handshake() {
        case .done:
            shared.metrics.handshakesCompleted.add(1, ordering: .relaxed)
            handshakeCompleted(conn)
        case .wantRead:
            setInterest(conn, Epoll.readable)
        case .wantWrite:
            setInterest(conn, Epoll.writable)
        case .closed:
            shared.metrics.handshakesFailed.add(1, ordering: .relaxed)
            close(conn, reason: "peer closed during handshake")
        case .failed(let error):
            shared.metrics.handshakesFailed.add(1, ordering: .relaxed)
            // Peer-caused almost always (version, cipher, certificate, garbage): info, not error.
            logger.info(
                "handshake failed",
                metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "reason": "\(error.summary)"]
            )
            close(conn, reason: "handshake failed")
        }
    }

    func handshakeCompleted(_ conn: Connection) {
        conn.tls.releaseBuffersWhenIdle()
        if conn.refuseAsBusy {
            shared.metrics.busyRefusals.add(1, ordering: .relaxed)
            conn.enqueue(conn.session.closeNotice(.busy, "server at its connection limit; try later"))
            beginClosing(conn, reason: "busy")
            return
        }
        if shared.config.tls.clientAuth != .off, let identity = conn.tls.verifiedPeerIdentity {
            if let user = shared.certificateUser(for: identity), CommandParser.isValidUserName(user) {
                conn.session = Session(errorBudget: shared.config.errorBudget, certificateUser: user)
                authenticated(conn, user: user)
            } else {
                logger.info(
                    "client certificate verified but names no user; token authentication still possible",
                    metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "certificate": "\(identity)"]
                )
            }
        }
        if shared.config.maxMessageRate > 0 {
            let rate = shared.config.maxMessageRate
            conn.messageBucket = TokenBucket(capacity: rate, refillPerSecond: Double(rate), now: now)
        }
        conn.phase = .open
        conn.deadline = now + UInt64(shared.config.idleTimeoutMs) * 1_000_000
        // The heap holds the handshake deadline; the idle one may be earlier, so schedule it too.
        timers.push(deadline: conn.deadline, token: conn.token)
        conn.enqueue(conn.session.greeting)
        logger.info(
            "connection opened",
            metadata: [
                "conn": "\(conn.id)", "peer": "\(conn.peer)", "tls": "\(conn.tls.protocolVersion)",
                "cipher": "\(conn.tls.cipherName)", "resumed": "\(conn.tls.sessionReused)",
            ]
        )
        markDirty(conn)
        if draining {
            conn.enqueue(conn.session.closeNotice(.shuttingDown, "server is shutting down"))
            beginClosing(conn, reason: "shutdown")
            return
        }
        readAvailable(conn)
    }

    func authenticated(_ conn: Connection, user: String) {
        conn.journalFields = JSON.connectionFields(user: user, peer: conn.peer, connection: conn.id)
        logger.info("authenticated", metadata: ["conn": "\(conn.id)", "user": "\(user)"])
    }

}
