import GatehouseJournal
import GatehouseProtocol
import GatehouseSystem
import GatehouseTLS
import Logging

/// Journal completions, shutdown commands, writing replies, closing and timers.
extension Worker {
    // MARK: journal completions and commands

    /// Applies everything posted to the inbox; returns true when the worker must stop now.
    func processInbox() -> Bool {
        EventFD.drain(inbox.wakeFD)
        let (batches, commands) = inbox.take()
        for done in batches {
            let stored = done.outcome == .stored
            var acked = 0
            for (i, owner) in done.owners.enumerated() {
                guard let conn = connection(for: owner) else {
                    // Closed meanwhile; a stream it held is released once its outcomes are in.
                    if let held = closedHolders[owner] { outcomeAfterClose(held) }
                    continue
                }
                let storedHere = done.isStored(i)
                conn.machine.journalOutcome(stored: storedHere)
                if storedHere { acked += 1 }  // a stream record refused for a gap is no ACK
                markDirty(conn)
                if conn.streamKey != nil { releaseStreamIfDone(conn) }
            }
            if stored {
                shared.metrics.messagesAcknowledged.add(acked, ordering: .relaxed)
                if done.startedAt > 0 && acked > 0 {
                    stats.ackLatency.observe(Double(now &- done.startedAt) / 1e9, count: acked)
                }
            } else if case .failed(let why) = done.outcome {
                logger.error(
                    "journal write failed; messages answered UNAVAILABLE",
                    metadata: ["error": "\(why)", "messages": "\(done.count)"]
                )
            }
        }
        var stop = false
        for command in commands {
            switch command {
            case .drain: beginDrain()
            case .stop: stop = true
            case .supersede(let token): supersede(token)
            case .streamReady(let token): streamReady(token)
            case .streamLast(let token, let last): streamLooked(token, last: last)
            }
        }
        return stop
    }

    func beginDrain() {
        guard !draining else { return }
        draining = true
        accepting = false
        Epoll.remove(epoll, listener)
        for case let conn? in connections {
            perform(conn.machine.drainRequested(now: now), conn)
            sync(conn)
        }
    }

    // MARK: the machine's decisions

    /// Carries out a step the machine decided.
    func perform(_ step: ConnectionStateMachine.Step, _ conn: Connection) {
        switch step {
        case .none:
            break
        case .resumeReading:
            queueRead(conn)
        case .linger:
            // Every reply is out: close_notify, then FIN; the socket stays open for reading so
            // that the client's unread input does not turn the close into a reset.
            conn.tls.shutdown()
            let sent = conn.tls.sendPendingCiphertext()
            if sent == .done && conn.machine.closeReason == .clientClosed {
                // The client closed first: it sends nothing more, so there is no input to drain
                // and closing cannot turn into a reset. Close now, as lingering would on its EOF.
                close(conn, conn.machine.peerClosed(now: now))
                return
            }
            switch sent {
            case .wouldBlock:
                // The FIN follows the close_notify once it is out (`flush`).
                conn.shutdownPending = true
                conn.writeBlocked = true
            case .done, .failed:
                Socket.shutdownWrite(conn.fd)
            }
            queueRead(conn)
        case .close:
            close(conn, step)
        }
    }

    /// Brings the descriptor's epoll interest, the timer and the dirty list in step with the
    /// machine. Called after every event that may have changed it.
    func sync(_ conn: Connection) {
        guard !conn.isClosed else { return }
        scheduleTimer(conn)
        let ciphertext = conn.tls.pendingCiphertext > 0
        if ciphertext && !conn.writeBlocked { markDirty(conn) }
        if conn.machine.isHandshaking { return }  // the handshake sets its own interest
        let unsent = conn.machine.replies.unsentBytes > 0
        if unsent && !conn.writeBlocked { markDirty(conn) }
        var events: UInt32 = conn.machine.wantsToRead ? Epoll.readable : 0
        // Writability is asked for only once a write has blocked: until then the connection is
        // on the dirty list and written at the end of this turn, without two epoll_ctl calls.
        if conn.tlsWantsWrite || (conn.writeBlocked && (unsent || ciphertext)) { events |= Epoll.writable }
        setInterest(conn, events)
    }

    /// Makes sure the timer heap holds an entry no later than the machine's deadline. Entries
    /// are never removed: a deadline that moved later is found when its entry comes due.
    func scheduleTimer(_ conn: Connection) {
        let deadline = conn.machine.deadline
        if deadline < conn.timerAt {
            timers.push(deadline: deadline, token: conn.token)
            conn.timerAt = deadline
        }
    }

    // MARK: writing

    func markDirty(_ conn: Connection) {
        if !conn.isDirty {
            conn.isDirty = true
            dirty.append(conn)
        }
    }

    func flushDirty() {
        while let conn = dirty.popLast() {
            conn.isDirty = false
            flush(conn)
        }
    }

