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
    private let shared: ServerShared
    private let epoll: Int32
    private let listener: Int32
    let inbox: WorkerInbox
    private var logger: Logger

    private var connections: [Connection?] = []
    private var generations: [UInt32] = []
    private var freeSlots: [Int] = []
    private var openCount = 0
    private var timers = TimerHeap()
    private var dirty: [Connection] = []
    /// Connections whose reading resumed: OpenSSL may hold plaintext epoll will not announce.
    private var readAgain: [Connection] = []
    /// Connections not read while the journal's queue is full.
    private var stalled: [Connection] = []
    private var batch: JournalBatch
    private var clock = JournalClock()
    private var batchTime: [UInt8] = []
    private var now: UInt64 = 0
    private var accepting = true
    /// Set while accepting is paused after EMFILE and friends.
    private var acceptPausedUntil: UInt64?
    private var acceptFailures = 0
    private var draining = false
    private var readBuffer: UnsafeMutableRawBufferPointer

    private static let listenerToken = UInt64.max
    private static let inboxToken = UInt64.max - 1

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
        let maxEvents: Int32 = 256
        let events = UnsafeMutablePointer<UInt32>.allocate(capacity: Int(maxEvents))
        let data = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(maxEvents))
        defer {
            events.deallocate()
            data.deallocate()
        }
        now = Process.monotonicNanoseconds()
        while true {
            let timeout = nextTimeoutMs()
            let n: Int
            do { n = try Epoll.wait(epoll, events: events, data: data, max: maxEvents, timeoutMs: timeout) } catch {
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

    private func nextTimeoutMs() -> Int32 {
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

    private func acceptAll() {
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
    private func resumeAcceptingIfDue() {
        guard let until = acceptPausedUntil, now >= until else { return }
        acceptPausedUntil = nil
        if accepting { try? Epoll.add(epoll, listener, events: Epoll.readable, data: Worker.listenerToken) }
        acceptAll()
    }

    private func open(fd: Int32, peer: SocketAddress) {
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
            slot: slot, generation: generations[slot], fd: fd, id: id, peer: peer.description, peerHost: host, tls: tls,
            maxLine: shared.config.maxLine, errorBudget: shared.config.errorBudget, now: now,
            handshakeDeadline: deadline)
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

    private func connection(for token: UInt64) -> Connection? {
        let slot = Int(token & 0xFFFF_FFFF)
        guard slot < connections.count, let conn = connections[slot], conn.generation == UInt32(token >> 32) else {
            return nil
        }
        return conn
    }

    private func handle(events: UInt32, token: UInt64) {
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

    private func advanceHandshake(_ conn: Connection) {
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
                metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "reason": "\(error.summary)"])
            close(conn, reason: "handshake failed")
        }
    }

    private func handshakeCompleted(_ conn: Connection) {
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
                    metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "certificate": "\(identity)"])
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
            ])
        markDirty(conn)
        if draining {
            conn.enqueue(conn.session.closeNotice(.shuttingDown, "server is shutting down"))
            beginClosing(conn, reason: "shutdown")
            return
        }
        readAvailable(conn)
    }

    private func authenticated(_ conn: Connection, user: String) {
        conn.journalFields = JSON.connectionFields(user: user, peer: conn.peer, connection: conn.id)
        logger.info("authenticated", metadata: ["conn": "\(conn.id)", "user": "\(user)"])
    }

    // MARK: reading

    /// Reads and answers everything the socket and OpenSSL hold, until want-read, a pause or a close.
    private func readAvailable(_ conn: Connection) {
        while conn.phase == .open && !conn.readPaused {
            if shared.journal.isSaturated {
                // Backpressure: the journal is behind. Read nothing more until it catches up;
                // the client is not dropped and nothing it sent is lost.
                conn.readPaused = true
                conn.stalledOnJournal = true
                stalled.append(conn)
                setInterest(conn, conn.unsentBytes > 0 ? Epoll.writable : 0)
                return
            }
            switch conn.tls.read(into: readBuffer) {
            case .done(let n):
                conn.deadline = now + UInt64(shared.config.idleTimeoutMs) * 1_000_000
                process(conn, UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]))
                markDirty(conn)
                applyBackpressure(conn)
            case .wantRead:
                setInterest(conn, Epoll.readable | (conn.unsentBytes > 0 ? Epoll.writable : 0))
                return
            case .wantWrite:
                conn.tlsWantsWrite = true
                setInterest(conn, Epoll.writable)
                return
            case .closed:
                // The client is done sending; answer what it sent, then close.
                beginClosing(conn, reason: "client closed")
                return
            case .failed(let error):
                logger.info(
                    "connection failed",
                    metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "reason": "\(error)"])
                close(conn, reason: "tls error")
                return
            }
        }
    }

    /// A closing connection reads no more lines, but still takes in and drops what arrives, so a
    /// level-triggered readable socket cannot spin, and so it notices when the peer goes away.
    private func drainClosed(_ conn: Connection) {
        for _ in 0..<16 {
            switch conn.tls.read(into: readBuffer) {
            case .done: continue
            case .wantRead, .wantWrite: return
            case .closed, .failed:
                if conn.unsentBytes == 0 && conn.pending.isEmpty {
                    close(conn, reason: conn.closeReason)
                } else {
                    setInterest(conn, conn.unsentBytes > 0 ? Epoll.writable : 0)
                }
                return
            }
        }
    }

    /// Frames `bytes` into lines and acts on each.
    private func process(_ conn: Connection, _ bytes: UnsafeRawBufferPointer) {
        conn.framer.feed(bytes) { event in
            let action: Session.Action
            switch event {
            case .line(let line):
                action = conn.session.receivedLine(line)
                return perform(action, conn, line)
            case .tooLong:
                action = conn.session.lineTooLong(limit: shared.config.maxLine)
                return perform(action, conn, UnsafeRawBufferPointer(start: nil, count: 0))
            }
        }
    }

    /// Carries out one session action. Returns false when the connection stops reading.
    @inline(__always)
    private func perform(_ action: Session.Action, _ conn: Connection, _ line: UnsafeRawBufferPointer) -> Bool {
        switch action {
        case .journal(let text, let n):
            if conn.messageBucket?.take(now: now) == false {
                return perform(conn.session.messageRateLimited(), conn, line)
            }
            if batchTime.isEmpty { batchTime = clock.now() }
            batch.append(
                time: batchTime, connectionFields: conn.journalFields, n: n,
                text: UnsafeRawBufferPointer(rebasing: line[text]), owner: conn.token)
            conn.inFlight += 1
            conn.pending.push(.ack(n))
            return true
        case .reply(let reply):
            if case .error = reply { shared.metrics.errorsSent.add(1, ordering: .relaxed) }
            conn.enqueue(reply)
            return true
        case .replyAndClose(let reply):
            if case .error = reply { shared.metrics.errorsSent.add(1, ordering: .relaxed) }
            conn.enqueue(reply)
            beginClosing(conn, reason: reply == .bye ? "quit" : "too many errors")
            return false
        case .authenticate(let user, let tokenRange):
            // A peer over its failure allowance is not told whether its token is right.
            if shared.authenticationThrottled(peer: conn.peer, now: now) {
                logger.info("authentication throttled", metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "user": "\(user)"])
                return perform(conn.session.authenticationThrottled(), conn, line)
            }
            let token = UnsafeRawBufferPointer(rebasing: line[tokenRange])
            let ok = shared.tokens().verify(user: user, token: token)
            let result = conn.session.authenticationResult(user: user, succeeded: ok)
            if ok {
                authenticated(conn, user: user)
            } else {
                shared.recordAuthenticationFailure(peer: conn.peer, now: now)
                logger.info("authentication failed", metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "user": "\(user)"])
            }
            return perform(result, conn, line)
        }
    }

    /// Stops reading from a client whose replies or journal backlog are over their bounds.
    private func applyBackpressure(_ conn: Connection) {
        if conn.unsentBytes > shared.config.maxOutboundBytes || conn.inFlight >= shared.config.maxInFlightPerConnection {
            conn.readPaused = true
            setInterest(conn, conn.unsentBytes > 0 ? Epoll.writable : 0)
        }
    }

    private func resumeIfDrained(_ conn: Connection) {
        guard conn.readPaused, !conn.stalledOnJournal, conn.phase == .open,
            conn.unsentBytes <= shared.config.maxOutboundBytes / 2,
            conn.inFlight <= shared.config.maxInFlightPerConnection / 2
        else { return }
        conn.readPaused = false
        readAgain.append(conn)
    }

    // MARK: journal completions and commands

    /// Applies everything posted to the inbox; returns true when the worker must stop now.
    private func processInbox() -> Bool {
        EventFD.drain(inbox.wakeFD)
        let (batches, commands) = inbox.take()
        for done in batches {
            let stored = done.outcome == .stored
            for owner in done.owners {
                guard let conn = connection(for: owner) else { continue }  // closed meanwhile
                conn.inFlight -= 1
                conn.outcomes.push(stored)
                markDirty(conn)
            }
            if !stored, case .failed(let why) = done.outcome {
                logger.error("journal write failed; messages answered UNAVAILABLE", metadata: ["error": "\(why)", "messages": "\(done.count)"])
            }
        }
        var stop = false
        for command in commands {
            switch command {
            case .drain: beginDrain()
            case .stop: stop = true
            }
        }
        return stop
    }

    private func beginDrain() {
        guard !draining else { return }
        draining = true
        accepting = false
        Epoll.remove(epoll, listener)
        for case let conn? in connections {
            if conn.phase == .handshaking {
                close(conn, reason: "shutdown")
            } else if conn.phase == .open {
                conn.enqueue(conn.session.closeNotice(.shuttingDown, "server is shutting down"))
                beginClosing(conn, reason: "shutdown")
            }
        }
    }

    // MARK: writing

    private func markDirty(_ conn: Connection) {
        if !conn.isDirty {
            conn.isDirty = true
            dirty.append(conn)
        }
    }

    private func flushDirty() {
        while let conn = dirty.popLast() {
            conn.isDirty = false
            guard connections[conn.slot] === conn else { continue }
            flush(conn)
        }
    }

    /// Moves ready replies into the output and writes it with as few SSL_write calls as it takes.
    private func flush(_ conn: Connection) {
        let (acked, failed) = conn.releaseReady()
        if acked > 0 {
            conn.messagesAcked += acked
            shared.metrics.messagesAcknowledged.add(acked, ordering: .relaxed)
        }
        _ = failed
        while conn.unsentBytes > 0 {
            let result = conn.out.withUnsafeBytes { conn.tls.write(UnsafeRawBufferPointer(rebasing: $0[conn.outStart...])) }
            switch result {
            case .done(let n):
                conn.consumeOutput(n)
                if conn.phase != .handshaking {
                    conn.deadline = now + UInt64(shared.config.idleTimeoutMs) * 1_000_000
                }
            case .wantWrite:
                setInterest(conn, (conn.interest & Epoll.readable) | Epoll.writable)
                return
            case .wantRead:
                setInterest(conn, Epoll.readable)
                return
            case .closed, .failed:
                close(conn, reason: "peer went away")
                return
            }
        }
        if conn.closeWhenFlushed && conn.pending.isEmpty {
            conn.tls.shutdown()
            close(conn, reason: conn.closeReason)
            return
        }
        if conn.phase == .open {
            resumeIfDrained(conn)
            if !conn.readPaused { setInterest(conn, Epoll.readable) }
        } else if conn.phase == .closing {
            setInterest(conn, Epoll.readable)  // drainClosed drops what arrives
        }
    }

    // MARK: closing

    /// Stops reading; the connection closes once its queued replies are out.
    private func beginClosing(_ conn: Connection, reason: String) {
        guard !conn.closeWhenFlushed else { return }
        conn.phase = .closing
        conn.closeWhenFlushed = true
        conn.closeReason = reason
        // A closing connection gets a short grace period to take its last replies.
        conn.deadline = now + UInt64(min(shared.config.drainTimeoutMs, 5_000)) * 1_000_000
        timers.push(deadline: conn.deadline, token: conn.token)
        markDirty(conn)
    }

    private func close(_ conn: Connection, reason: String) {
        guard connections[conn.slot] === conn else { return }
        Epoll.remove(epoll, conn.fd)
        Socket.close(conn.fd)
        connections[conn.slot] = nil
        freeSlots.append(conn.slot)
        openCount -= 1
        shared.metrics.connectionsOpen.add(-1, ordering: .relaxed)
        shared.release(peer: conn.peerHost)
        if conn.phase == .handshaking {
            logger.debug("connection closed", metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "reason": "\(reason)"])
        } else {
            logger.info(
                "connection closed",
                metadata: [
                    "conn": "\(conn.id)", "peer": "\(conn.peer)", "user": "\(conn.session.user ?? "-")",
                    "messages": "\(conn.messagesAcked)", "reason": "\(reason)",
                ])
        }
    }

    private func setInterest(_ conn: Connection, _ events: UInt32) {
        guard conn.interest != events, connections[conn.slot] === conn else { return }
        conn.interest = events
        try? Epoll.modify(epoll, conn.fd, events: events, data: conn.token)
    }

    // MARK: timers

    private func fireTimers() {
        while let entry = timers.popDue(now: now) {
            guard let conn = connection(for: entry.token) else { continue }
            if conn.deadline > now {
                timers.push(deadline: conn.deadline, token: entry.token)
                continue
            }
            switch conn.phase {
            case .handshaking:
                close(conn, reason: "handshake timeout")
            case .open:
                conn.enqueue(conn.session.closeNotice(.idleTimeout, "no complete line within the idle timeout"))
                beginClosing(conn, reason: "idle timeout")
            case .closing:
                close(conn, reason: conn.closeReason + ", then timed out")
            }
        }
    }

    private func submitBatch() {
        guard !batch.isEmpty else { return }
        shared.journal.submit(batch)
        batch = JournalBatch(worker: index)
    }
}
