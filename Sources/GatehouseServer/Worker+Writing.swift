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
            for owner in done.owners {
                guard let conn = connection(for: owner) else { continue }  // closed meanwhile
                conn.inFlight -= 1
                conn.outcomes.push(stored)
                markDirty(conn)
            }
            if !stored, case .failed(let why) = done.outcome {
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
            if conn.phase == .handshaking {
                close(conn, reason: "shutdown")
            } else if conn.phase == .open {
                conn.enqueue(conn.session.closeNotice(.shuttingDown, "server is shutting down"))
                beginClosing(conn, reason: "shutdown")
            }
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
            guard connections[conn.slot] === conn else { continue }
            flush(conn)
        }
    }

    /// Moves ready replies into the output and writes it with as few SSL_write calls as it takes.
    func flush(_ conn: Connection) {
        let (acked, failed) = conn.releaseReady()
        if acked > 0 {
            conn.messagesAcked += acked
            shared.metrics.messagesAcknowledged.add(acked, ordering: .relaxed)
        }
        _ = failed
        while conn.unsentBytes > 0 {
            let result = conn.out.withUnsafeBytes {
                conn.tls.write(UnsafeRawBufferPointer(rebasing: $0[conn.outStart...]))
            }
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
    func beginClosing(_ conn: Connection, reason: String) {
        guard !conn.closeWhenFlushed else { return }
        conn.phase = .closing
        conn.closeWhenFlushed = true
        conn.closeReason = reason
        // A closing connection gets a short grace period to take its last replies.
        conn.deadline = now + UInt64(min(shared.config.drainTimeoutMs, 5_000)) * 1_000_000
        timers.push(deadline: conn.deadline, token: conn.token)
        markDirty(conn)
    }

    func close(_ conn: Connection, reason: String) {
        guard connections[conn.slot] === conn else { return }
        // No EPOLL_CTL_DEL: closing the only descriptor of the socket removes it from epoll.
        Socket.close(conn.fd)
        connections[conn.slot] = nil
        freeSlots.append(conn.slot)
        openCount -= 1
        shared.metrics.connectionsOpen.add(-1, ordering: .relaxed)
        shared.release(peer: conn.peerHost)
        if conn.phase == .handshaking {
            logger.debug(
                "connection closed",
                metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "reason": "\(reason)"]
            )
        } else {
            logger.info(
                "connection closed",
                metadata: [
                    "conn": "\(conn.id)", "peer": "\(conn.peer)", "user": "\(conn.session.user ?? "-")",
                    "messages": "\(conn.messagesAcked)", "reason": "\(reason)",
                ]
            )
        }
    }

    func setInterest(_ conn: Connection, _ events: UInt32) {
        guard conn.interest != events, connections[conn.slot] === conn else { return }
        conn.interest = events
        try? Epoll.modify(epoll, conn.fd, events: events, data: conn.token)
    }

    // MARK: timers

    func fireTimers() {
        while let entry = timers.popDue(now: now) {
            guard let conn = connection(for: entry.token) else { continue }
            let due = conn.phase == .open ? min(conn.deadline, conn.authExpiry) : conn.deadline
            if due > now {
                timers.push(deadline: due, token: entry.token)
                continue
            }
            switch conn.phase {
            case .handshaking:
                close(conn, reason: "handshake timeout")
            case .open where conn.authExpiry <= now:
                expireAuthentication(conn)
            case .open:
                conn.enqueue(conn.session.closeNotice(.idleTimeout, "no complete line within the idle timeout"))
                beginClosing(conn, reason: "idle timeout")
            case .closing:
                close(conn, reason: conn.closeReason + ", then timed out")
            }
        }
    }

    func submitBatch() {
        guard !batch.isEmpty else { return }
        shared.journal.submit(batch)
        batch = JournalBatch(worker: index)
    }
}