    /// Encrypts the ready replies with as few SSL_write calls as it takes, then sends all the
    /// connection's waiting ciphertext (a handshake flight, a ticket, close_notify, replies) with
    /// one `send`.
    func flush(_ conn: Connection) {
        guard !conn.isClosed else { return }
        let replying = !conn.machine.isHandshaking && !conn.machine.isLingering
        while replying && conn.machine.replies.unsentBytes > 0 {
            let result = conn.machine.replies.withUnsent { conn.tls.write($0) }
            switch result {
            case .done(let n):
                stats.count(stats.bytesSent, n)
                conn.machine.wrote(n, now: now)
            case .wantWrite:
                // The ciphertext buffer is full: send it, and encrypt more if the kernel took all.
                if conn.tls.pendingCiphertext == 0 {
                    conn.writeBlocked = true
                    sync(conn)
                    return
                }
                guard sendCiphertext(conn) else { return }
                continue
            case .wantRead:
                // TLS needs to read before it can write (a key update): readable wakes it.
                conn.writeBlocked = true
                setInterest(conn, conn.interest | Epoll.readable)
                return
            case .closed, .failed:
                close(conn, conn.machine.close(.peerWentAway))
                return
            }
        }
        guard sendCiphertext(conn) else { return }
        if conn.machine.isHandshaking {
            if conn.tlsWantsWrite {
                conn.tlsWantsWrite = false
                advanceHandshake(conn)
            }
            return
        }
        if conn.machine.isLingering {
            if conn.shutdownPending {
                conn.shutdownPending = false
                Socket.shutdownWrite(conn.fd)
            }
            return
        }
        perform(conn.machine.flushed(now: now), conn)
        sync(conn)
    }

    /// Sends the connection's waiting ciphertext. True when all of it is out; false when the
    /// rest waits for writability (interest set) or the connection was closed.
    func sendCiphertext(_ conn: Connection) -> Bool {
        switch conn.tls.sendPendingCiphertext() {
        case .done:
            return true
        case .wouldBlock:
            conn.writeBlocked = true  // until epoll says writable
            if conn.machine.isHandshaking {
                setInterest(conn, conn.interest | Epoll.writable)
            } else {
                sync(conn)
            }
            return false
        case .failed:
            close(conn, conn.machine.close(.peerWentAway))
            return false
        }
    }

    // MARK: closing

    /// Closes the socket for the reason in a `.close` step (any other step is ignored). The
    /// machine is already `.closed`, so no stale reference reads or writes the descriptor again.
    func close(_ conn: Connection, _ step: ConnectionStateMachine.Step) {
        guard case .close(let reason) = step, connections[conn.slot] === conn else { return }
        // A TLS alert or a last record still waiting: one try, as a socket BIO would have made.
        if conn.tls.pendingCiphertext > 0 {
            _ = conn.tls.sendPendingCiphertext()
            conn.tls.discardPendingCiphertext()
        }
        // No EPOLL_CTL_DEL: closing the only descriptor of the socket removes it from epoll.
        if let socket = conn.socket.take() { Socket.close(socket, reset: false) }
        connections[conn.slot] = nil
        freeSlots.append(conn.slot)
        openCount -= 1
        shared.metrics.connectionsOpen.add(-1, ordering: .relaxed)
        if conn.machine.errorsSent > 0 { shared.metrics.errorsSent.add(conn.machine.errorsSent, ordering: .relaxed) }
        for (index, n) in conn.machine.errorsByCode.enumerated() where n > 0 {
            stats.error(WorkerStats.errorCodes[index], Int(n))
        }
        stats.closed(reason)
        if conn.admitted { shared.release(peer: conn.peerHost) }
        if conn.streamKey != nil {
            releaseStreamIfDone(conn)
            if !conn.machine.canReleaseStream && conn.machine.replies.inFlight > 0 { closedHolders[conn.token] = conn }
        }
        if !conn.machine.greeted {
            // `tls_started`: whether the client's first flight had been taken (a handshake timeout
            // without it is a client that connected and sent nothing, or too late).
            logger.debug(
                "connection closed",
                metadata: [
                    "conn": "\(conn.id)", "peer": "\(conn.peer)", "reason": "\(reason.rawValue)",
                    "tls_started": "\(conn.tls.isHandshakeStarted)",
                ]
            )
            return
        }
        var metadata: Logger.Metadata = [
            "conn": "\(conn.id)", "peer": "\(conn.peer)", "user": "\(conn.machine.session.user ?? "-")",
            "messages": "\(conn.machine.messagesAcked)", "reason": "\(reason.rawValue)",
        ]
        // Replies the client never took: the grace period ran out, or it went away.
        let unsent = conn.machine.replies.queuedBytes
        if unsent > 0 { metadata["unsent_bytes"] = "\(unsent)" }
        if conn.machine.replies.inFlight > 0 { metadata["unanswered_messages"] = "\(conn.machine.replies.inFlight)" }
        logger.info("connection closed", metadata: metadata)
    }

    func setInterest(_ conn: Connection, _ events: UInt32) {
        guard conn.interest != events, !conn.isClosed else { return }
        conn.interest = events
        try? Epoll.modify(epoll, conn.fd, events: events, data: conn.token)
    }

    // MARK: timers

    func fireTimers() {
        while let entry = timers.popDue(now: now) {
            guard let conn = connection(for: entry.token) else { continue }
            if entry.deadline == conn.timerAt { conn.timerAt = .max }
            perform(conn.machine.timerFired(now: now), conn)
            sync(conn)  // schedules the next deadline, which is now later than `now`
        }
    }

    func submitBatch() {
        guard !batch.isEmpty else { return }
        shared.journal.submit(batch)
        batch = JournalBatch(worker: index)
    }
}
