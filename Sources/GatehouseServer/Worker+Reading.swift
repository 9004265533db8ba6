import GatehouseJournal
import GatehouseProtocol
import GatehouseSystem
import GatehouseTLS
import Logging

/// Reading: TLS records in, lines framed and answered, backpressure applied.
extension Worker {
    // MARK: reading

    /// Reads and answers everything the socket and OpenSSL hold, until want-read, a pause or a close.
    func readAvailable(_ conn: Connection) {
        while conn.phase == .open && !conn.readPaused {
            if now >= conn.authExpiry { return expireAuthentication(conn) }  // nothing read after expiry
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
                    metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "reason": "\(error)"]
                )
                close(conn, reason: "tls error")
                return
            }
        }
    }

    /// A closing connection reads no more lines, but still takes in and drops what arrives, so a
    /// level-triggered readable socket cannot spin, and so it notices when the peer goes away.
    func drainClosed(_ conn: Connection) {
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
    func process(_ conn: Connection, _ bytes: UnsafeRawBufferPointer) {
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
    func perform(_ action: Session.Action, _ conn: Connection, _ line: UnsafeRawBufferPointer) -> Bool {
        switch action {
        case .journal(let text, let n):
            if conn.messageBucket?.take(now: now) == false {
                return perform(conn.session.messageRateLimited(), conn, line)
            }
            if batchTime.isEmpty { batchTime = clock.now() }
            batch.append(
                time: batchTime,
                connectionFields: conn.journalFields,
                n: n,
                text: UnsafeRawBufferPointer(rebasing: line[text]),
                owner: conn.token
            )
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
                logger.info(
                    "authentication throttled",
                    metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "user": "\(user)"]
                )
                return perform(conn.session.authenticationThrottled(), conn, line)
            }
            let token = UnsafeRawBufferPointer(rebasing: line[tokenRange])
            let failure = checkCredential(conn, user: user, token: token)  // nil: accepted (Worker+Credentials)
            let result = conn.session.authenticationResult(user: user, succeeded: failure == nil)
            if let failure {
                shared.recordAuthenticationFailure(peer: conn.peer, now: now)
                logger.info(
                    "authentication failed",
                    metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "user": "\(user)", "reason": "\(failure)"]
                )
            } else {
                authenticated(conn, user: user)
            }
            return perform(result, conn, line)
        }
    }

    /// Stops reading from a client whose replies or journal backlog are over their bounds.
    func applyBackpressure(_ conn: Connection) {
        if conn.unsentBytes > shared.config.maxOutboundBytes || conn.inFlight >= shared.config.maxInFlightPerConnection
        {
            conn.readPaused = true
            setInterest(conn, conn.unsentBytes > 0 ? Epoll.writable : 0)
        }
    }

    func resumeIfDrained(_ conn: Connection) {
        guard conn.readPaused, !conn.stalledOnJournal, conn.phase == .open,
            conn.unsentBytes <= shared.config.maxOutboundBytes / 2,
            conn.inFlight <= shared.config.maxInFlightPerConnection / 2
        else { return }
        conn.readPaused = false
        readAgain.append(conn)
    }
}
